static void start(struct g *g)
{
    fp_cond_init_mono(&g->cv2);
}

static void run(struct g *g)
{
    int64_t until = fp_clock_mono_ns(g->clock) + 1000000000LL;
    while (!g->stop && fp_clock_wait_until(g->clock, &g->cv2, &g->mu, until) != ETIMEDOUT)
        ;
    fp_cond_wait_ms(&g->cv2, &g->mu, 5);
}
