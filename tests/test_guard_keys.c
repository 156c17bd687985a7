/* test_guard_keys.c - API keys in SQLite (src/guard/keys.h): creation,
 * hashing (the token is never stored), constant-time authentication with
 * missing / invalid / revoked / expired outcomes, model scopes, Bearer
 * parsing, persistence and concurrent use. */
#include "testutil.h"

#include <pthread.h>
#include <unistd.h>

#include "guard/keys.h"
#include "guard/util.h"

static char dir[64], dbpath[128];

static int setup(void **state) {
    (void)state;
    strcpy(dir, "/tmp/ember-keys-XXXXXX");
    if (!mkdtemp(dir)) return -1;
    snprintf(dbpath, sizeof dbpath, "%s/guard.db", dir);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static em_db *open_db(void) {
    em_err err;
    em_db *d = em_db_open(dbpath, &err);
    if (!d) fail_msg("open: %s", err.msg);
    return d;
}

static void test_create_authenticate(void **state) {
    (void)state;
    em_db *d = open_db();
    em_err err;
    int64_t now = 1700000000;
    char tok[EM_KEY_TOKEN_LEN + 1];
    em_key k;
    em_key_spec spec = {.name = "alice", .models = "m1,m2", .rpm = 60, .tpm = 1000, .max_concurrent = 2};
    assert_int_equal(em_keys_create(d, &spec, now, tok, &k, &err), 0);
    assert_int_equal(strlen(tok), EM_KEY_TOKEN_LEN);
    assert_memory_equal(tok, "em-", 3);
    assert_int_equal(strlen(k.fingerprint), 16);
    assert_string_equal(k.models, "m1,m2");
    assert_int_equal(k.rpm, 60);

    em_key a;
    assert_int_equal(em_keys_authenticate(d, tok, strlen(tok), now, &a, &err), EM_AUTH_OK);
    assert_int_equal(a.id, k.id);
    assert_string_equal(a.name, "alice");
    assert_int_equal(a.tpm, 1000);
    assert_int_equal(a.max_concurrent, 2);
    assert_true(em_key_allows_model(&a, "m1"));
    assert_true(em_key_allows_model(&a, "m2"));
    assert_false(em_key_allows_model(&a, "m"));
    assert_false(em_key_allows_model(&a, "m3"));

    assert_int_equal(em_keys_authenticate(d, NULL, 0, now, &a, &err), EM_AUTH_MISSING);
    assert_int_equal(em_keys_authenticate(d, "em-short", 8, now, &a, &err), EM_AUTH_INVALID);
    char bad[EM_KEY_TOKEN_LEN + 1];
    strcpy(bad, tok);
    bad[20] = bad[20] == 'A' ? 'B' : 'A';
    assert_int_equal(em_keys_authenticate(d, bad, strlen(bad), now, &a, &err), EM_AUTH_INVALID);
    bad[20] = '!';
    assert_int_equal(em_keys_authenticate(d, bad, strlen(bad), now, &a, &err), EM_AUTH_INVALID);
    /* a token that is a prefix / has a suffix does not authenticate */
    assert_int_equal(em_keys_authenticate(d, tok, strlen(tok) - 1, now, &a, &err), EM_AUTH_INVALID);
    assert_string_equal(em_auth_code(EM_AUTH_INVALID), "invalid_api_key");

    /* names: unique among active keys, validated */
    assert_int_equal(em_keys_create(d, &spec, now, tok, NULL, &err), -1);
    assert_non_null(strstr(err.msg, "already exists"));
    em_key_spec bad_spec = {.name = "bad name!"};
    assert_int_equal(em_keys_create(d, &bad_spec, now, tok, NULL, &err), -1);
    bad_spec.name = "12345";
    assert_int_equal(em_keys_create(d, &bad_spec, now, tok, NULL, &err), -1);
    assert_non_null(strstr(err.msg, "digits"));
    bad_spec = (em_key_spec){.name = "x", .models = "a,,b"};
    assert_int_equal(em_keys_create(d, &bad_spec, now, tok, NULL, &err), -1);
    bad_spec = (em_key_spec){.name = "x", .expires_at = now - 1};
    assert_int_equal(em_keys_create(d, &bad_spec, now, tok, NULL, &err), -1);
    assert_non_null(strstr(err.msg, "past"));
    em_db_close(d);
}

static void test_revoke_expire_list(void **state) {
    (void)state;
    em_db *d = open_db();
    em_err err;
    int64_t now = 1700000000;
    char t1[EM_KEY_TOKEN_LEN + 1], t2[EM_KEY_TOKEN_LEN + 1], t3[EM_KEY_TOKEN_LEN + 1];
    em_key k1, k2, k3, a;
    em_key_spec s1 = {.name = "bob"}, s2 = {.name = "carol", .expires_at = now + 10, .admin = true};
    assert_int_equal(em_keys_create(d, &s1, now, t1, &k1, &err), 0);
    assert_int_equal(em_keys_create(d, &s2, now, t2, &k2, &err), 0);
    assert_true(k2.admin);
    assert_true(em_key_allows_model(&k1, "anything")); /* NULL models -> "*" */

    assert_int_equal(em_keys_authenticate(d, t2, strlen(t2), now + 9, &a, &err), EM_AUTH_OK);
    assert_int_equal(em_keys_authenticate(d, t2, strlen(t2), now + 10, &a, &err), EM_AUTH_EXPIRED);
    assert_string_equal(a.name, "carol"); /* filled for the audit log */

    assert_int_equal(em_keys_revoke(d, "bob", now + 1, &a, &err), 0);
    assert_int_equal(a.revoked_at, now + 1);
    assert_int_equal(em_keys_authenticate(d, t1, strlen(t1), now + 2, &a, &err), EM_AUTH_REVOKED);
    assert_int_equal(em_keys_revoke(d, "bob", now + 2, NULL, &err), -1);
    assert_non_null(strstr(err.msg, "no active key"));
    char id[32];
    snprintf(id, sizeof id, "%lld", (long long)k1.id);
    assert_int_equal(em_keys_revoke(d, id, now + 2, NULL, &err), -1);
    assert_non_null(strstr(err.msg, "already revoked"));
    assert_int_equal(em_keys_revoke(d, "nobody", now, NULL, &err), -1);

    /* the name is free again once revoked */
    assert_int_equal(em_keys_create(d, &s1, now + 3, t3, &k3, &err), 0);
    assert_true(k3.id != k1.id);
    assert_int_equal(em_keys_authenticate(d, t3, strlen(t3), now + 3, &a, &err), EM_AUTH_OK);

    em_key *list;
    size_t n;
    assert_int_equal(em_keys_list(d, &list, &n, &err), 0);
    assert_true(n >= 3);
    int revoked = 0;
    for (size_t i = 0; i < n; i++) revoked += list[i].revoked_at != 0;
    assert_int_equal(revoked, 1);
    free(list);
    em_db_close(d);

    /* persisted; and the file holds only hashes, never the token */
    d = open_db();
    assert_int_equal(em_keys_authenticate(d, t3, strlen(t3), now + 4, &a, &err), EM_AUTH_OK);
    em_db_close(d);
    char cmd[512];
    snprintf(cmd, sizeof cmd, "cat '%s'* | grep -c -a -F -e '%s' -e '%.20s' >/dev/null", dbpath, t3 + 3, t1 + 3);
    assert_int_not_equal(system(cmd), 0);
}

static void test_bearer(void **state) {
    (void)state;
    const char *t;
    size_t n;
    assert_true(em_auth_bearer("Bearer em-abc", &t, &n));
    assert_int_equal(n, 6);
    assert_memory_equal(t, "em-abc", 6);
    assert_true(em_auth_bearer("  bearer \t em-abc  \r\n", &t, &n));
    assert_int_equal(n, 6);
    assert_false(em_auth_bearer("Basic dXNlcjpwdw==", &t, &n));
    assert_false(em_auth_bearer("Bearer", &t, &n));
    assert_false(em_auth_bearer("Bearer   ", &t, &n));
    assert_false(em_auth_bearer("Bearerem-abc", &t, &n));
    assert_false(em_auth_bearer(NULL, &t, &n));
    assert_null(t);
}

static void test_schema(void **state) {
    (void)state;
    em_db *d = open_db();
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(d->db, "PRAGMA journal_mode", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(st, 0), "wal");
    sqlite3_finalize(st);
    em_db_close(d);
    /* not a database */
    char p[160];
    snprintf(p, sizeof p, "%s/not.db", dir);
    FILE *f = fopen(p, "w");
    fputs("this is not an sqlite database, just some text that is long enough to have a header", f);
    fclose(f);
    em_err err;
    assert_null(em_db_open(p, &err));
    assert_non_null(strstr(err.msg, p));
    snprintf(p, sizeof p, "%s/no/such/dir/x.db", dir);
    assert_null(em_db_open(p, &err));
}

typedef struct auth_job {
    em_db *d;
    const char *tok;
    int ok;
} auth_job;

static void *auth_worker(void *p) {
    auth_job *j = p;
    em_err err;
    em_key k;
    for (int i = 0; i < 200; i++)
        if (em_keys_authenticate(j->d, j->tok, strlen(j->tok), 1700000000, &k, &err) == EM_AUTH_OK) j->ok++;
    return NULL;
}

static void test_threads(void **state) {
    (void)state;
    em_db *d = open_db();
    em_err err;
    char tok[EM_KEY_TOKEN_LEN + 1];
    em_key_spec s = {.name = "threads"};
    assert_int_equal(em_keys_create(d, &s, 1699999999, tok, NULL, &err), 0);
    pthread_t th[8];
    auth_job jobs[8];
    for (int i = 0; i < 8; i++) {
        jobs[i] = (auth_job){d, tok, 0};
        pthread_create(&th[i], NULL, auth_worker, &jobs[i]);
    }
    for (int i = 0; i < 8; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(jobs[i].ok, 200);
    }
    em_db_close(d);
}

static void test_time_parse(void **state) {
    (void)state;
    int64_t t;
    em_err err;
    assert_int_equal(em_parse_time("30d", 1000, +1, &t, &err), 0);
    assert_int_equal(t, 1000 + 30 * 86400);
    assert_int_equal(em_parse_time("12h", 100000, -1, &t, &err), 0);
    assert_int_equal(t, 100000 - 12 * 3600);
    assert_int_equal(em_parse_time("2025-01-31", 0, +1, &t, &err), 0);
    assert_int_equal(t, 1738281600);
    assert_int_equal(em_parse_time("2025-01-31T12:30:00Z", 0, +1, &t, &err), 0);
    assert_int_equal(t, 1738281600 + 12 * 3600 + 1800);
    assert_int_equal(em_parse_time("2025-01-31T12:30:00+02:00", 0, +1, &t, &err), 0);
    assert_int_equal(t, 1738281600 + 10 * 3600 + 1800);
    assert_int_equal(em_parse_time("2025-02-30", 0, +1, &t, &err), -1);
    assert_int_equal(em_parse_time("30x", 0, +1, &t, &err), -1);
    assert_int_equal(em_parse_time("tomorrow", 0, +1, &t, &err), -1);
    assert_non_null(strstr(err.msg, "ISO 8601"));
    char b[32];
    em_format_time(1738281600, b);
    assert_string_equal(b, "2025-01-31T00:00:00Z");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create_authenticate), cmocka_unit_test(test_revoke_expire_list),
        cmocka_unit_test(test_bearer),              cmocka_unit_test(test_schema),
        cmocka_unit_test(test_threads),             cmocka_unit_test(test_time_parse),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
