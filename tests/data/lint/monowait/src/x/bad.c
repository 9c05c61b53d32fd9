/* CLOCK_REALTIME and pthread_cond_timedwait in a comment are no findings */
static const char *s = "gettimeofday(CLOCK_REALTIME)";

static void loop(struct w *w)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    pthread_cond_timedwait(&w->cv, &w->mu, &ts);
}

static void start(struct w *w)
{
    pthread_cond_init(&w->cv, NULL);
    fp_cond_wait_ms(&w->cv, &w->mu, 100);
}

static long stamp(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return tv.tv_sec;
}
