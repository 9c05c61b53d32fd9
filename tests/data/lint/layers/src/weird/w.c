/* a folder with no row in layer_rules */
int fp_w(void);
