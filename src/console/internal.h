/* internal.h — what the console's files share (src/console/). */
#ifndef FAPIAO_CONSOLE_INTERNAL_H
#define FAPIAO_CONSOLE_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>

#include "fapiao/console.h"
#include "fapiao/seal.h"

#define FP_SESSIONS_MAX  4096
#define FP_THROTTLE_KEYS 1024

typedef struct fp_session {
    unsigned char sid_hash[32]; /* SHA-256 of the cookie's value: the table holds no secret */
    fp_console_who who;
    int64_t last_seen; /* 0: a free slot */
} fp_session;

/* Failures of one address ("ip:...") or one user ("user:..."). */
typedef struct fp_throttle {
    char key[80];
    int fails;
    int64_t next_ok, last; /* unix s */
} fp_throttle;

struct fp_console {
    fp_store *store;
    unsigned char key[FP_SEAL_KEY_LEN];
    int idle_s, max_s, max_hashes;
    char issuer[64];
    atomic_int hashing;
    pthread_mutex_t lock; /* sessions, throttle */
    fp_session *sessions;
    fp_throttle throttle[FP_THROTTLE_KEYS];
};

/* session.c: a new session for u into sid and who (lock not held). */
int fp_session_create(fp_console *c, const fp_user *u, int64_t now, char sid[48],
                      fp_console_who *who);

/* throttle.c (lock not held): seconds to wait before key may try again
 * (0: now); a failure and a success of key. */
int fp_throttle_wait(fp_console *c, const char *key, int64_t now);
void fp_throttle_fail(fp_console *c, const char *key, int64_t now, int free_fails, int cap_s);
void fp_throttle_ok(fp_console *c, const char *key);

#endif
