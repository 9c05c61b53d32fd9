/* users_sql.h — the console users' table (store.h fp_user; docs/console.md),
 * one text for both backends' migrations (SQLite 13, PostgreSQL 5), which
 * differ only in the integer type. */
#ifndef FP_STORE_USERS_SQL_H
#define FP_STORE_USERS_SQL_H

#define FP_USERS_TABLE(INT)                                                                        \
    "CREATE TABLE console_users(name TEXT PRIMARY KEY, roles INTEGER NOT NULL,"                    \
    "  seller_id " INT " NOT NULL DEFAULT 0, pw_hash TEXT NOT NULL,"                               \
    "  totp_seed TEXT NOT NULL DEFAULT '', enrol_hash TEXT NOT NULL DEFAULT '',"                   \
    "  recovery TEXT NOT NULL DEFAULT '', enrolled INTEGER NOT NULL DEFAULT 0,"                    \
    "  disabled INTEGER NOT NULL DEFAULT 0, totp_step " INT " NOT NULL DEFAULT 0,"                 \
    "  created_at " INT " NOT NULL, updated_at " INT " NOT NULL);"

/* The columns every read takes, in fp_user's order (users.c). */
#define FP_USERS_COLS                                                                              \
    "name, roles, seller_id, pw_hash, totp_seed, enrol_hash, recovery, enrolled, disabled, "       \
    "totp_step, created_at, updated_at"

#endif
