/* chat_template.c - chat messages to a prompt, natively for the common
 * template families (no Jinja): the family is recognised from marker strings
 * in the model's tokenizer.chat_template, as llama.cpp does, or named with
 * --chat-template. A model without a template (such as the bundled
 * stories260K) gets "plain": one "role: content" line per message and a
 * final "assistant:". */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "server.h"

static const struct {
    const char *name;
    em_tmpl t;
} NAMES[] = {
    {"plain", EM_TMPL_PLAIN},
    {"chatml", EM_TMPL_CHATML},
    {"qwen", EM_TMPL_CHATML},
    {"llama2", EM_TMPL_LLAMA2},
    {"llama2-sys", EM_TMPL_LLAMA2_SYS},
    {"llama3", EM_TMPL_LLAMA3},
    {"llama4", EM_TMPL_LLAMA4},
    {"mistral", EM_TMPL_MISTRAL_V7},
    {"mistral-v1", EM_TMPL_MISTRAL_V1},
    {"mistral-v3", EM_TMPL_MISTRAL_V3},
    {"mistral-v3-tekken", EM_TMPL_MISTRAL_V3_TEKKEN},
    {"mistral-v7", EM_TMPL_MISTRAL_V7},
    {"gemma", EM_TMPL_GEMMA},
    {"phi3", EM_TMPL_PHI3},
};

em_tmpl em_tmpl_from_name(const char *name) {
    for (size_t i = 0; name && i < sizeof NAMES / sizeof NAMES[0]; i++)
        if (!strcmp(name, NAMES[i].name)) return NAMES[i].t;
    return EM_TMPL_UNKNOWN;
}

const char *em_tmpl_name(em_tmpl t) {
    for (size_t i = 0; i < sizeof NAMES / sizeof NAMES[0]; i++)
        if (NAMES[i].t == t) return NAMES[i].name;
    return "unknown";
}

const char *em_tmpl_names(void) {
    return "plain, chatml (qwen), llama2, llama2-sys, llama3, llama4, mistral (= mistral-v7), mistral-v1, "
           "mistral-v3, mistral-v3-tekken, gemma, phi3";
}

em_tmpl em_tmpl_detect(const char *t) {
    if (!t || !*t) return EM_TMPL_PLAIN;
#define HAS(x) (strstr(t, x) != NULL)
    if (HAS("<|im_start|>")) return EM_TMPL_CHATML;
    if (!strncmp(t, "mistral", 7) || HAS("[INST]")) {
        if (HAS("[SYSTEM_PROMPT]")) return EM_TMPL_MISTRAL_V7;
        if (HAS("' [INST] ' + system_message") || HAS("[AVAILABLE_TOOLS]")) {
            if (HAS(" [INST]")) return EM_TMPL_MISTRAL_V1;
            if (HAS("\"[INST]\"")) return EM_TMPL_MISTRAL_V3_TEKKEN;
            return EM_TMPL_MISTRAL_V3;
        }
        return HAS("<<SYS>>") ? EM_TMPL_LLAMA2_SYS : EM_TMPL_LLAMA2;
    }
    if (HAS("<|assistant|>") && HAS("<|end|>")) return EM_TMPL_PHI3;
    if (HAS("<start_of_turn>")) return EM_TMPL_GEMMA;
    if (HAS("<|start_header_id|>") && HAS("<|end_header_id|>")) return EM_TMPL_LLAMA3;
    if (HAS("<|header_start|>") && HAS("<|header_end|>")) return EM_TMPL_LLAMA4;
#undef HAS
    return EM_TMPL_UNKNOWN;
}

size_t em_tmpl_stops(em_tmpl t, const char **out, size_t cap) {
    size_t n = 0;
    if (t == EM_TMPL_PLAIN && cap > 0) out[n++] = "\nuser:";
    return n;
}

/* ---- a growing string ---- */
typedef struct sb {
    char *p;
    size_t len, cap;
    bool oom;
} sb;

static void sb_add(sb *b, const char *s, size_t n) {
    if (b->oom) return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1) cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = 0;
}
static void sb_str(sb *b, const char *s) { sb_add(b, s, strlen(s)); }
static void sb_msg(sb *b, const em_chat_msg *m) { sb_add(b, m->content, m->len); }
static void sb_trimmed(sb *b, const em_chat_msg *m) {
    size_t i = 0, j = m->len;
    while (i < j && isspace((unsigned char)m->content[i])) i++;
    while (j > i && isspace((unsigned char)m->content[j - 1])) j--;
    sb_add(b, m->content + i, j - i);
}

static bool is(const em_chat_msg *m, const char *role) { return !strcmp(m->role, role); }

char *em_tmpl_render(em_tmpl t, const em_chat_msg *msgs, size_t n, size_t *len) {
    sb b = {0};
    sb_str(&b, "");
    switch (t) {
    case EM_TMPL_CHATML:
    case EM_TMPL_UNKNOWN:
        for (size_t i = 0; i < n; i++) {
            sb_str(&b, "<|im_start|>");
            sb_str(&b, msgs[i].role);
            sb_str(&b, "\n");
            sb_msg(&b, &msgs[i]);
            sb_str(&b, "<|im_end|>\n");
        }
        sb_str(&b, "<|im_start|>assistant\n");
        break;
    case EM_TMPL_LLAMA2:
    case EM_TMPL_LLAMA2_SYS: {
        /* the tokenizer adds the first <s> */
        bool in_turn = true;
        sb_str(&b, "[INST] ");
        for (size_t i = 0; i < n; i++) {
            if (!in_turn) {
                in_turn = true;
                sb_str(&b, "<s>[INST] ");
            }
            if (is(&msgs[i], "system")) {
                if (t == EM_TMPL_LLAMA2_SYS) {
                    sb_str(&b, "<<SYS>>\n");
                    sb_msg(&b, &msgs[i]);
                    sb_str(&b, "\n<</SYS>>\n\n");
                } else {
                    sb_msg(&b, &msgs[i]);
                    sb_str(&b, "\n");
                }
            } else if (is(&msgs[i], "assistant")) {
                sb_str(&b, " ");
                sb_msg(&b, &msgs[i]);
                sb_str(&b, " </s>");
                in_turn = false;
            } else {
                sb_msg(&b, &msgs[i]);
                sb_str(&b, " [/INST]");
            }
        }
        break;
    }
    case EM_TMPL_MISTRAL_V1:
    case EM_TMPL_MISTRAL_V3:
    case EM_TMPL_MISTRAL_V3_TEKKEN: {
        const char *lead = t == EM_TMPL_MISTRAL_V1 ? " " : "";
        const char *trail = t == EM_TMPL_MISTRAL_V3_TEKKEN ? "" : " ";
        bool in_turn = false;
        for (size_t i = 0; i < n; i++) {
            if (!in_turn) {
                sb_str(&b, lead);
                sb_str(&b, "[INST]");
                sb_str(&b, trail);
                in_turn = true;
            }
            if (is(&msgs[i], "system")) {
                sb_msg(&b, &msgs[i]);
                sb_str(&b, "\n\n");
            } else if (is(&msgs[i], "assistant")) {
                sb_str(&b, trail);
                if (t == EM_TMPL_MISTRAL_V3) sb_trimmed(&b, &msgs[i]);
                else sb_msg(&b, &msgs[i]);
                sb_str(&b, "</s>");
                in_turn = false;
            } else {
                sb_msg(&b, &msgs[i]);
                sb_str(&b, lead);
                sb_str(&b, "[/INST]");
            }
        }
        break;
    }
    case EM_TMPL_MISTRAL_V7:
        for (size_t i = 0; i < n; i++) {
            if (is(&msgs[i], "system")) {
                sb_str(&b, "[SYSTEM_PROMPT] ");
                sb_msg(&b, &msgs[i]);
                sb_str(&b, "[/SYSTEM_PROMPT]");
            } else if (is(&msgs[i], "assistant")) {
                sb_str(&b, " ");
                sb_msg(&b, &msgs[i]);
                sb_str(&b, "</s>");
            } else {
                sb_str(&b, "[INST] ");
                sb_msg(&b, &msgs[i]);
                sb_str(&b, "[/INST]");
            }
        }
        break;
    case EM_TMPL_LLAMA3:
    case EM_TMPL_LLAMA4: {
        const bool l3 = t == EM_TMPL_LLAMA3;
        for (size_t i = 0; i < n; i++) {
            sb_str(&b, l3 ? "<|start_header_id|>" : "<|header_start|>");
            sb_str(&b, msgs[i].role);
            sb_str(&b, l3 ? "<|end_header_id|>\n\n" : "<|header_end|>\n\n");
            sb_trimmed(&b, &msgs[i]);
            sb_str(&b, l3 ? "<|eot_id|>" : "<|eot|>");
        }
        sb_str(&b, l3 ? "<|start_header_id|>assistant<|end_header_id|>\n\n" : "<|header_start|>assistant<|header_end|>\n\n");
        break;
    }
    case EM_TMPL_GEMMA: {
        /* no system role: it is prepended to the next user turn */
        sb sys = {0};
        for (size_t i = 0; i < n; i++) {
            if (is(&msgs[i], "system")) {
                sb_trimmed(&sys, &msgs[i]);
                continue;
            }
            const bool model = is(&msgs[i], "assistant");
            sb_str(&b, "<start_of_turn>");
            sb_str(&b, model ? "model" : msgs[i].role);
            sb_str(&b, "\n");
            if (sys.len && !model) {
                sb_add(&b, sys.p, sys.len);
                sb_str(&b, "\n\n");
                sys.len = 0;
            }
            sb_trimmed(&b, &msgs[i]);
            sb_str(&b, "<end_of_turn>\n");
        }
        b.oom |= sys.oom;
        free(sys.p);
        sb_str(&b, "<start_of_turn>model\n");
        break;
    }
    case EM_TMPL_PHI3:
        for (size_t i = 0; i < n; i++) {
            sb_str(&b, "<|");
            sb_str(&b, msgs[i].role);
            sb_str(&b, "|>\n");
            sb_msg(&b, &msgs[i]);
            sb_str(&b, "<|end|>\n");
        }
        sb_str(&b, "<|assistant|>\n");
        break;
    case EM_TMPL_PLAIN:
    default:
        for (size_t i = 0; i < n; i++) {
            sb_str(&b, msgs[i].role);
            sb_str(&b, ": ");
            sb_msg(&b, &msgs[i]);
            sb_str(&b, "\n");
        }
        sb_str(&b, "assistant:");
        break;
    }
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    if (len) *len = b.len;
    return b.p;
}
