/* clock.c — the clocks (clock.h). */
#include "fapiao/clock.h"

#include <errno.h>

static int64_t read_ns(clockid_t id)
{
    struct timespec t;
    clock_gettime(id, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

int64_t fp_mono_ns(void)
{
    return read_ns(CLOCK_MONOTONIC);
}

int64_t fp_mono_us(void)
{
    return fp_mono_ns() / 1000;
}

int64_t fp_mono_ms(void)
{
    return fp_mono_ns() / 1000000;
}

int64_t fp_boot_ns(void)
{
    return read_ns(CLOCK_BOOTTIME);
}

int64_t fp_wall_ms(void)
{
    return read_ns(CLOCK_REALTIME) / 1000000;
}

static int64_t steady_base_ms;
static pthread_once_t steady_once = PTHREAD_ONCE_INIT;

static void steady_init(void)
{
    steady_base_ms = fp_wall_ms() - fp_mono_ms();
}

int64_t fp_steady_ms(void)
{
    pthread_once(&steady_once, steady_init);
    return steady_base_ms + fp_mono_ms();
}

int64_t fp_wall_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    return (int64_t)t.tv_sec;
}

void fp_cst_tm(int64_t unix_s, struct tm *out)
{
    time_t t = (time_t)(unix_s + FP_CST_OFFSET_S);
    gmtime_r(&t, out);
}

int fp_cst_day_parse(const char *s, int64_t *midnight_s)
{
    static const char shape[] = "dddd-dd-dd";
    for (int i = 0; i < 10; i++)
        if (!s || (shape[i] == 'd' ? s[i] < '0' || s[i] > '9' : s[i] != '-'))
            return -1; /* also stops at a short string's NUL */
    if (s[10])
        return -1;
    int y = (s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10 + (s[3] - '0');
    int m = (s[5] - '0') * 10 + (s[6] - '0'), d = (s[8] - '0') * 10 + (s[9] - '0');
    struct tm tm = {.tm_year = y - 1900, .tm_mon = m - 1, .tm_mday = d}, back;
    time_t t = timegm(&tm);
    /* timegm takes 2026-02-30 as 03-02: a real date comes back unchanged */
    if (m < 1 || m > 12 || d < 1 || !gmtime_r(&t, &back) || back.tm_year != y - 1900 ||
        back.tm_mon != m - 1 || back.tm_mday != d)
        return -1;
    *midnight_s = (int64_t)t - FP_CST_OFFSET_S;
    return 0;
}

int fp_cond_init_mono(pthread_cond_t *cv)
{
    pthread_condattr_t a;
    int rc = pthread_condattr_init(&a);
    if (rc)
        return rc;
    rc = pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    if (!rc)
        rc = pthread_cond_init(cv, &a);
    pthread_condattr_destroy(&a);
    return rc;
}

int fp_cond_wait_until(pthread_cond_t *cv, pthread_mutex_t *mu, int64_t deadline_ns)
{
    if (deadline_ns < 0)
        deadline_ns = 0;
    struct timespec until = {.tv_sec = (time_t)(deadline_ns / 1000000000),
                             .tv_nsec = (long)(deadline_ns % 1000000000)};
    int rc = pthread_cond_timedwait(cv, mu, &until);
    return rc == ETIMEDOUT ? ETIMEDOUT : 0;
}

int fp_cond_wait_ms(pthread_cond_t *cv, pthread_mutex_t *mu, int64_t ms)
{
    return fp_cond_wait_until(cv, mu, fp_mono_ns() + (ms > 0 ? ms : 0) * 1000000);
}

int64_t fp_clock_mono_ns(const fp_clock *c)
{
    return c ? c->mono_ns(c) : fp_mono_ns();
}

int64_t fp_clock_mono_ms(const fp_clock *c)
{
    return fp_clock_mono_ns(c) / 1000000;
}

int64_t fp_clock_wall_ms(const fp_clock *c)
{
    return c ? c->wall_ms(c) : fp_wall_ms();
}

int64_t fp_clock_steady_ms(const fp_clock *c)
{
    if (!c)
        return fp_steady_ms();
    return c->steady_base_ms ? c->steady_base_ms + fp_clock_mono_ms(c) : c->wall_ms(c);
}

int fp_clock_wait_until(const fp_clock *c, pthread_cond_t *cv, pthread_mutex_t *mu,
                        int64_t deadline_ns)
{
    return c ? c->wait_until(c, cv, mu, deadline_ns) : fp_cond_wait_until(cv, mu, deadline_ns);
}

int fp_clock_wait_ms(const fp_clock *c, pthread_cond_t *cv, pthread_mutex_t *mu, int64_t ms)
{
    return fp_clock_wait_until(c, cv, mu, fp_clock_mono_ns(c) + (ms > 0 ? ms : 0) * 1000000);
}
