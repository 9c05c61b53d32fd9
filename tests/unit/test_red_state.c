/* test_red_state.c — the red form's state table (red.h): every state × every
 * action against an expected table written out here by name, the name
 * round trips, which states are issuable/open/count against the blue, the
 * initial state, and the 72 h deadline at its boundary. */
#include "check.h"
#include "fapiao/err.h"
#include "fapiao/red.h"

/* The expected moves, by name: "" where the action is refused. Rows are
 * states, columns confirm, reject, withdraw, issue, lapse. */
static const struct {
    const char *from;
    const char *to[5];
} table[] = {
    {"no_confirmation_needed", {"", "", "withdrawn", "issued", ""}},
    {"awaiting_buyer", {"confirmed", "rejected", "withdrawn", "", "lapsed"}},
    {"awaiting_seller", {"confirmed", "rejected", "withdrawn", "", "lapsed"}},
    {"confirmed", {"", "", "withdrawn", "issued", ""}},
    {"rejected", {"", "", "", "", ""}},
    {"withdrawn", {"", "", "", "", ""}},
    {"lapsed", {"", "", "", "", ""}},
    {"issued", {"", "", "", "", ""}},
};
static const char *const action_names[] = {"confirm", "reject", "withdraw", "issue", "lapse"};

static void test_table(void)
{
    CHECK_EQ_INT((int)NCASES(table), FP_RED_ST_COUNT);
    CHECK_EQ_INT((int)NCASES(action_names), FP_RED_ACT_COUNT);
    for (size_t i = 0; i < NCASES(table); i++) {
        fp_red_state from;
        check_ctx("state %s", table[i].from);
        if (!CHECK_EQ_INT(fp_red_state_parse(table[i].from, &from), 0))
            continue;
        CHECK_EQ_STR(fp_red_state_name(from), table[i].from);
        for (size_t a = 0; a < NCASES(action_names); a++) {
            fp_red_action act;
            check_ctx("%s --%s-->", table[i].from, action_names[a]);
            if (!CHECK_EQ_INT(fp_red_action_parse(action_names[a], &act), 0))
                continue;
            CHECK_EQ_STR(fp_red_action_name(act), action_names[a]);
            int to = fp_red_transition(from, act);
            if (table[i].to[a][0] == 0) {
                CHECK_EQ_INT(to, FP_ECONFLICT);
            } else if (CHECK(to >= 0)) {
                CHECK_EQ_STR(fp_red_state_name((fp_red_state)to), table[i].to[a]);
            }
        }
    }
    check_ctx("out of range");
    CHECK_EQ_INT(fp_red_transition(FP_RED_ST_COUNT, FP_RED_ACT_CONFIRM), FP_EINVAL);
    CHECK_EQ_INT(fp_red_transition((fp_red_state)-1, FP_RED_ACT_CONFIRM), FP_EINVAL);
    CHECK_EQ_INT(fp_red_transition(FP_RED_ST_CONFIRMED, FP_RED_ACT_COUNT), FP_EINVAL);
    CHECK_EQ_STR(fp_red_state_name(FP_RED_ST_COUNT), "?");
    CHECK_EQ_STR(fp_red_action_name(FP_RED_ACT_COUNT), "?");
    fp_red_state st = FP_RED_ST_CONFIRMED;
    fp_red_action act = FP_RED_ACT_ISSUE;
    static const char *const bad[] = {"", "Confirmed", "cancelled", "revoked", "awaiting_"};
    for (size_t i = 0; i < NCASES(bad); i++) {
        check_ctx("parse \"%s\"", bad[i]);
        CHECK_EQ_INT(fp_red_state_parse(bad[i], &st), FP_EINVAL);
        CHECK_EQ_INT(fp_red_action_parse(bad[i], &act), FP_EINVAL);
    }
    CHECK_EQ_INT(fp_red_state_parse(NULL, &st), FP_EINVAL);
    CHECK_EQ_INT(fp_red_action_parse(NULL, &act), FP_EINVAL);
    CHECK_EQ_INT(st, FP_RED_ST_CONFIRMED); /* untouched on failure */
    CHECK_EQ_INT(act, FP_RED_ACT_ISSUE);
}

/* Which states are issuable, open (not final), and hold their lines
 * against the blue invoice's caps. */
static void test_predicates(void)
{
    static const struct {
        const char *state;
        int issuable, open, holds;
    } cases[] = {
        {"no_confirmation_needed", 1, 1, 1},
        {"awaiting_buyer", 0, 1, 1},
        {"awaiting_seller", 0, 1, 1},
        {"confirmed", 1, 1, 1},
        {"rejected", 0, 0, 0},
        {"withdrawn", 0, 0, 0},
        {"lapsed", 0, 0, 0},
        {"issued", 0, 0, 1},
    };
    CHECK_EQ_INT((int)NCASES(cases), FP_RED_ST_COUNT);
    for (size_t i = 0; i < NCASES(cases); i++) {
        fp_red_state s;
        check_ctx("%s", cases[i].state);
        if (!CHECK_EQ_INT(fp_red_state_parse(cases[i].state, &s), 0))
            continue;
        CHECK_EQ_INT(fp_red_issuable(s), cases[i].issuable);
        CHECK_EQ_INT(fp_red_open(s), cases[i].open);
        CHECK_EQ_INT(fp_red_holds_blue(s), cases[i].holds);
        /* issuable is exactly "the issue action is in the table" */
        CHECK_EQ_INT(fp_red_issuable(s), fp_red_transition(s, FP_RED_ACT_ISSUE) >= 0);
    }
    check_ctx("out of range");
    CHECK_EQ_INT(fp_red_issuable(FP_RED_ST_COUNT), 0);
    CHECK_EQ_INT(fp_red_open(FP_RED_ST_COUNT), 0);
    CHECK_EQ_INT(fp_red_holds_blue(FP_RED_ST_COUNT), 0);
}

static void test_initial_and_lapse(void)
{
    static const struct {
        int by_buyer, deducted;
        const char *state;
    } init[] = {
        {0, 0, "no_confirmation_needed"},
        {0, 1, "awaiting_buyer"},
        {1, 0, "awaiting_seller"},
        {1, 1, "awaiting_seller"},
    };
    for (size_t i = 0; i < NCASES(init); i++) {
        check_ctx("initial by_buyer=%d deducted=%d", init[i].by_buyer, init[i].deducted);
        CHECK_EQ_STR(fp_red_state_name(fp_red_initial(init[i].by_buyer, init[i].deducted)),
                     init[i].state);
    }

    const int64_t t0 = 1700000000, h72 = 72 * 3600;
    check_ctx("deadline");
    CHECK_EQ_INT(FP_RED_CONFIRM_WINDOW_S, 259200);
    CHECK(fp_red_deadline(FP_RED_ST_AWAITING_BUYER, t0) == t0 + h72);
    CHECK(fp_red_deadline(FP_RED_ST_AWAITING_SELLER, t0) == t0 + h72);
    CHECK(fp_red_deadline(FP_RED_ST_NO_CONFIRMATION_NEEDED, t0) == 0);
    CHECK(fp_red_deadline(FP_RED_ST_CONFIRMED, t0) == 0);

    check_ctx("lapsed");
    CHECK_EQ_INT(fp_red_lapsed(t0, t0), 0);
    CHECK_EQ_INT(fp_red_lapsed(t0, t0 + h72 - 1), 0);
    CHECK_EQ_INT(fp_red_lapsed(t0, t0 + h72), 1); /* at the deadline: lapsed */
    CHECK_EQ_INT(fp_red_lapsed(t0, t0 + h72 + 1), 1);

    /* the state as of now: only awaiting_* lapse, and only with a deadline */
    const int64_t exp = t0 + h72;
    static const struct {
        const char *stored;
        int64_t expires_off; /* added to exp; -1 means "no deadline" (0) */
        int64_t now_off;     /* added to exp */
        const char *seen;
    } at[] = {
        {"awaiting_buyer", 0, -1, "awaiting_buyer"},
        {"awaiting_buyer", 0, 0, "lapsed"},
        {"awaiting_seller", 0, 0, "lapsed"},
        {"awaiting_seller", 0, 1000, "lapsed"},
        {"awaiting_seller", -1, 1000, "awaiting_seller"},
        {"confirmed", 0, 1000, "confirmed"},
        {"no_confirmation_needed", 0, 1000, "no_confirmation_needed"},
        {"issued", 0, 1000, "issued"},
        {"rejected", 0, 1000, "rejected"},
        {"lapsed", 0, -1000, "lapsed"},
    };
    for (size_t i = 0; i < NCASES(at); i++) {
        fp_red_state s;
        check_ctx("state_at %s expires%+lld now%+lld", at[i].stored, (long long)at[i].expires_off,
                  (long long)at[i].now_off);
        if (!CHECK_EQ_INT(fp_red_state_parse(at[i].stored, &s), 0))
            continue;
        int64_t e = at[i].expires_off < 0 ? 0 : exp + at[i].expires_off;
        CHECK_EQ_STR(fp_red_state_name(fp_red_state_at(s, e, exp + at[i].now_off)), at[i].seen);
    }
}

int main(void)
{
    test_table();
    test_predicates();
    test_initial_and_lapse();
    return check_summary();
}
