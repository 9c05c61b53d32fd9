/* test_alerting.c — the built-in evaluator (src/alerting/) against the
 * promtool unit tests' own series: tests/data/alerting/cases.txt is written
 * by scripts/gen-alerts.py from the same rows of deploy/alerts.yaml as
 * deploy/prometheus/tests/fapiao-rules.test.yml, and each case must give
 * the verdict promtool gives (firing at the evaluation time, or quiet).
 * Evaluations run at every sample time, as promtool's evaluation interval
 * does, so `for:` is tracked the same way. */
#include "check.h"
#include "fapiao/alerting.h"

#include <math.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_CASE_SERIES 8
#define MAX_VALUES      8192

typedef struct tcase {
    char name[96], kind[16];
    long at_s, step_s;
    int ns;
    char key[MAX_CASE_SERIES][512];
    double *v[MAX_CASE_SERIES];
    int nv[MAX_CASE_SERIES];
} tcase;

static void parse_values(tcase *c, int i, char *text)
{
    c->v[i] = calloc(MAX_VALUES, sizeof(double));
    c->nv[i] = 0;
    for (char *tok = strtok(text, " \n"); tok && c->nv[i] < MAX_VALUES; tok = strtok(NULL, " \n"))
        c->v[i][c->nv[i]++] = !strcmp(tok, "_") ? NAN : strtod(tok, NULL);
}

static int run_case(const tcase *c)
{
    fp_ahist *h = fp_ahist_new((int)c->step_s);
    fp_err err = {0};
    fp_aeval *e = fp_aeval_new(h, &err);
    if (!CHECK_MSG(e != NULL, "fp_aeval_new: %s", err.msg))
        return -1;
    for (long t = 0; t <= c->at_s; t += c->step_s) {
        int k = (int)(t / c->step_s);
        for (int i = 0; i < c->ns; i++)
            if (k < c->nv[i])
                fp_ahist_add(h, c->key[i], (int64_t)t * 1000, c->v[i][k]);
        fp_aeval_run(e, (int64_t)t * 1000, NULL, NULL);
    }
    int firing = fp_aeval_state(e, c->name) == FP_ALERT_FIRING;
    fp_aeval_free(e);
    fp_ahist_free(h);
    return firing;
}

/* Every case of the file; returns how many ran. */
static int run_file(const char *path, char *seen, size_t seen_cap)
{
    FILE *f = fopen(path, "r");
    if (!CHECK_MSG(f != NULL, "open %s", path))
        return 0;
    static char line[1 << 16];
    tcase c;
    int in_case = 0, ran = 0;
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '#')
            continue;
        if (!strncmp(line, "case ", 5)) {
            memset(&c, 0, sizeof c);
            in_case =
                sscanf(line, "case %95s %15s %ld %ld", c.name, c.kind, &c.at_s, &c.step_s) == 4;
            CHECK_MSG(in_case, "bad case line: %s", line);
        } else if (!strncmp(line, "end", 3) && in_case) {
            check_ctx("%s %s", c.name, c.kind);
            CHECK(fp_alert_rule_find(c.name) != NULL);
            CHECK_EQ_INT(run_case(&c), !strcmp(c.kind, "fire"));
            size_t o = strlen(seen);
            snprintf(seen + o, seen_cap - o, " %s", c.name);
            for (int i = 0; i < c.ns; i++)
                free(c.v[i]);
            in_case = 0;
            ran++;
        } else if (in_case && c.ns < MAX_CASE_SERIES) {
            char *tab = strchr(line, '\t');
            if (!CHECK_MSG(tab != NULL, "bad series line: %s", line))
                continue;
            *tab = 0;
            snprintf(c.key[c.ns], sizeof c.key[0], "%.511s", line);
            parse_values(&c, c.ns++, tab + 1);
        }
    }
    fclose(f);
    check_ctx("%s", "");
    return ran;
}

/* Every built-in rule has cases; the history parses an exposition. */
static void test_coverage_and_text(const char *seen)
{
    for (int i = 0; i < fp_alert_nrules; i++) {
        check_ctx("rule %s", fp_alert_rules[i].name);
        CHECK(strstr(seen, fp_alert_rules[i].name) != NULL);
    }
    check_ctx("%s", "");
    CHECK(fp_alert_nprom_only >= 1);
    fp_ahist *h = fp_ahist_new(5);
    fp_err err = {0};
    CHECK_EQ_INT(fp_ahist_watch(h, "fapiao_x_total", "code=~5xx|4xx", 60, &err), 0);
    const char *text = "# HELP fapiao_x_total x\n# TYPE fapiao_x_total counter\n"
                       "fapiao_x_total{code=\"5xx\",path=\"a b\"} 7\n"
                       "fapiao_x_total{code=\"2xx\"} 9\nfapiao_y 3\n";
    CHECK_EQ_INT(fp_ahist_add_text(h, text, strlen(text), 1000), 1);
    CHECK_EQ_INT(fp_ahist_add_text(h, text, strlen(text), 2000), 1);
    char v[32];
    CHECK(fp_ahist_label("a{code=\"5\\\"xx\",le=\"+Inf\"}", "le", v, sizeof v));
    CHECK_EQ_STR(v, "+Inf");
    CHECK(fp_ahist_label("a{code=\"5\\\"xx\",le=\"+Inf\"}", "code", v, sizeof v));
    CHECK_EQ_STR(v, "5\"xx");
    CHECK(!fp_ahist_label("a", "code", v, sizeof v));
    CHECK(fp_ahist_watch(h, "x", "bad", 60, &err) < 0);
    fp_ahist_free(h);
}

/* The robots' signatures against values computed as their documentation
 * does (Python's hmac/base64/quote_plus). */
static void test_signatures(void)
{
    char out[256];
    check_ctx("dingtalk");
    fp_dingtalk_sign("SECabc123", 1700000000000LL, out, sizeof out);
    CHECK_EQ_STR(out, "&timestamp=1700000000000&sign="
                      "N5P09a4%2Bp1AMJIJWnIvQd2Yxw9%2Bfu%2FoEBnPrjCcsLXk%3D");
    check_ctx("feishu");
    fp_feishu_sign("test-secret", 1599360473, out, sizeof out);
    CHECK_EQ_STR(out, "wSds2BzzFIIGf/WrhUO+NI1q/9j+FRJd3JNHKAq0NZY=");
    check_ctx("%s", "");
}

/* The alerting file: receivers, a 0600 secret file, and the errors. */
static void test_conf(void)
{
    char dir[] = "/tmp/fp_alerting_XXXXXX", path[128], sec[128];
    if (!CHECK(mkdtemp(dir) != NULL))
        return;
    snprintf(sec, sizeof sec, "%s/ding.secret", dir);
    snprintf(path, sizeof path, "%s/alerting.conf", dir);
    FILE *f = fopen(sec, "w");
    fputs("SECabc123\n", f);
    fclose(f);
    chmod(sec, 0600);
    f = fopen(path, "w");
    fprintf(f,
            "# c\n[notify]\ninterval = 2\nrepeat-p1 = 60\ninstance = fp-test\n"
            "[receiver ops]\ntype = dingtalk\nurl = http://127.0.0.1:1/robot?access_token=x\n"
            "secret-file = %s\nseverities = P1\n[receiver hook]\nurl = http://127.0.0.1:1/h\n",
            sec);
    fclose(f);
    fp_notify_conf c;
    fp_err err = {0};
    CHECK_EQ_INT(fp_notify_conf_read(path, &c, &err), 0);
    CHECK_EQ_INT(c.nrcv, 2);
    CHECK_EQ_INT(c.interval_s, 2);
    CHECK_EQ_INT(c.repeat_s[0], 60);
    CHECK_EQ_INT(c.repeat_s[1], 4 * 3600);
    CHECK_EQ_STR(c.instance, "fp-test");
    CHECK_EQ_INT(c.rcv[0].kind, FP_RCV_DINGTALK);
    CHECK_EQ_STR(c.rcv[0].secret, "SECabc123");
    CHECK_EQ_INT(c.rcv[1].kind, FP_RCV_WEBHOOK);
    chmod(sec, 0644); /* a secret readable by others is refused */
    CHECK(fp_notify_conf_read(path, &c, &err) < 0);
    CHECK(strstr(err.msg, "alerting.conf:") != NULL);
    f = fopen(path, "w");
    fputs("[notify]\ninterval = 0\n", f);
    fclose(f);
    CHECK(fp_notify_conf_read(path, &c, &err) < 0);
    CHECK(strstr(err.msg, ":2:") != NULL);
    f = fopen(path, "w");
    fputs("[nope]\n", f);
    fclose(f);
    CHECK(fp_notify_conf_read(path, &c, &err) < 0);
    unlink(sec);
    unlink(path);
    rmdir(dir);
}

int main(void)
{
    test_signatures();
    test_conf();
    static char seen[1 << 14];
    int ran = run_file(FP_SOURCE_DIR "/tests/data/alerting/cases.txt", seen, sizeof seen);
    CHECK(ran >= 2 * fp_alert_nrules);
    test_coverage_and_text(seen);
    return check_summary();
}
