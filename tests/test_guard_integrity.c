/* test_guard_integrity.c - model integrity (src/guard/integrity.h):
 * streaming SHA-256, structural checks, the models manifest, and a tampered
 * copy of models/stories260K.gguf (one byte flipped) failing verification. */
#include "testutil.h"

#include <openssl/evp.h>
#include <unistd.h>

#include "guard/integrity.h"

#define MODEL "models/stories260K.gguf"

static char dir[64];

static int setup(void **state) {
    (void)state;
    strcpy(dir, "/tmp/ember-integrity-XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void write_file(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, n, f), n);
    fclose(f);
}

static void test_sha256(void **state) {
    (void)state;
    char p[128];
    snprintf(p, sizeof p, "%s/abc", dir);
    write_file(p, "abc", 3);
    uint8_t d[32];
    uint64_t size;
    em_err err;
    assert_int_equal(em_sha256_file(p, d, &size, &err), 0);
    char hex[65];
    em_hex_encode(d, 32, hex);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    assert_int_equal(size, 3);
    uint8_t abc[32];
    memcpy(abc, d, 32);
    /* streaming over > 1 MiB reads equals the one-shot digest */
    size_t n = 0;
    char *m = read_file(MODEL, &n);
    assert_non_null(m);
    uint8_t one[32];
    unsigned int ol;
    EVP_Digest(m, n, one, &ol, EVP_sha256(), NULL);
    assert_int_equal(em_sha256_file(MODEL, d, &size, &err), 0);
    assert_memory_equal(d, one, 32);
    assert_int_equal(size, n);
    free(m);
    assert_int_equal(em_sha256_file("/nonexistent/x", d, NULL, &err), -1);
    assert_non_null(strstr(err.msg, "No such file"));
    assert_int_equal(em_sha256_file(dir, d, NULL, &err), -1);
    assert_int_equal(em_sha256_parse(" BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD\n", d, &err), 0);
    assert_memory_equal(d, abc, 32);
    assert_int_equal(em_sha256_parse("ba7816bf", d, &err), -1);
    assert_int_equal(em_sha256_parse("zz7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", d, &err), -1);
}

static void test_verify_model(void **state) {
    (void)state;
    em_integrity_report rep;
    em_err err;
    uint8_t good[32];
    assert_int_equal(em_sha256_file(MODEL, good, NULL, &err), 0);
    assert_int_equal(em_integrity_verify(MODEL, good, EM_VERIFY_ALL, &rep, &err), 0);
    assert_true(rep.hash_checked && rep.hash_ok);
    assert_true(rep.gguf_ok && rep.model_ok);
    assert_true(rep.n_tensors > 0);
    assert_non_null(strstr(rep.model_desc, "llama"));
    uint8_t wrong[32];
    memcpy(wrong, good, 32);
    wrong[31] ^= 1;
    assert_int_equal(em_integrity_verify(MODEL, wrong, EM_VERIFY_HASH, &rep, &err), -1);
    assert_non_null(strstr(err.msg, "SHA-256 mismatch"));
    /* not a GGUF file */
    char p[128];
    snprintf(p, sizeof p, "%s/text.gguf", dir);
    write_file(p, "just text, not a model", 22);
    assert_int_equal(em_integrity_verify(p, NULL, EM_VERIFY_ALL, &rep, &err), -1);
    assert_false(rep.gguf_ok);
    assert_false(rep.model_checked);
    assert_non_null(strstr(err.msg, "GGUF"));
}

static void test_manifest_tampered(void **state) {
    (void)state;
    size_t n = 0;
    char *m = read_file(MODEL, &n);
    assert_non_null(m);
    char copy[160], bad[160], man[160];
    snprintf(copy, sizeof copy, "%s/stories.gguf", dir);
    snprintf(bad, sizeof bad, "%s/tampered.gguf", dir);
    snprintf(man, sizeof man, "%s/models.json", dir);
    write_file(copy, m, n);
    m[n - 1000] ^= 0x01; /* one bit of one byte in the tensor data */
    write_file(bad, m, n);
    free(m);
    uint8_t d[32];
    char hex[65], json[512];
    em_err err;
    assert_int_equal(em_sha256_file(copy, d, NULL, &err), 0);
    em_hex_encode(d, 32, hex);
    snprintf(json, sizeof json,
             "{\"models\": {\"stories\": {\"path\": \"stories.gguf\", \"sha256\": \"%s\"},"
             " \"stories-tampered\": {\"path\": \"%s\", \"sha256\": \"%s\"}}}",
             hex, bad, hex);
    write_file(man, json, strlen(json));
    em_manifest *mf = em_manifest_load(man, &err);
    if (!mf) fail_msg("%s", err.msg);
    assert_int_equal(mf->n, 2);
    const em_manifest_entry *e = em_manifest_find(mf, "stories");
    assert_non_null(e);
    assert_string_equal(e->path, copy); /* relative to the manifest's folder */
    assert_ptr_equal(em_manifest_find_path(mf, copy), e);
    assert_null(em_manifest_find(mf, "nope"));
    em_integrity_report rep;
    assert_int_equal(em_integrity_verify(e->path, e->sha256, EM_VERIFY_ALL, &rep, &err), 0);
    const em_manifest_entry *t = em_manifest_find(mf, "stories-tampered");
    assert_int_equal(em_integrity_verify(t->path, t->sha256, EM_VERIFY_ALL, &rep, &err), -1);
    assert_true(rep.hash_checked);
    assert_false(rep.hash_ok);
    assert_non_null(strstr(err.msg, "SHA-256 mismatch"));
    assert_non_null(strstr(err.msg, hex));
    em_manifest_free(mf);

    static const char *const broken[] = {
        "not json", "{}", "{\"models\": {\"a\": {\"path\": \"x.gguf\"}}}",
        "{\"models\": {\"a\": {\"sha256\": \"00\"}}}",
        "{\"models\": {\"a\": {\"path\": \"x\", \"sha256\": \"abc\"}}}",
        "{\"models\": {\"a\": {\"path\": \"x\", \"sha256\": \"" "0000000000000000000000000000000000000000000000000000000000000000"
        "\"}, \"a\": {\"path\": \"y\", \"sha256\": \"" "0000000000000000000000000000000000000000000000000000000000000000" "\"}}}",
    };
    for (size_t i = 0; i < sizeof broken / sizeof broken[0]; i++) {
        em_manifest *b = em_manifest_parse(broken[i], strlen(broken[i]), NULL, &err);
        if (b) fail_msg("manifest %zu parsed: %s", i, broken[i]);
        assert_true(strlen(err.msg) > 0);
    }
    /* the top-level "models" wrapper is optional */
    const char *flat = "{\"m\": {\"path\": \"/abs/m.gguf\", \"sha256\": "
                       "\"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\"}}";
    mf = em_manifest_parse(flat, strlen(flat), "/ignored", &err);
    assert_non_null(mf);
    assert_string_equal(mf->entries[0].path, "/abs/m.gguf");
    em_manifest_free(mf);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sha256),
        cmocka_unit_test(test_verify_model),
        cmocka_unit_test(test_manifest_tampered),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
