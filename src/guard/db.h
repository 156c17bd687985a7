/* db.h - the guard database: one SQLite file that holds the API keys and the
 * usage ledger (see keys.h, ledger.h). Opened in WAL mode with a busy
 * timeout and synchronous=FULL, so a committed transaction survives a crash
 * (kill -9) of the process and several processes (the server and
 * `ember keys ...`) can use the file at once.
 *
 * Thread-safety: an em_db may be shared by any number of threads; every
 * operation in keys.c and ledger.c holds the handle's mutex for its whole
 * transaction. A ledger write waits for its fsync while holding that mutex,
 * so a server should open one em_db for authentication and another for the
 * ledger (WAL lets readers proceed while a writer commits). Do not use one
 * em_db across fork(); open a new one in the child. */
#ifndef EM_GUARD_DB_H
#define EM_GUARD_DB_H

#include <pthread.h>
#include <stdbool.h>
#include <sqlite3.h>

#include "../base/err.h"

#define EM_DB_SCHEMA_VERSION 1
#define EM_DB_BUSY_TIMEOUT_MS 10000

typedef struct em_db {
    sqlite3 *db;
    pthread_mutex_t mu;
    char *path;
} em_db;

/* Opens (creating the file and the schema on first use) the database at
 * path. Returns NULL with err filled on failure (unwritable path, not a
 * database, a schema from a newer ember). Close with em_db_close. */
em_db *em_db_open(const char *path, em_err *err);
void em_db_close(em_db *d);

/* synchronous=FULL (the default: a commit survives power loss) or NORMAL
 * (WAL: a commit survives a crash or kill -9 of the process, not of the
 * machine; no fsync per commit, so much faster). Returns 0 or -1. */
int em_db_set_durable(em_db *d, bool full, em_err *err);

/* Internal to the guard modules. */
void em_db_lock(em_db *d);
void em_db_unlock(em_db *d);
/* Runs SQL without results; on failure fills err with "what: sqlite message". */
int em_db_exec(em_db *d, const char *sql, const char *what, em_err *err);
/* Fills err with "what: sqlite's last error" and returns -1. */
int em_db_fail(em_db *d, const char *what, em_err *err);

#endif
