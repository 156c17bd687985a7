/* test_tokenizer_tables.c - the tokenizer's load-time tables (see the
 * region, hash slots and merge index in src/text/tokenizer.c), on
 * hand-built BPE vocabularies written with the GGUF writer:
 *  - pieces that outgrow their place in the region ("[UNK_BYTE_..."
 *    pieces) and pieces that still fit, before and after such a token;
 *  - duplicate merges: the first (lowest rank) one counts;
 *  - a merge naming a string that is not a token is refused at load;
 *  - a vocabulary of 70000 tokens with 69974 merges: pieces are the
 *    texts and tokenizing a token's text merges as the ranks say. */
#include "testutil.h"
#include "gguf/gguf.h"
#include "text/tokenizer.h"

#include <unistd.h>

/* Writes a gpt2/"gpt-2" tokenizer with these tokens and merges to a temp
 * file and loads it; NULL with err filled when the load fails. */
static em_tokenizer *load_bpe(const char *const *tokens, size_t nt, const char *const *merges, size_t nm, em_err *err) {
    char path[] = "/tmp/ember_tok_tables_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    em_err werr = {{0}};
    em_gguf_writer *w = em_gguf_writer_new(32);
    assert_non_null(w);
    assert_int_equal(em_gguf_write_str(w, "tokenizer.ggml.model", "gpt2", &werr), 0);
    assert_int_equal(em_gguf_write_str(w, "tokenizer.ggml.pre", "gpt-2", &werr), 0);
    assert_int_equal(em_gguf_write_arr_str(w, "tokenizer.ggml.tokens", tokens, nt, &werr), 0);
    assert_int_equal(em_gguf_write_arr_str(w, "tokenizer.ggml.merges", merges, nm, &werr), 0);
    if (em_gguf_writer_finish(w, path, &werr)) fail_msg("writing %s: %s", path, werr.msg);
    em_gguf_writer_free(w);
    em_gguf *g = em_gguf_open(path, err);
    unlink(path);
    if (!g) fail_msg("reopening: %s", err->msg);
    em_tokenizer *t = em_tokenizer_load(g, err);
    em_gguf_close(g);
    return t;
}

static void expect_piece(const em_tokenizer *t, int32_t id, const char *want) {
    char buf[256];
    int n = em_token_to_piece(t, id, true, buf, sizeof buf);
    assert_true(n >= 0 && (size_t)n < sizeof buf);
    buf[n] = 0;
    if (strcmp(buf, want) != 0) fail_msg("token %d: piece '%s', expected '%s'", id, buf, want);
}

static size_t tokenize(const em_tokenizer *t, const char *s, int32_t *out, size_t cap) {
    em_err err = {{0}};
    int32_t *ids;
    size_t n;
    if (em_tokenize(t, s, strlen(s), false, false, &ids, &n, &err)) fail_msg("em_tokenize: %s", err.msg);
    assert_true(n <= cap);
    memcpy(out, ids, n * sizeof *ids);
    free(ids);
    return n;
}

/* "\u4e2d" is not in the byte-level alphabet, so its token renders as
 * llama.cpp does: "[UNK_BYTE_0x" + the UTF-8 bytes in hex + the token
 * text + "]", much longer than the text. */
static void test_unk_byte_pieces(void **state) {
    (void)state;
    em_err err = {{0}};
    /* little slack before the long piece: the pieces move to the heap */
    static const char *const a[] = {"x", "\xc4\xa0" "y", "a\xe4\xb8\xad" "b", "c", "\xc4\xa0\xc4\xa0"};
    em_tokenizer *t = load_bpe(a, 5, NULL, 0, &err);
    if (!t) fail_msg("%s", err.msg);
    expect_piece(t, 0, "x");
    expect_piece(t, 1, " y");
    expect_piece(t, 2, "a[UNK_BYTE_0xe4b8ada\xe4\xb8\xad" "b]b");
    expect_piece(t, 3, "c");
    expect_piece(t, 4, "  ");
    size_t len;
    int32_t ids[] = {1, 2, 3, 4};
    char *s = em_detokenize(t, ids, 4, true, false, &len, &err);
    assert_non_null(s);
    assert_string_equal(s, " ya[UNK_BYTE_0xe4b8ada\xe4\xb8\xad" "b]bc  ");
    free(s);
    em_tokenizer_free(t);

    /* plenty of slack first (2-byte characters rendered as 1 byte): the
     * long piece still fits where the pieces started */
    static const char *const b[] = {
        "\xc4\xa0\xc4\xa0\xc4\xa0\xc4\xa0\xc4\xa0\xc4\xa0\xc4\xa0\xc4\xa0\xc4\xa0\xc4\xa0\xc4\xa0\xc4\xa0\xc4\xa0"
        "\xc4\xa0\xc4\xa0\xc4\xa0\xc4\xa0\xc4\xa0\xc4\xa0\xc4\xa0",
        "\xe4\xb8\xad", "z"};
    t = load_bpe(b, 3, NULL, 0, &err);
    if (!t) fail_msg("%s", err.msg);
    expect_piece(t, 0, "                    ");
    expect_piece(t, 1, "[UNK_BYTE_0xe4b8ad\xe4\xb8\xad]");
    expect_piece(t, 2, "z");
    em_tokenizer_free(t);
}

static void test_merges(void **state) {
    (void)state;
    em_err err = {{0}};
    static const char *const toks[] = {"a", "b", "c", "ab", "bc", "abc"};
    int32_t ids[8];

    /* ranks: "b c" before "a b", then "a bc" */
    static const char *const m1[] = {"b c", "a b", "a bc"};
    em_tokenizer *t = load_bpe(toks, 6, m1, 3, &err);
    if (!t) fail_msg("%s", err.msg);
    assert_int_equal(tokenize(t, "abc", ids, 8), 1);
    assert_int_equal(ids[0], 5);
    assert_int_equal(tokenize(t, "ab", ids, 8), 1);
    assert_int_equal(ids[0], 3);
    em_tokenizer_free(t);

    /* a duplicate keeps its first rank: "a b" (rank 0) wins over "b c" (rank 1) */
    static const char *const m2[] = {"a b", "b c", "a b", "b c"};
    t = load_bpe(toks, 6, m2, 4, &err);
    if (!t) fail_msg("%s", err.msg);
    assert_int_equal(tokenize(t, "abc", ids, 8), 2);
    assert_int_equal(ids[0], 3);
    assert_int_equal(ids[1], 2);
    em_tokenizer_free(t);

    /* the same pairs the other way round */
    static const char *const m3[] = {"b c", "a b", "b c", "a b"};
    t = load_bpe(toks, 6, m3, 4, &err);
    if (!t) fail_msg("%s", err.msg);
    assert_int_equal(tokenize(t, "abc", ids, 8), 2);
    assert_int_equal(ids[0], 0);
    assert_int_equal(ids[1], 4);
    em_tokenizer_free(t);

    /* either side not a token: refused at load, naming the merge */
    static const char *const bad1[] = {"a b", "ab zz"}, *const bad2[] = {"q c"};
    assert_null(load_bpe(toks, 6, bad1, 2, &err));
    assert_non_null(strstr(err.msg, "tokenizer.ggml.merges[1] 'ab zz' references a token not in the vocabulary"));
    assert_null(load_bpe(toks, 6, bad2, 1, &err));
    assert_non_null(strstr(err.msg, "merges[0]"));
}

/* 26 single letters, every two-letter "xy" (merge "x y", rank 26x + y),
 * every three-letter "xyz" (merge "xy z"), then four-letter "xyzw" (merge
 * "xyz w") up to 70000 tokens. */
static void test_large_vocab(void **state) {
    (void)state;
    enum { NT = 70000, NM = NT - 26 };
    char **tk = calloc(NT, sizeof *tk), **mg = calloc(NM, sizeof *mg);
    assert_non_null(tk);
    assert_non_null(mg);
    int n = 0, m = 0;
    for (int i = 0; i < 26; i++) {
        tk[n] = malloc(2);
        tk[n][0] = (char)('a' + i);
        tk[n++][1] = 0;
    }
    for (int i = 0; i < 26 && n < NT; i++)
        for (int j = 0; j < 26 && n < NT; j++) {
            tk[n] = malloc(3);
            snprintf(tk[n++], 3, "%c%c", 'a' + i, 'a' + j);
            mg[m] = malloc(4);
            snprintf(mg[m++], 4, "%c %c", 'a' + i, 'a' + j);
        }
    for (int i = 0; i < 26 && n < NT; i++)
        for (int j = 0; j < 26 && n < NT; j++)
            for (int k = 0; k < 26 && n < NT; k++) {
                tk[n] = malloc(4);
                snprintf(tk[n++], 4, "%c%c%c", 'a' + i, 'a' + j, 'a' + k);
                mg[m] = malloc(5);
                snprintf(mg[m++], 5, "%c%c %c", 'a' + i, 'a' + j, 'a' + k);
            }
    for (int i = 0; n < NT; i++) {
        char w[4] = {(char)('a' + i / 17576 % 26), (char)('a' + i / 676 % 26), (char)('a' + i / 26 % 26),
                     (char)('a' + i % 26)};
        tk[n] = malloc(5);
        snprintf(tk[n++], 5, "%.4s", w);
        mg[m] = malloc(6);
        snprintf(mg[m++], 6, "%.3s %c", w, w[3]);
    }
    assert_int_equal(m, NM);
    em_err err = {{0}};
    em_tokenizer *t = load_bpe((const char *const *)tk, NT, (const char *const *)mg, NM, &err);
    if (!t) fail_msg("%s", err.msg);
    assert_int_equal(em_tokenizer_n_vocab(t), NT);
    int32_t ids[8];
    for (int id = 0; id < NT; id += 7) {
        char buf[8];
        int l = em_token_to_piece(t, id, true, buf, sizeof buf);
        size_t len = strlen(tk[id]);
        assert_int_equal(l, (int)len);
        assert_memory_equal(buf, tk[id], len);
        /* what the merges make of the token's text: one- and two-letter
         * tokens come back whole; "xyz" too when "x y" ranks before (or
         * with, leftmost first) "y z", else it is [x, yz] */
        size_t k = tokenize(t, tk[id], ids, 8);
        const char *s = tk[id];
        if (len <= 2) {
            assert_int_equal(k, 1);
            assert_int_equal(ids[0], id);
        } else if (len == 3) {
            int x = s[0] - 'a', y = s[1] - 'a', z = s[2] - 'a';
            int xy = 26 * x + y, yz = 26 * y + z;
            if (xy <= yz) {
                assert_int_equal(k, 1);
                assert_int_equal(ids[0], id);
            } else {
                assert_int_equal(k, 2);
                assert_int_equal(ids[0], x);
                assert_int_equal(ids[1], 26 + yz);
            }
        } else {
            assert_true(k >= 2 && k <= 4);
        }
        size_t dl;
        char *d = em_detokenize(t, ids, k, true, false, &dl, &err);
        assert_non_null(d);
        assert_int_equal(dl, len);
        assert_memory_equal(d, s, len);
        free(d);
    }
    em_tokenizer_free(t);
    for (int i = 0; i < NT; i++) free(tk[i]);
    for (int i = 0; i < NM; i++) free(mg[i]);
    free(tk);
    free(mg);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unk_byte_pieces),
        cmocka_unit_test(test_merges),
        cmocka_unit_test(test_large_vocab),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
