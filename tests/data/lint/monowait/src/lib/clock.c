/* the one place timed waits and wall-clock reads may be written */
int fp_cond_wait_until(pthread_cond_t *cv, pthread_mutex_t *mu, int64_t deadline_ns)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    return pthread_cond_timedwait(cv, mu, &now);
}
