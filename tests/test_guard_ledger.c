/* test_guard_ledger.c - usage ledger and audit log (src/guard/ledger.h):
 * rows, per key/model summaries, redacted audit content, and a writer
 * killed with SIGKILL mid-way leaving a consistent database that holds
 * every committed row. */
#include "testutil.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "guard/keys.h"
#include "guard/ledger.h"
#include "guard/redact.h"
#include "guard/util.h"

static char dir[64], dbpath[128];

static int setup(void **state) {
    (void)state;
    strcpy(dir, "/tmp/ember-ledger-XXXXXX");
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

static void test_summary(void **state) {
    (void)state;
    em_err err;
    em_db *d = em_db_open(dbpath, &err);
    assert_non_null(d);
    char tok[EM_KEY_TOKEN_LEN + 1];
    em_key k;
    em_key_spec spec = {.name = "team-a"};
    assert_int_equal(em_keys_create(d, &spec, em_now_s(), tok, &k, &err), 0);
    int64_t base = 1700000000000LL;
    long want_p = 0, want_c = 0;
    for (int i = 0; i < 50; i++) {
        em_usage_row r = {.ts_ms = base + i * 1000, .key_id = i % 5 == 4 ? 0 : k.id,
                          .model = i % 2 ? "stories" : "llama", .endpoint = "/v1/chat/completions",
                          .prompt_tokens = 10 + i, .completion_tokens = 2 * i, .latency_ms = 100,
                          .status = i % 10 == 3 ? 429 : 200, .guard = i % 7 ? NULL : "injection:flag:override"};
        int64_t id;
        assert_int_equal(em_ledger_record(d, &r, NULL, &id, &err), 0);
        assert_true(id > 0);
        if (i >= 20) want_p += 10 + i, want_c += 2 * i;
    }
    em_usage_sum *s;
    size_t n;
    assert_int_equal(em_ledger_summary(d, 0, base + 20000, &s, &n, &err), 0);
    assert_int_equal(n, 4); /* (no key, team-a) x (llama, stories) */
    long got_p = 0, got_c = 0, req = 0, errs = 0;
    for (size_t i = 0; i < n; i++) {
        got_p += s[i].prompt_tokens, got_c += s[i].completion_tokens, req += s[i].requests, errs += s[i].errors;
        if (s[i].key_id) assert_string_equal(s[i].key_name, "team-a");
        assert_true(s[i].first_ms >= base + 20000);
    }
    assert_int_equal(got_p, want_p);
    assert_int_equal(got_c, want_c);
    assert_int_equal(req, 30);
    assert_int_equal(errs, 3); /* i = 23, 33, 43 */
    free(s);
    assert_int_equal(em_ledger_summary(d, k.id, 0, &s, &n, &err), 0);
    assert_int_equal(n, 2);
    assert_int_equal(s[0].requests + s[1].requests, 40);
    free(s);
    em_db_close(d);
}

static char *column_text(em_db *d, const char *sql) {
    sqlite3_stmt *st;
    char *out = NULL;
    if (sqlite3_prepare_v2(d->db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW &&
        sqlite3_column_type(st, 0) != SQLITE_NULL)
        out = strdup((const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    return out;
}

static void test_audit_content(void **state) {
    (void)state;
    em_err err;
    em_db *d = em_db_open(dbpath, &err);
    em_redactor *r = em_redactor_new(0, &err);
    assert_non_null(r);
    em_usage_row row = {.key_id = 1, .model = "m", .status = 200, .prompt_text = "mail me at jane@example.com",
                        .completion_text = "card 4111 1111 1111 1111 ok"};
    int64_t id;
    assert_int_equal(em_ledger_record(d, &row, NULL, &id, &err), 0); /* audit off: no text kept */
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT prompt_text FROM usage_log WHERE id = %lld", (long long)id);
    assert_null(column_text(d, sql));
    em_ledger_opts on = {.audit_content = true, .redactor = r};
    assert_int_equal(em_ledger_record(d, &row, &on, &id, &err), 0);
    snprintf(sql, sizeof sql, "SELECT prompt_text || '|' || completion_text FROM usage_log WHERE id = %lld",
             (long long)id);
    char *t = column_text(d, sql);
    assert_non_null(t);
    assert_string_equal(t, "mail me at [REDACTED:EMAIL]|card [REDACTED:CREDIT_CARD] ok");
    free(t);
    em_ledger_opts no_redactor = {.audit_content = true};
    assert_int_equal(em_ledger_record(d, &row, &no_redactor, &id, &err), -1);
    em_redactor_free(r);
    em_db_close(d);
}

/* The child appends rows as fast as it can and reports each committed id
 * on a pipe; the parent kills it with SIGKILL at a random point. */
static void writer_child(int fd, const char *path) {
    em_err err;
    em_db *d = em_db_open(path, &err);
    if (!d) _exit(2);
    for (long i = 0;; i++) {
        em_usage_row r = {.ts_ms = em_now_ms(), .key_id = 1 + i % 3, .model = "stories", .prompt_tokens = i,
                          .completion_tokens = 1, .latency_ms = 1, .status = 200};
        int64_t id;
        if (em_ledger_record(d, &r, NULL, &id, &err)) _exit(3);
        if (write(fd, &id, sizeof id) != (ssize_t)sizeof id) _exit(4);
    }
}

static void test_kill9(void **state) {
    (void)state;
    char path[160];
    snprintf(path, sizeof path, "%s/kill.db", dir);
    long total_reported = 0;
    for (int round = 0; round < 3; round++) {
        int p[2];
        assert_int_equal(pipe(p), 0);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            close(p[0]);
            writer_child(p[1], path);
        }
        close(p[1]);
        int64_t *ids = malloc(100000 * sizeof *ids);
        long n = 0, stop_after = 60 + round * 37;
        while (n < 100000) {
            ssize_t k = read(p[0], &ids[n], sizeof ids[n]);
            if (k != (ssize_t)sizeof ids[n]) break;
            if (++n == stop_after) kill(pid, SIGKILL);
        }
        int status;
        waitpid(pid, &status, 0);
        close(p[0]);
        assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
        assert_true(n >= stop_after);
        total_reported += n;

        em_err err;
        em_db *d = em_db_open(path, &err); /* recovers the WAL */
        assert_non_null(d);
        char *ic = column_text(d, "PRAGMA integrity_check");
        assert_non_null(ic);
        assert_string_equal(ic, "ok");
        free(ic);
        sqlite3_stmt *st;
        assert_int_equal(sqlite3_prepare_v2(d->db, "SELECT COUNT(*) FROM usage_log WHERE id = ?", -1, &st, NULL),
                         SQLITE_OK);
        for (long i = 0; i < n; i++) { /* every committed row is there */
            sqlite3_reset(st);
            sqlite3_bind_int64(st, 1, ids[i]);
            assert_int_equal(sqlite3_step(st), SQLITE_ROW);
            if (sqlite3_column_int(st, 0) != 1) fail_msg("row %lld was committed but is missing", (long long)ids[i]);
        }
        sqlite3_finalize(st);
        em_usage_sum *s;
        size_t ns;
        assert_int_equal(em_ledger_summary(d, 0, 0, &s, &ns, &err), 0);
        long rows = 0;
        for (size_t i = 0; i < ns; i++) rows += s[i].requests;
        assert_true(rows >= total_reported);       /* at most the one in flight more */
        assert_true(rows <= total_reported + round + 1);
        free(s);
        free(ids);
        em_db_close(d);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_summary),
        cmocka_unit_test(test_audit_content),
        cmocka_unit_test(test_kill9),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
