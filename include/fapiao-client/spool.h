/* fapiao-client/spool.h — the offline spool of libfapiao-client: invoice
 * requests stored durably in a directory (SQLite, DIR/spool.db, WAL,
 * synchronous=FULL) before anything is sent, delivered later in order by a
 * sender (fpc_spool_drain; `fapiao spool drain`), with the server's answer
 * recorded.
 *
 * States: queued → sending → issued | failed;  queued → cancelled;
 * failed → queued (fpc_spool_retry, once the cause is fixed).
 *
 * Why nothing is lost or doubled, whatever is killed when: a submit returns
 * only after its row is committed; the sender marks a row "sending" (a
 * commit) before it sends, sends with the row's serial as the
 * Idempotency-Key, and records the answer in another commit.  A sender that
 * dies between the two leaves the row "sending"; the next drain sends it
 * again with the same key and the server answers with the invoice it
 * already issued.  A row that may have been sent can no longer be
 * cancelled.  One sender at a time per directory (DIR/sender.lock, flock).
 *
 * Depends on libsqlite3 besides the client's libcurl and libcjson. */
#ifndef FAPIAO_CLIENT_SPOOL_H
#define FAPIAO_CLIENT_SPOOL_H

#include "fapiao-client/client.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct fpc_spool fpc_spool;

typedef enum fpc_spool_state {
    FPC_SPOOL_QUEUED = 0,
    FPC_SPOOL_SENDING,
    FPC_SPOOL_ISSUED,
    FPC_SPOOL_FAILED,
    FPC_SPOOL_CANCELLED,
    FPC_SPOOL_NSTATES
} fpc_spool_state;

const char *fpc_spool_state_name(fpc_spool_state s);

typedef struct fpc_spool_item {
    long long seq;
    char serial[72];
    fpc_spool_state state;
    int attempts;
    char number[24];     /* issued */
    char code[48];       /* failed: the server's problem code */
    char finding[48];    /* failed: the finding code, or "" */
    char message[512];   /* failed: English */
    long long queued_at; /* Unix seconds */
} fpc_spool_item;

/* Opens (creating) DIR and DIR/spool.db. */
int fpc_spool_open(const char *dir, fpc_spool **out, fpc_error *err);
void fpc_spool_close(fpc_spool *s); /* NULL: no-op */

/* Stores the request; returns when it is durable.  0 also when the serial
 * is there already with the same body (a submit repeated); FPC_EREJECTED
 * (code IDEMPOTENCY_KEY_REUSED) when it is there with another body. */
int fpc_spool_submit(fpc_spool *s, const char *serial, const char *json, size_t len,
                     fpc_error *err);

/* Rows in state order of seq (every state when state < 0), at most limit
 * (0: all), to cb; cb returning non-zero stops. */
int fpc_spool_list(fpc_spool *s, int state, int limit,
                   int (*cb)(const fpc_spool_item *it, void *arg), void *arg, fpc_error *err);
int fpc_spool_counts(fpc_spool *s, long long counts[FPC_SPOOL_NSTATES], fpc_error *err);

/* queued → cancelled; FPC_EREJECTED (code SPOOL_STATE) in any other state. */
int fpc_spool_cancel(fpc_spool *s, const char *serial, fpc_error *err);
/* failed (or cancelled) → queued; FPC_EREJECTED (SPOOL_STATE) otherwise. */
int fpc_spool_retry(fpc_spool *s, const char *serial, fpc_error *err);

/* Delivers queued and sending rows in order through c until none is left,
 * max rows were handled (0: no limit) or the server is unreachable (the
 * rest wait: FPC_EUNAVAILABLE with err).  A permanent refusal marks its row
 * failed and goes on.  progress (may be NULL) sees each handled row.
 * Returns the number of rows handled, or a negative FPC_E…; FPC_EUNAVAILABLE
 * (code SENDER_BUSY) when another sender holds the directory. */
int fpc_spool_drain(fpc_spool *s, fpc_client *c, int max,
                    void (*progress)(const fpc_spool_item *it, void *arg), void *arg,
                    fpc_error *err);

#ifdef __cplusplus
}
#endif
#endif
