/* lib */
int fp_x(void); /* defined in src/core: a stale map */
