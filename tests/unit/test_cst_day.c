/* test_cst_day.c — fp_cst_day_parse (include/fapiao/clock.h), the one
 * parser of a CST calendar day ("yyyy-MM-dd") to the Unix second of its
 * midnight, which the invoice listing's from/to and `audit prune --before`
 * each had a copy of (parse_day, parse_date). */
#include "check.h"
#include "fapiao/clock.h"

int main(void)
{
    static const struct {
        const char *in;
        int rc;
        long long want;
    } cases[] = {
        {"1970-01-01", 0, -28800},
        {"2026-11-25", 0, 1795564800LL - 28800}, /* 2026-11-25T00:00:00+08:00 */
        {"2024-02-29", 0, 1709164800LL - 28800},
        {"2000-01-01", 0, 946684800LL - 28800},
        {"2026-02-30", -1, 0},
        {"2025-02-29", -1, 0},
        {"2026-13-01", -1, 0},
        {"2026-00-10", -1, 0},
        {"2026-01-00", -1, 0},
        {"2026-1-05", -1, 0},
        {"2026- 1- 5", -1, 0},
        {"2026-01-05 ", -1, 0},
        {"2026-01-05T00:00:00", -1, 0},
        {"2026/01/05", -1, 0},
        {"+026-01-05", -1, 0},
        {"", -1, 0},
        {NULL, -1, 0},
    };
    for (size_t i = 0; i < NCASES(cases); i++) {
        check_ctx("\"%s\"", cases[i].in ? cases[i].in : "(null)");
        int64_t t = 12345;
        CHECK_EQ_INT(fp_cst_day_parse(cases[i].in, &t), cases[i].rc);
        CHECK_EQ_INT(t, cases[i].rc == 0 ? cases[i].want : 12345); /* untouched on failure */
        if (cases[i].rc == 0) {
            struct tm tm;
            fp_cst_tm(t, &tm); /* the CST wall clock at that second: midnight of the day */
            CHECK_EQ_INT(tm.tm_hour + tm.tm_min + tm.tm_sec, 0);
        }
    }
    return check_summary();
}
