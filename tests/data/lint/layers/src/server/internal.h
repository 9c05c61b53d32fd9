/* declarations for the folder */
int fp_a(int x);
int fp_b(int x);
