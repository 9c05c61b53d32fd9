static void on_completed(void)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now); /* allowed: wall_ok */
}
