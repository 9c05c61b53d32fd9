/* pdf_pool.c — rendering in worker processes, so that a crash, a hang or a
 * memory blow-up in the renderer / FreeType / libqrencode costs one render,
 * never the server.  The design (persistent `render-worker` processes spawned with
 * posix_spawn, framing over a socketpair, RLIMIT_AS, kill on timeout, the
 * fault hooks) is described in include/fapiao/pdf.h.
 *
 * Parent side: a fixed array of slots, each a worker process and the
 * parent's end of its socket.  A caller takes a free slot under the mutex
 * and then talks to its worker without holding any lock; all I/O is
 * non-blocking with poll() against the caller's deadline.  Whatever goes
 * wrong with a worker, the slot ends empty (process killed and reaped,
 * socket closed) and the next caller to take it spawns a new one.
 *
 * Worker side: fp_pdf_worker_main, a plain blocking loop on fds 0 and 1. */
#include "fapiao/pdf.h"
#include "fapiao/clock.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define FP_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) ||                         \
    __has_feature(memory_sanitizer)
#define FP_SANITIZED 1
#endif
#endif
#ifndef FP_SANITIZED
#define FP_SANITIZED 0
#endif

#define DEFAULT_WORKERS    2
#define DEFAULT_TIMEOUT_MS 30000
#define DEFAULT_MEM_LIMIT  ((size_t)1 << 30)
#define MAX_WORKERS        64
#define REPLY_HDR          12 /* status, pages, len */

/* ---- framing helpers ---- */

static void put32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

static uint32_t get32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

/* ---- the parent side ---- */

typedef struct slot {
    pid_t pid; /* 0: empty */
    int fd;    /* parent's end of the socketpair, non-blocking; -1: empty */
    int busy;
} slot;

struct fp_pdf_pool {
    char *exe, *font;
    char mem_arg[32], timeout_arg[16];
    int foreground; /* workers at SCHED_OTHER (nice 0) instead of SCHED_IDLE */
    int nworkers, timeout_ms;
    pthread_mutex_t mu;
    pthread_cond_t cv; /* a slot became free */
    slot slots[];
};

/* Waits for pid; "killed by signal N (name)" or "exited with status N"
 * into why. */
static void reap(pid_t pid, char *why, size_t n)
{
    int st = 0;
    pid_t r;
    do
        r = waitpid(pid, &st, 0);
    while (r < 0 && errno == EINTR);
    if (!why)
        return;
    if (r != pid)
        snprintf(why, n, "render worker lost (waitpid: %s)", strerror(errno));
    else if (WIFSIGNALED(st))
        snprintf(why, n, "render worker killed by signal %d (%s)", WTERMSIG(st),
                 strsignal(WTERMSIG(st)));
    else
        snprintf(why, n, "render worker exited with status %d", WEXITSTATUS(st));
}

/* Empties the slot: kills the worker (if kill_it) and reaps it. */
static void slot_drop(slot *s, int kill_it, char *why, size_t n)
{
    if (s->fd >= 0)
        close(s->fd);
    s->fd = -1;
    if (s->pid > 0) {
        if (kill_it)
            kill(s->pid, SIGKILL);
        reap(s->pid, why, n);
    }
    s->pid = 0;
}

/* A worker that closed its socket is exiting; give it until the deadline
 * to do so (to learn why), then kill it. */
static void slot_drop_dead(slot *s, int64_t deadline, char *why, size_t n)
{
    int st;
    for (;;) {
        pid_t r = waitpid(s->pid, &st, WNOHANG);
        if (r == s->pid) {
            close(s->fd);
            s->fd = -1;
            s->pid = 0;
            if (WIFSIGNALED(st))
                snprintf(why, n, "render worker killed by signal %d (%s)", WTERMSIG(st),
                         strsignal(WTERMSIG(st)));
            else
                snprintf(why, n, "render worker exited with status %d", WEXITSTATUS(st));
            return;
        }
        if (r < 0 && errno != EINTR)
            break;
        if (fp_mono_ms() >= deadline)
            break;
        struct timespec ts = {0, 5 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    slot_drop(s, 1, NULL, 0);
    snprintf(why, n, "render worker closed its output and did not exit");
}

static int slot_spawn(fp_pdf_pool *p, slot *s, fp_err *err)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
        return fp_fail(err, FP_EIO, "socketpair: %s", strerror(errno));
    int child = sv[1];
    if (child <= 2) { /* dup2 onto 0/1 must not be a no-op keeping CLOEXEC */
        child = fcntl(sv[1], F_DUPFD_CLOEXEC, 3);
        close(sv[1]);
        if (child < 0) {
            int e = errno;
            close(sv[0]);
            return fp_fail(err, FP_EIO, "fcntl: %s", strerror(e));
        }
    }
    char *argv[10];
    int a = 0;
    argv[a++] = p->exe;
    argv[a++] = "render-worker";
    argv[a++] = "--mem-limit";
    argv[a++] = p->mem_arg;
    argv[a++] = "--timeout-ms";
    argv[a++] = p->timeout_arg;
    if (p->font) {
        argv[a++] = "--font";
        argv[a++] = p->font;
    }
    if (p->foreground)
        argv[a++] = "--foreground";
    argv[a] = NULL;

    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    sigdelset(&all, SIGKILL);
    sigdelset(&all, SIGSTOP);
    int rc = posix_spawn_file_actions_init(&fa);
    if (rc == 0) {
        rc = posix_spawnattr_init(&at);
        if (rc != 0)
            posix_spawn_file_actions_destroy(&fa);
    }
    if (rc != 0) {
        close(sv[0]);
        close(child);
        return fp_fail(err, FP_ENOMEM, "posix_spawn setup: %s", strerror(rc));
    }
    /* fds 0 and 1 are the socket, 2 is the server's stderr; nothing else
     * leaks in (our fds are CLOEXEC, other code's may not be). */
    rc = posix_spawn_file_actions_adddup2(&fa, child, 0);
    if (!rc)
        rc = posix_spawn_file_actions_adddup2(&fa, child, 1);
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 34))
    if (!rc)
        rc = posix_spawn_file_actions_addclosefrom_np(&fa, 3);
#endif
    /* the server's signal mask and handlers are not the worker's */
    if (!rc)
        rc = posix_spawnattr_setsigmask(&at, &none);
    if (!rc)
        rc = posix_spawnattr_setsigdefault(&at, &all);
    if (!rc)
        rc = posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    pid_t pid = 0;
    if (!rc)
        rc = posix_spawn(&pid, p->exe, &fa, &at, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    close(child);
    if (rc != 0) {
        close(sv[0]);
        return fp_fail(err, FP_EIO, "cannot start render worker %s: %s", p->exe, strerror(rc));
    }
    int fl = fcntl(sv[0], F_GETFL);
    if (fl < 0 || fcntl(sv[0], F_SETFL, fl | O_NONBLOCK) < 0) {
        int e = errno;
        close(sv[0]);
        kill(pid, SIGKILL);
        reap(pid, NULL, 0);
        return fp_fail(err, FP_EIO, "fcntl: %s", strerror(e));
    }
    s->pid = pid;
    s->fd = sv[0];
    return 0;
}

/* 0, or -ETIMEDOUT, or -errno (EPIPE, ECONNRESET: the worker is gone). */
static int send_all(int fd, const void *buf, size_t n, int64_t deadline)
{
    const char *b = buf;
    while (n > 0) {
        ssize_t k = send(fd, b, n, MSG_NOSIGNAL);
        if (k > 0) {
            b += k;
            n -= (size_t)k;
            continue;
        }
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
            return -errno;
        int64_t left = deadline - fp_mono_ms();
        if (left <= 0)
            return -ETIMEDOUT;
        struct pollfd pf = {.fd = fd, .events = POLLOUT};
        if (poll(&pf, 1, (int)(left > INT32_MAX ? INT32_MAX : left)) < 0 && errno != EINTR)
            return -errno;
    }
    return 0;
}

/* Reads exactly n bytes: 0, 1 on EOF, -ETIMEDOUT, -errno.  With out, the
 * bytes are appended to it instead of buf. */
static int recv_all(int fd, void *buf, size_t n, fp_buf *out, int64_t deadline)
{
    char chunk[16384]; /* callers may be threads with small stacks */
    char *b = buf;
    while (n > 0) {
        size_t want = out ? (n < sizeof chunk ? n : sizeof chunk) : n;
        ssize_t k = recv(fd, out ? chunk : b, want, 0);
        if (k > 0) {
            if (out) {
                fp_buf_append(out, chunk, (size_t)k);
                if (out->overflow)
                    return -ENOMEM;
            } else {
                b += k;
            }
            n -= (size_t)k;
            continue;
        }
        if (k == 0)
            return 1;
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            return -errno;
        int64_t left = deadline - fp_mono_ms();
        if (left <= 0)
            return -ETIMEDOUT;
        struct pollfd pf = {.fd = fd, .events = POLLIN};
        if (poll(&pf, 1, (int)(left > INT32_MAX ? INT32_MAX : left)) < 0 && errno != EINTR)
            return -errno;
    }
    return 0;
}

/* 1 if the slot's worker has exited (it is then reaped and the slot
 * emptied). */
static int slot_exited(slot *s)
{
    int st;
    if (s->pid <= 0)
        return 0;
    pid_t r = waitpid(s->pid, &st, WNOHANG);
    if (r == s->pid || (r < 0 && errno == ECHILD)) {
        close(s->fd);
        s->fd = -1;
        s->pid = 0;
        return 1;
    }
    return 0;
}

static int slot_render(fp_pdf_pool *p, slot *s, const char *doc, size_t len, fp_buf *out,
                       int *pages, int64_t deadline, fp_err *err)
{
    char why[200];
    unsigned char hdr[REPLY_HDR];
    put32(hdr, (uint32_t)len);

    /* send; a worker found dead before the request went out (killed while
     * idle, by an operator or the OOM killer) is replaced and the request
     * sent again, once */
    for (int attempt = 0;; attempt++) {
        slot_exited(s);
        if (s->pid == 0) {
            int rc = slot_spawn(p, s, err);
            if (rc)
                return rc;
        }
        int rc = send_all(s->fd, hdr, 4, deadline);
        if (!rc)
            rc = send_all(s->fd, doc, len, deadline);
        if (!rc)
            break;
        if (rc == -ETIMEDOUT) {
            slot_drop(s, 1, NULL, 0);
            return fp_fail(err, FP_ETIMEDOUT,
                           "render worker did not take the document within %d ms (killed)",
                           p->timeout_ms);
        }
        slot_drop_dead(s, deadline, why, sizeof why);
        if (attempt == 1)
            return fp_fail(err, FP_EIO, "%s", why);
    }

    size_t start = out->len;
    int rc = recv_all(s->fd, hdr, REPLY_HDR, NULL, deadline);
    if (rc == -ETIMEDOUT) {
        slot_drop(s, 1, NULL, 0);
        return fp_fail(err, FP_ETIMEDOUT, "render took longer than %d ms (worker killed)",
                       p->timeout_ms);
    }
    if (rc != 0) {
        slot_drop_dead(s, deadline > fp_mono_ms() + 1000 ? deadline : fp_mono_ms() + 1000, why,
                       sizeof why);
        return fp_fail(err, FP_EIO, "%s", why);
    }
    uint32_t status = get32(hdr), npages = get32(hdr + 4), n = get32(hdr + 8);
    int is_error = status != 0;
    size_t limit = is_error ? 4096 : FP_PDF_MAX_PDF;
    if (n > limit || (!is_error && (out->overflow || out->len + n > out->max))) {
        /* unreadable or unwanted: the stream is out of step, start afresh */
        slot_drop(s, 1, NULL, 0);
        if (is_error || n > limit)
            return fp_fail(err, FP_EIO, "render worker sent a malformed reply (length %u)", n);
        return fp_fail(err, FP_ERANGE, "the PDF (%u bytes) exceeds the output limit (%zu bytes)", n,
                       out->max);
    }
    char msg[4097];
    rc = is_error ? recv_all(s->fd, msg, n, NULL, deadline)
                  : recv_all(s->fd, NULL, n, out, deadline);
    if (rc != 0) {
        out->len = start;
        out->overflow = 0;
        if (rc == -ETIMEDOUT) {
            slot_drop(s, 1, NULL, 0);
            return fp_fail(err, FP_ETIMEDOUT, "render took longer than %d ms (worker killed)",
                           p->timeout_ms);
        }
        if (rc == -ENOMEM) {
            slot_drop(s, 1, NULL, 0);
            return fp_fail(err, FP_ENOMEM, "out of memory receiving the PDF");
        }
        slot_drop_dead(s, fp_mono_ms() + 1000, why, sizeof why);
        return fp_fail(err, FP_EIO, "%s", why);
    }
    if (!is_error) {
        if (pages)
            *pages = (int)npages;
        return 0;
    }
    msg[n] = 0;
    int code = -(int)status;
    if (code == FP_EINVAL || code == FP_ERANGE)
        return fp_fail(err, code, "%s", msg);
    if (code == FP_ENOMEM) {
        /* the worker exits after saying so; collect it now */
        slot_drop_dead(s, fp_mono_ms() + 1000, why, sizeof why);
        return fp_fail(err, FP_EIO, "render worker: %s", msg);
    }
    return fp_fail(err, FP_EIO, "render worker: %s", msg);
}

int fp_pdf_pool_render(fp_pdf_pool *p, const char *doc, size_t len, fp_buf *out, int *pages,
                       fp_err *err)
{
    if (!p || !out || (!doc && len))
        return fp_fail(err, FP_EINVAL, "no pool, document or output buffer");
    if (len > FP_PDF_MAX_DOC)
        return fp_fail(err, FP_EINVAL, "invoice document too large (%zu bytes, at most %u)", len,
                       FP_PDF_MAX_DOC);
    int64_t deadline = fp_mono_ms() + p->timeout_ms;
    slot *s = NULL;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        for (int i = 0; i < p->nworkers && !s; i++)
            if (!p->slots[i].busy)
                s = &p->slots[i];
        if (s)
            break;
        int rc = fp_cond_wait_until(&p->cv, &p->mu, deadline * 1000000);
        if (rc == ETIMEDOUT) {
            pthread_mutex_unlock(&p->mu);
            return fp_fail(err, FP_ETIMEDOUT, "no render worker became free within %d ms",
                           p->timeout_ms);
        }
    }
    s->busy = 1;
    pthread_mutex_unlock(&p->mu);

    int rc = slot_render(p, s, doc ? doc : "", len, out, pages, deadline, err);

    pthread_mutex_lock(&p->mu);
    s->busy = 0;
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
    return rc;
}

void fp_pdf_pool_free(fp_pdf_pool *p)
{
    if (!p)
        return;
    /* EOF on their stdin ends the workers; a busy or stuck one is killed */
    for (int i = 0; i < p->nworkers; i++)
        if (p->slots[i].fd >= 0) {
            close(p->slots[i].fd);
            p->slots[i].fd = -1;
        }
    int64_t deadline = fp_mono_ms() + 1000;
    for (int i = 0; i < p->nworkers; i++) {
        slot *s = &p->slots[i];
        while (s->pid > 0 && fp_mono_ms() < deadline) {
            int st;
            pid_t r = waitpid(s->pid, &st, WNOHANG);
            if (r == s->pid || (r < 0 && errno != EINTR))
                s->pid = 0;
            else {
                struct timespec ts = {0, 5 * 1000 * 1000};
                nanosleep(&ts, NULL);
            }
        }
        if (s->pid > 0)
            slot_drop(s, 1, NULL, 0);
    }
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    free(p->exe);
    free(p->font);
    free(p);
}

int fp_pdf_pool_new(const fp_pdf_pool_opts *o, fp_pdf_pool **out, fp_err *err)
{
    *out = NULL;
    if (!o || !o->exe || !*o->exe)
        return fp_fail(err, FP_EINVAL, "render pool: no worker executable");
    int n = o->workers ? o->workers : DEFAULT_WORKERS;
    if (n < 1 || n > MAX_WORKERS || o->timeout_ms < 0)
        return fp_fail(err, FP_EINVAL, "render pool: workers must be 1..%d, timeout >= 0",
                       MAX_WORKERS);
    fp_pdf_pool *p = calloc(1, sizeof *p + (size_t)n * sizeof(slot));
    if (!p)
        return fp_fail(err, FP_ENOMEM, "out of memory");
    p->nworkers = n;
    p->timeout_ms = o->timeout_ms ? o->timeout_ms : DEFAULT_TIMEOUT_MS;
    snprintf(p->mem_arg, sizeof p->mem_arg, "%zu", o->mem_limit ? o->mem_limit : DEFAULT_MEM_LIMIT);
    snprintf(p->timeout_arg, sizeof p->timeout_arg, "%d", p->timeout_ms);
    p->foreground = o->foreground;
    for (int i = 0; i < n; i++)
        p->slots[i].fd = -1;
    p->exe = strdup(o->exe);
    p->font = o->font_path ? strdup(o->font_path) : NULL;
    int ok = p->exe && (!o->font_path || p->font) && fp_cond_init_mono(&p->cv) == 0;
    if (!ok || pthread_mutex_init(&p->mu, NULL) != 0) {
        if (ok)
            pthread_cond_destroy(&p->cv);
        free(p->exe);
        free(p->font);
        free(p);
        return fp_fail(err, FP_ENOMEM, "out of memory");
    }
    /* start them now, so that a wrong executable shows at startup */
    for (int i = 0; i < n; i++) {
        int rc = slot_spawn(p, &p->slots[i], err);
        if (rc) {
            fp_pdf_pool_free(p);
            return rc;
        }
    }
    *out = p;
    return 0;
}

/* ---- the worker side ---- */

/* Seconds a single render may take in this worker before SIGALRM ends it
 * (0: unbounded); set by fp_pdf_worker_limits. */
static unsigned worker_alarm_s;

int fp_pdf_worker_limits(size_t mem_bytes, int render_ms, int foreground, fp_err *err)
{
    worker_alarm_s = render_ms > 0 ? (unsigned)(render_ms / 1000 + 6) : 0;
    /* Rendering is background work: SCHED_IDLE runs it only on CPU time no
     * normal thread wants, so issuing never waits behind a PDF (nice 10,
     * used before, still took about a tenth of a busy core).  Why this and
     * not a cgroup, and what keeps the backlog bounded when the machine is
     * busy for hours: docs/render-performance.md.  A process may always
     * lower itself to SCHED_IDLE; should that fail, nice 19 is the next
     * best thing.  A foreground pool (a render someone waits for) keeps
     * the normal policy. */
    if (!foreground) {
        struct sched_param sp = {.sched_priority = 0};
        if (sched_setscheduler(0, SCHED_IDLE, &sp) < 0 && setpriority(PRIO_PROCESS, 0, 19) < 0)
            return fp_fail(err, FP_EIO, "sched_setscheduler(SCHED_IDLE): %s", strerror(errno));
    }
    if (mem_bytes == 0 || FP_SANITIZED)
        return 0;
    struct rlimit rl = {.rlim_cur = mem_bytes, .rlim_max = mem_bytes};
    if (setrlimit(RLIMIT_AS, &rl) < 0)
        return fp_fail(err, FP_EIO, "setrlimit(RLIMIT_AS, %zu): %s", mem_bytes, strerror(errno));
    return 0;
}

/* Blocking full read: 0, 1 on EOF before the first byte, -1 on error or EOF
 * in the middle. */
static int read_full(int fd, void *buf, size_t n)
{
    char *b = buf;
    size_t got = 0;
    while (got < n) {
        ssize_t k = read(fd, b + got, n - got);
        if (k > 0)
            got += (size_t)k;
        else if (k == 0)
            return got == 0 ? 1 : -1;
        else if (errno != EINTR)
            return -1;
    }
    return 0;
}

static int write_full(int fd, const void *buf, size_t n)
{
    const char *b = buf;
    while (n > 0) {
        ssize_t k = write(fd, b, n);
        if (k > 0) {
            b += k;
            n -= (size_t)k;
        } else if (k < 0 && errno != EINTR) {
            return -1;
        }
    }
    return 0;
}

/* The worker's request and reply streams: private copies of fds 0 and 1,
 * which are then pointed at /dev/null and stderr, so that nothing a library
 * prints can corrupt the framing. */
static int req_fd = 0, rep_fd = 1;

static int reply(int code, int pages, const void *data, size_t n)
{
    unsigned char hdr[REPLY_HDR];
    put32(hdr, (uint32_t)-code);
    put32(hdr + 4, (uint32_t)pages);
    put32(hdr + 8, (uint32_t)n);
    if (write_full(rep_fd, hdr, sizeof hdr) < 0 || write_full(rep_fd, data, n) < 0)
        return -1;
    return 0;
}

static int reply_err(int code, const char *msg)
{
    return reply(code, 0, msg, strlen(msg));
}

/* The test-only fault hooks (pdf.h): 1 if the remark asks for `what` and
 * FP_RENDER_FAULT enables it. */
static int fault_wanted(const char *faults, const char *what, const char *marker, const char *doc,
                        size_t len)
{
    if (!faults || !strstr(faults, what))
        return 0;
    cJSON *root = cJSON_ParseWithLength(doc, len);
    const cJSON *rm = cJSON_GetObjectItemCaseSensitive(root, "remark");
    int hit = cJSON_IsString(rm) && strstr(rm->valuestring, marker) != NULL;
    cJSON_Delete(root);
    return hit;
}

int fp_pdf_worker_main(const char *font_path)
{
    signal(SIGPIPE, SIG_IGN); /* a vanished parent is a write error, then exit */
    int in = fcntl(0, F_DUPFD_CLOEXEC, 3), rep = fcntl(1, F_DUPFD_CLOEXEC, 3);
    int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (in >= 0 && rep >= 0) {
        req_fd = in;
        rep_fd = rep;
        if (devnull >= 0)
            dup2(devnull, 0);
        dup2(2, 1);
    }
    if (devnull >= 0)
        close(devnull);

    const char *faults = getenv("FP_RENDER_FAULT");
    fp_err ierr = {0};
    fp_pdf_renderer *r = NULL;
    int init_rc = fp_pdf_renderer_new(font_path, &r, &ierr);
    /* the output buffer is kept from one render to the next: a warm worker
     * does not grow a fresh one for every PDF */
    fp_buf out;
    fp_buf_init(&out, FP_PDF_MAX_PDF);

    for (;;) {
        unsigned char hdr[4];
        int rc = read_full(req_fd, hdr, 4);
        if (rc == 1)
            break; /* EOF between requests: the pool is done with us */
        if (rc < 0) {
            fp_buf_free(&out);
            fp_pdf_renderer_free(r);
            return 1;
        }
        uint32_t len = get32(hdr);
        char *doc = len <= FP_PDF_MAX_DOC ? malloc(len ? len : 1) : NULL;
        if (!doc) {
            /* drain the document to answer in step, then go */
            char sink[65536];
            for (uint32_t left = len; left > 0;) {
                uint32_t k = left < sizeof sink ? left : (uint32_t)sizeof sink;
                if (read_full(req_fd, sink, k) != 0) {
                    fp_buf_free(&out);
                    fp_pdf_renderer_free(r);
                    return 1;
                }
                left -= k;
            }
            if (len > FP_PDF_MAX_DOC) {
                if (reply_err(FP_EINVAL, "invoice document too large") < 0)
                    break;
                continue;
            }
            reply_err(FP_ENOMEM, "out of memory");
            fp_buf_free(&out);
            fp_pdf_renderer_free(r);
            return 3;
        }
        if (len && read_full(req_fd, doc, len) != 0) {
            free(doc);
            fp_buf_free(&out);
            fp_pdf_renderer_free(r);
            return 1;
        }
        /* the pool kills us at its timeout; should the pool be gone, this
         * ends a render that never finishes (an idle worker sees EOF) */
        alarm(worker_alarm_s);
        if (fault_wanted(faults, "sleep", "FAULT:SLEEP", doc, len))
            for (;;)
                pause();
        if (fault_wanted(faults, "crash", "FAULT:CRASH", doc, len)) {
            struct rlimit no_core = {0, 0};
            setrlimit(RLIMIT_CORE, &no_core);
            abort();
        }
        if (init_rc) {
            free(doc);
            if (reply_err(init_rc == FP_ENOMEM ? FP_ENOMEM : FP_EIO, ierr.msg) < 0 ||
                init_rc == FP_ENOMEM) {
                fp_buf_free(&out);
                return init_rc == FP_ENOMEM ? 3 : 1;
            }
            continue;
        }
        out.len = 0;
        out.overflow = 0;
        fp_err err = {0};
        int pages = 0;
        rc = fp_pdf_render(r, doc, len, &out, &pages, &err);
        free(doc);
        int wrc = rc == 0 ? reply(0, pages, out.p ? out.p : "", out.len) : reply_err(rc, err.msg);
        if (out.cap > ((size_t)8 << 20)) /* keep a long invoice's buffer no longer */
            fp_buf_free(&out);
        alarm(0);
        if (wrc < 0)
            break;
        if (rc == FP_ENOMEM) {
            fp_buf_free(&out);
            fp_pdf_renderer_free(r);
            return 3; /* a fresh process is cheaper than trusting this one */
        }
    }
    fp_buf_free(&out);
    fp_pdf_renderer_free(r);
    return 0;
}
