/* a header: prototypes only */
int g(void);
