/* cmd_mkmodel.c - `ember mkmodel OUT.gguf`: writes a random-weight Llama
 * GGUF (llama.cpp's tensor names and shapes, a real tokenizer; dense or
 * Mixtral-style mixture of experts) for benchmarks and tests. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "args.h"
#include "cli.h"
#include "common.h"
#include "../model/mkmodel.h"

#ifndef EMBER_DEFAULT_VOCAB
#define EMBER_DEFAULT_VOCAB "../shared/vocab/ggml-vocab-llama-bpe.gguf"
#endif

static void help(void) {
    printf("usage: ember mkmodel OUT.gguf (--shape NAME | --layers N --embd E --heads H --ff F) [options]\n\n"
           "Writes a Llama GGUF with random weights (~N(0, 0.02^2), norms ~1), deterministic from the seed,\n"
           "with llama.cpp's tensor names and shapes and a real tokenizer, for benchmarks and tests.\n\n"
           "  --shape NAME       named dimensions (below); the flags after override single values\n"
           "  --layers N, --embd E, --heads H, --kv-heads K (default H), --ff F (each expert's, in a MoE)\n"
           "  --experts N        Mixtral-style mixture of experts with N experts per layer (0: dense)\n"
           "  --experts-used K   experts chosen per token (default: the shape's, else min(2, N))\n"
           "  --rope-base B      RoPE frequency base (default 10000, or the shape's)\n"
           "  --ctx N            llama.context_length (default 4096, or the shape's)\n"
           "  --vocab V          vocabulary size: must match --vocab-from's, or sets the synthetic one's\n"
           "  --vocab-from FILE  GGUF to copy the tokenizer (every tokenizer.* key) from\n"
           "                     (default " EMBER_DEFAULT_VOCAB ");\n"
           "                     'none': a synthetic SentencePiece vocabulary of --vocab tokens\n"
           "  --type T           weight format (default q8_0):");
    for (size_t i = 0; em_mkmodel_ftype_at(i); i++) printf(" %s", em_mkmodel_ftype_at(i)->name);
    printf("\n"
           "                     plain types quantize every matrix alike (like llama-quantize --pure);\n"
           "                     q4_k_m / q5_k_m follow llama.cpp's mix (output, part of attn_v/ffn_down in Q6_K)\n"
           "  --seed S           (default 1)\n"
           "  --name TEXT        general.name (default: the shape name)\n"
           "  -t N               threads (default: all cores; the file does not depend on it)\n"
           "  --quiet            no summary on stderr\n\n"
           "shapes:\n");
    for (size_t i = 0; em_mkmodel_shape_at(i); i++) {
        const em_mkmodel_shape *s = em_mkmodel_shape_at(i);
        printf("  %-13s %u layers, embd %u, %u heads, %u kv heads, ff %u, rope base %g%s, ctx %u", s->name,
               s->n_layer, s->n_embd, s->n_head, s->n_head_kv, s->n_ff, (double)s->rope_base,
               s->llama3_rope ? " + llama3 rope factors" : "", s->n_ctx_train);
        if (s->n_expert) printf(", %u experts (%u used)", s->n_expert, s->n_expert_used);
        printf("\n");
    }
}

static int u32_opt(const char *flag, const char *v, long lo, long hi, uint32_t *out) {
    long x;
    if (arg_long(flag, v, lo, hi, &x)) return -1;
    *out = (uint32_t)x;
    return 0;
}

int cmd_mkmodel(int argc, char **argv) {
    em_mkmodel_opts o;
    memset(&o, 0, sizeof o);
    o.shape.n_ctx_train = 4096;
    o.shape.rope_base = 10000.0f;
    o.seed = 1;
    o.ftype = em_mkmodel_find_ftype("q8_0");
    long nproc = sysconf(_SC_NPROCESSORS_ONLN);
    long threads = nproc > 0 ? (nproc > 256 ? 256 : nproc) : 1;
    const char *out = NULL, *vocab_from = EMBER_DEFAULT_VOCAB, *shape_name = NULL;
    bool quiet = false, vocab_given = false;
    /* Which dimensions were set explicitly (they override the shape). */
    uint32_t layers = 0, embd = 0, heads = 0, kv_heads = 0, ff = 0, ctx = 0, vocab = 0, experts = 0, experts_used = 0;
    float rope_base = 0;
    bool have_rope = false, have_experts = false, have_experts_used = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { help(); return 0; }
        else if (!strcmp(a, "--quiet")) quiet = true;
        else if (!strcmp(a, "--shape")) { if (!(shape_name = arg_value(argc, argv, &i))) return 1; }
        else if (!strcmp(a, "--layers")) { if (!(v = arg_value(argc, argv, &i)) || u32_opt(a, v, 1, 1024, &layers)) return 1; }
        else if (!strcmp(a, "--embd")) { if (!(v = arg_value(argc, argv, &i)) || u32_opt(a, v, 1, 1 << 16, &embd)) return 1; }
        else if (!strcmp(a, "--heads")) { if (!(v = arg_value(argc, argv, &i)) || u32_opt(a, v, 1, 1024, &heads)) return 1; }
        else if (!strcmp(a, "--kv-heads")) { if (!(v = arg_value(argc, argv, &i)) || u32_opt(a, v, 1, 1024, &kv_heads)) return 1; }
        else if (!strcmp(a, "--ff")) { if (!(v = arg_value(argc, argv, &i)) || u32_opt(a, v, 1, 1 << 18, &ff)) return 1; }
        else if (!strcmp(a, "--ctx")) { if (!(v = arg_value(argc, argv, &i)) || u32_opt(a, v, 1, 1 << 24, &ctx)) return 1; }
        else if (!strcmp(a, "--vocab")) { if (!(v = arg_value(argc, argv, &i)) || u32_opt(a, v, 1, 1 << 22, &vocab)) return 1; }
        else if (!strcmp(a, "--experts")) {
            if (!(v = arg_value(argc, argv, &i)) || u32_opt(a, v, 0, 256, &experts)) return 1;
            have_experts = true;
        } else if (!strcmp(a, "--experts-used")) {
            if (!(v = arg_value(argc, argv, &i)) || u32_opt(a, v, 1, 256, &experts_used)) return 1;
            have_experts_used = true;
        }
        else if (!strcmp(a, "--rope-base")) {
            if (!(v = arg_value(argc, argv, &i)) || arg_float(a, v, 1.0001, 1e9, &rope_base)) return 1;
            have_rope = true;
        } else if (!strcmp(a, "--vocab-from")) {
            if (!(vocab_from = arg_value(argc, argv, &i))) return 1;
            vocab_given = true;
        } else if (!strcmp(a, "--type")) {
            if (!(v = arg_value(argc, argv, &i))) return 1;
            if (!(o.ftype = em_mkmodel_find_ftype(v)))
                return cli_error("--type: unknown type '%s' (see 'ember mkmodel --help')", v);
        } else if (!strcmp(a, "--seed")) {
            if (!(v = arg_value(argc, argv, &i)) || arg_u64(a, v, &o.seed)) return 1;
        } else if (!strcmp(a, "--name")) {
            if (!(o.name = arg_value(argc, argv, &i))) return 1;
        } else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) {
            if (!(v = arg_value(argc, argv, &i)) || arg_long(a, v, 1, 256, &threads)) return 1;
        } else if (a[0] == '-' && a[1]) {
            return cli_error("mkmodel: unknown option '%s' (see 'ember mkmodel --help')", a);
        } else if (!out) {
            out = a;
        } else {
            return cli_error("mkmodel: more than one output file ('%s' and '%s')", out, a);
        }
    }
    if (!out) return cli_error("mkmodel: no output file (usage: ember mkmodel OUT.gguf --shape NAME ...)");
    if (shape_name) {
        const em_mkmodel_shape *s = em_mkmodel_find_shape(shape_name);
        if (!s) {
            char list[256] = "";
            for (size_t i = 0; em_mkmodel_shape_at(i); i++) {
                if (i) strncat(list, ", ", sizeof list - strlen(list) - 1);
                strncat(list, em_mkmodel_shape_at(i)->name, sizeof list - strlen(list) - 1);
            }
            return cli_error("--shape: unknown shape '%s' (known: %s)", shape_name, list);
        }
        o.shape = *s;
    } else {
        const char *missing = !layers ? "--layers" : !embd ? "--embd" : !heads ? "--heads" : !ff ? "--ff" : NULL;
        if (missing) return cli_error("mkmodel: %s is required without --shape", missing);
        o.shape.name = NULL;
        o.shape.n_head_kv = 0;
        o.shape.n_expert = o.shape.n_expert_used = 0;
    }
    if (layers) o.shape.n_layer = layers;
    if (embd) o.shape.n_embd = embd;
    if (heads) o.shape.n_head = heads;
    if (kv_heads) o.shape.n_head_kv = kv_heads;
    else if (!shape_name || heads) o.shape.n_head_kv = o.shape.n_head;
    if (ff) o.shape.n_ff = ff;
    if (ctx) o.shape.n_ctx_train = ctx;
    if (have_rope) o.shape.rope_base = rope_base;
    if (have_experts) {
        o.shape.n_expert = experts;
        if (experts == 0) o.shape.n_expert_used = 0;
        else if (o.shape.n_expert_used == 0 || o.shape.n_expert_used > experts)
            o.shape.n_expert_used = experts < 2 ? experts : 2;
    }
    if (have_experts_used) {
        if (o.shape.n_expert == 0) return cli_error("mkmodel: --experts-used needs --experts N (or a MoE shape)");
        o.shape.n_expert_used = experts_used;
    }
    o.n_vocab = vocab;
    o.n_threads = (int)threads;
    if (!strcmp(vocab_from, "none")) {
        if (!vocab) return cli_error("mkmodel: --vocab-from none needs --vocab N");
        o.vocab_path = NULL;
    } else {
        o.vocab_path = vocab_from;
        if (access(vocab_from, R_OK) != 0) {
            if (!vocab_given)
                return cli_error("mkmodel: default vocabulary %s not found (give --vocab-from FILE, or "
                                 "--vocab-from none --vocab N)", vocab_from);
            if (cli_check_file(vocab_from)) return 1;
        }
    }
    em_err err = {{0}};
    if (em_mkmodel_check(&o, &err)) return cli_error("mkmodel: %s", err.msg);
    double t0 = cli_now_ms();
    em_mkmodel_stats st;
    if (em_mkmodel_write(out, &o, &st, &err)) return cli_error("mkmodel: %s", err.msg);
    char moe[64] = "";
    if (o.shape.n_expert)
        snprintf(moe, sizeof moe, ", %u experts (%u used)", o.shape.n_expert, o.shape.n_expert_used);
    if (!quiet)
        fprintf(stderr,
                "ember: wrote %s: %s, %u layers, embd %u, %u/%u heads, ff %u%s, vocab %u, %.1f M params, %.1f MiB, "
                "%u tensors, seed %llu, %.1f s (%ld threads)\n",
                out, o.ftype->name, o.shape.n_layer, o.shape.n_embd, o.shape.n_head, o.shape.n_head_kv, o.shape.n_ff,
                moe, st.n_vocab, st.n_params / 1e6, st.n_bytes / 1048576.0, st.n_tensors, (unsigned long long)o.seed,
                (cli_now_ms() - t0) / 1e3, threads);
    return 0;
}
