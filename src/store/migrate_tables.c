/* migrate_tables.c — the tables `fapiao migrate-store` moves and the ones
 * it leaves out on purpose (docs/ha.md "Moving from one node on SQLite").
 * Apart from migrate.c so that the SQLite reader (sqlite/export.c) can ask
 * fp_mig_known without a call loop between the two files. */
#include <string.h>

#include "internal.h"

const fp_mig_table fp_mig_tables[] = {
    {"sellers", "", "id"},
    {"clients", "", "client_id"},
    {"client_secrets", "", "id"},
    {"number_ranges", "", "id"},
    {"invoices", ", rowid AS seq", "rowid"}, /* seq: the storage order (PostgreSQL migration 2) */
    {"red_forms", "", "id"},
    {"red_form_lines", "", "form_id, line"},
    {"jobs", "", "id"}, /* after_job names an earlier job */
    {"audit", "", "id"},
    {"audit_checkpoints", "", "id"},
    {"alert_silences", "", "id"},
    {"uploads", "", "invoice_number"},
    {"upstream_credit", "", "seller_id, month"},
    {"console_users", "", "name"},
};
const int fp_mig_ntables = (int)(sizeof fp_mig_tables / sizeof fp_mig_tables[0]);
_Static_assert(sizeof fp_mig_tables / sizeof fp_mig_tables[0] == FP_MIGRATE_TABLES,
               "store.h's FP_MIGRATE_TABLES is the count of fp_mig_tables");

/* The SQLite tables not copied row for row, each for a reason: the target
 * has its own health probe row; the issue clock is carried as its mark
 * (fp_sq_export); the sellers' generation is bumped on the target. */
static const char *const mig_not_copied[] = {"health_probe", "issue_clock", "seller_generation"};

int fp_mig_known(const char *table)
{
    for (int i = 0; i < fp_mig_ntables; i++)
        if (strcmp(fp_mig_tables[i].name, table) == 0)
            return 1;
    for (size_t i = 0; i < sizeof mig_not_copied / sizeof mig_not_copied[0]; i++)
        if (strcmp(mig_not_copied[i], table) == 0)
            return 2;
    return 0;
}
