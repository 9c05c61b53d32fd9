/* a job deadline on the wall clock: a step back an hour stalls the retry an hour */
static long next_retry(long backoff_ms)
{
    return fp_wall_ms() + backoff_ms;
}

/* the steady wall clock is what job times use */
static long next_retry_ok(long backoff_ms)
{
    return fp_steady_ms() + backoff_ms;
}
