/* silences_sql.h — the alert silences' table (docs/alerting.md "Silences"),
 * shared by SQLite's migration 11 and PostgreSQL's migration 3: the same
 * columns in both (INTEGER is 64-bit in SQLite; the PostgreSQL text says
 * BIGINT). */
#ifndef FAPIAO_STORE_SILENCES_H
#define FAPIAO_STORE_SILENCES_H

#define FP_SILENCES_TABLE(INT, ID)                                                                 \
    "CREATE TABLE alert_silences("                                                                 \
    "  id " ID ","                                                                                 \
    "  matchers TEXT NOT NULL, comment TEXT NOT NULL, created_by TEXT NOT NULL,"                   \
    "  starts_at " INT " NOT NULL, ends_at " INT " NOT NULL, created_at " INT " NOT NULL,"         \
    "  expired_at " INT ");"                                                                       \
    "CREATE INDEX alert_silences_ends ON alert_silences(ends_at);"

#define FP_SQ_SILENCES_SQL FP_SILENCES_TABLE("INTEGER", "INTEGER PRIMARY KEY")
#define FP_PG_SILENCES_SQL FP_SILENCES_TABLE("BIGINT", "BIGSERIAL PRIMARY KEY")

#endif
