/* sink.c — shipping signed checkpoints to an append-only place, and
 * checking a database against what was shipped (docs/audit.md). */
#include "internal.h"

/* ---- shipping checkpoints to an append-only place (docs/audit.md) ----
 *
 * Why: whoever holds audit.key can rewrite the log and re-sign every
 * checkpoint.  A checkpoint copied, as it is made, to a place that
 * process cannot change afterwards (a file the operator made append-only,
 * a write-once mount, another host through a command) pins the chain up to
 * it: a rewrite re-signed later disagrees with the shipped copy. */

#define SHIP_FILE "checkpoints.jsonl"

/* The id on the last complete line of path (0: no file or no line). */
static int64_t last_shipped_id(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    char buf[4096];
    long end = fseek(f, 0, SEEK_END) == 0 ? ftell(f) : -1;
    long from = end > (long)sizeof buf - 1 ? end - (long)sizeof buf + 1 : 0;
    size_t n = end > 0 && fseek(f, from, SEEK_SET) == 0 ? fread(buf, 1, sizeof buf - 1, f) : 0;
    fclose(f);
    buf[n] = 0;
    while (n && buf[n - 1] != '\n') /* a torn last line does not count */
        buf[--n] = 0;
    if (n)
        buf[--n] = 0;
    char *line = strrchr(buf, '\n');
    line = line ? line + 1 : buf;
    cJSON *o = cJSON_Parse(line);
    int64_t id = 0;
    if (o && !strcmp(fp_av_json_type(o), "checkpoint") && fp_av_json_i64(o, "id", &id) < 0)
        id = 0;
    cJSON_Delete(o);
    return id;
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Runs /bin/sh -c cmd with data on its stdin; 0 when it exits 0 within
 * HOOK_TIMEOUT_MS (else it is killed): a hook that hangs must not hold up
 * the shipper, nor serve's stop. */
#define HOOK_TIMEOUT_MS 30000
static int run_hook(const char *cmd, const char *data, size_t len, fp_err *err)
{
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) < 0)
        return fp_fail(err, FP_EIO, "pipe: %s", strerror(errno));
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return fp_fail(err, FP_EIO, "fork: %s", strerror(errno));
    }
    if (pid == 0) {
        if (dup2(fds[0], STDIN_FILENO) < 0)
            _exit(127);
        signal(SIGPIPE, SIG_DFL);
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    close(fds[0]);
    /* the hook may exit without reading (EPIPE, not a signal) or stop
     * reading: the writes wait at most until the deadline too */
    void (*old)(int) = signal(SIGPIPE, SIG_IGN);
    fcntl(fds[1], F_SETFL, O_NONBLOCK);
    int ms = 0;
    while (len && ms < HOOK_TIMEOUT_MS) {
        ssize_t w = write(fds[1], data, len);
        if (w > 0) {
            data += w;
            len -= (size_t)w;
        } else if (w < 0 && (errno == EAGAIN || errno == EINTR)) {
            struct pollfd pfd = {fds[1], POLLOUT, 0};
            poll(&pfd, 1, 10);
            ms += 10;
        } else {
            break;
        }
    }
    int wrote = len == 0;
    close(fds[1]);
    signal(SIGPIPE, old);
    int status = 0, waited = 0;
    for (; ms < HOOK_TIMEOUT_MS; ms += 10) {
        pid_t w = waitpid(pid, &status, WNOHANG);
        if (w == pid) {
            waited = 1;
            break;
        }
        if (w < 0 && errno != EINTR)
            break;
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    if (!waited) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        return fp_fail(err, FP_EIO, "checkpoint hook %s did not finish within %d s", cmd,
                       HOOK_TIMEOUT_MS / 1000);
    }
    if (!wrote || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
        return fp_fail(err, FP_EIO, "checkpoint hook %s failed (exit status %d)", cmd,
                       WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    return 0;
}

typedef struct ship_job {
    fp_buf *b;
    int64_t after, last, n;
    fp_err *err;
} ship_job;

static int ship_cp(const fp_audit_cp *cp, void *arg)
{
    ship_job *j = arg;
    fp_av_write_cp_line(j->b, cp);
    j->last = cp->id;
    j->n++;
    return 0;
}

/* The checkpoints after the last one shipped, at most 10,000 a round. */
static int ship_snap(fp_audit_snap *a, void *arg)
{
    ship_job *j = arg;
    fp_audit_scan q = {
        .no_rows = 1, .cp_after = j->after, .cp_limit = 10000, .on_cp = ship_cp, .arg = j};
    return a->scan(a, &q, j->err);
}

int fp_audit_ship(const char *db_path, const char *dest, const char *state_path, int64_t *shipped,
                  fp_err *err)
{
    *shipped = 0;
    int is_cmd = !strncmp(dest, "cmd:", 4);
    char path[4200];
    char state_buf[4200];
    if (is_cmd && !state_path) {
        snprintf(state_buf, sizeof state_buf, "%s.cp-shipped", db_path);
        state_path = state_buf;
    }
    if (snprintf(path, sizeof path, "%s/%s", dest, SHIP_FILE) >= (int)sizeof path)
        return fp_fail(err, FP_ERANGE, "path too long: %s", dest);
    int64_t after = last_shipped_id(is_cmd ? state_path : path);
    fp_buf b;
    fp_buf_init(&b, 0);
    ship_job j = {.b = &b, .after = after, .err = err};
    int rc = fp_av_snapshot(db_path, ship_snap, &j, err);
    int64_t last = j.last;
    *shipped = j.n;
    if (rc < 0)
        goto out;
    if (b.overflow) {
        rc = fp_fail(err, FP_ENOMEM, "out of memory");
        goto out;
    }
    if (!*shipped && is_cmd)
        goto out;
    if (is_cmd) {
        /* the command gets the new checkpoints on stdin; the state file
         * (beside the database) remembers how far it acknowledged (exit 0) */
        if ((rc = run_hook(dest + 4, b.p, b.len, err)) < 0)
            goto out;
        b.len = 0;
        fp_audit_cp cp = {.id = last};
        fp_av_write_cp_line(&b, &cp); /* only "id" is read back */
        if (snprintf(path, sizeof path, "%s.tmp", state_path) >= (int)sizeof path) {
            rc = fp_fail(err, FP_ERANGE, "path too long: %s", state_path);
            goto out;
        }
        FILE *s = fopen(path, "w");
        if (!s || fwrite(b.p, 1, b.len, s) != b.len || fclose(s) != 0 ||
            rename(path, state_path) != 0) {
            rc = fp_fail(err, FP_EIO, "cannot write %s: %s", state_path, strerror(errno));
            goto out;
        }
        goto out;
    }
    /* O_APPEND: what chattr +a (or a write-once store) still allows */
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    if (fd < 0) {
        rc = fp_fail(err, FP_EIO, "open %s: %s", path, strerror(errno));
        goto out;
    }
    /* nothing new still opens the file: a sink that cannot take lines
     * shows at once (serve refuses to start) */
    int ok = !*shipped || (write_all(fd, b.p, b.len) == 0 && fsync(fd) == 0);
    int e = errno;
    if (close(fd) != 0 && ok) {
        ok = 0;
        e = errno;
    }
    if (!ok)
        rc = fp_fail(err, FP_EIO, "append to %s: %s", path, strerror(e));
out:
    fp_buf_free(&b);
    if (rc < 0)
        *shipped = 0;
    return rc;
}

typedef struct shipped_job {
    verifier v;
    fp_audit_report *rep;
    const unsigned char *pk;
    FILE *f;
    const char *path;
    char *line;
    fp_err *err;
} shipped_job;

/* One shipped checkpoint against the log: 0 go on, 1 a finding (stop),
 * or an error. */
static int check_one(fp_audit_snap *a, shipped_job *j, const fp_audit_cp *cp, int64_t min_id,
                     int64_t max_id)
{
    verifier *v = &j->v;
    j->rep->checkpoints++;
    if (!fp_audit_cp_valid(cp, j->pk))
        return fp_av_found(v, FP_AUDIT_CP_FORGED, 0, cp->id,
                           "shipped checkpoint %lld: signature invalid for this public key",
                           "已送出的第 %lld 号检查点签名与该公钥不符", (long long)cp->id),
               1;
    j->rep->cp_id = cp->id;
    j->rep->cp_upto = cp->upto_id;
    memcpy(j->rep->cp_hash, cp->upto_hash, FP_AUDIT_HASH_LEN);
    /* the database's checkpoint of the same id, when it still has it, must
     * be the one shipped (a re-signed log renumbers or rewrites them; a
     * pruned log keeps its anchor) */
    fp_audit_cp mine;
    int have = a->cp(a, FP_CP_ID, cp->id, &mine, j->err);
    if (have < 0)
        return have;
    if (have && (mine.upto_id != cp->upto_id ||
                 memcmp(mine.upto_hash, cp->upto_hash, FP_AUDIT_HASH_LEN) != 0))
        return fp_av_found(
                   v, FP_AUDIT_CP_MISMATCH, cp->upto_id, cp->id,
                   "checkpoint %lld in the database differs from its shipped copy: the log was "
                   "rewritten after it was shipped",
                   "数据库中的第 %lld 号检查点与已送出的副本不同：日志在送出后被改写",
                   (long long)cp->id),
               1;
    if (cp->upto_id < min_id || cp->upto_id == 0)
        return 0; /* pruned since (the database's own verify covers the anchor) */
    if (cp->upto_id > max_id)
        return fp_av_found(
                   v, FP_AUDIT_TRUNCATED, cp->upto_id, cp->id,
                   "shipped checkpoint %lld covers record %lld, but the log ends at %lld "
                   "(truncated)",
                   "已送出的第 %lld 号检查点覆盖到第 %lld 条，而日志止于第 %lld 条（被截断）",
                   (long long)cp->id, (long long)cp->upto_id, (long long)max_id),
               1;
    unsigned char h[FP_AUDIT_HASH_LEN];
    if (!a->hash_at(a, cp->upto_id, h) || memcmp(h, cp->upto_hash, FP_AUDIT_HASH_LEN) != 0)
        fp_av_found(v, FP_AUDIT_CP_MISMATCH, cp->upto_id, cp->id,
                    "shipped checkpoint %lld disagrees with the log at record %lld: the log was "
                    "rewritten after it was shipped",
                    "已送出的第 %lld 号检查点与日志第 %lld 条不符：日志在送出后被改写",
                    (long long)cp->id, (long long)cp->upto_id);
    return 0;
}

static int shipped_snap(fp_audit_snap *a, void *arg)
{
    shipped_job *j = arg;
    int64_t min_id = 0, max_id = 0;
    int rc = a->bounds(a, &min_id, &max_id, j->err);
    if (rc < 0 && rc != FP_ENOTFOUND)
        return rc;
    long n;
    int64_t lineno = 0;
    while (!j->v.done && (n = fp_av_read_line(j->f, j->line, BUNDLE_LINE_MAX)) != -1) {
        lineno++;
        cJSON *o = n >= 0 ? cJSON_ParseWithLength(j->line, (size_t)n) : NULL;
        fp_audit_cp cp;
        if (!o || strcmp(fp_av_json_type(o), "checkpoint") || fp_av_parse_cp(o, &cp) < 0) {
            cJSON_Delete(o);
            if (n == 0)
                continue;
            fp_av_found(&j->v, FP_AUDIT_BAD_BUNDLE, 0, 0, "%s line %lld is not a checkpoint",
                        "%s 第 %lld 行不是检查点", j->path, (long long)lineno);
            break;
        }
        cJSON_Delete(o);
        if ((rc = check_one(a, j, &cp, min_id, max_id)) != 0)
            return rc < 0 ? rc : 0;
    }
    return 0;
}

/* The shipped file is either DEST/checkpoints.jsonl or that file itself. */
int fp_audit_check_shipped(const char *db_path, const unsigned char pk[FP_AUDIT_KEY_LEN],
                           const char *shipped_path, fp_audit_report *rep, fp_err *err)
{
    shipped_job j = {.rep = rep, .pk = pk, .err = err};
    fp_av_genesis(&j.v, rep, pk);
    char path[4200];
    struct stat st;
    if (stat(shipped_path, &st) == 0 && S_ISDIR(st.st_mode))
        snprintf(path, sizeof path, "%s/%s", shipped_path, SHIP_FILE);
    else
        snprintf(path, sizeof path, "%s", shipped_path);
    j.path = path;
    if (!(j.f = fopen(path, "r")))
        return fp_fail(err, errno == ENOENT ? FP_ENOTFOUND : FP_EIO, "open %s: %s", path,
                       strerror(errno));
    int rc = (j.line = malloc(BUNDLE_LINE_MAX)) ? fp_av_snapshot(db_path, shipped_snap, &j, err)
                                                : fp_fail(err, FP_ENOMEM, "out of memory");
    free(j.line);
    fclose(j.f);
    return rc;
}
