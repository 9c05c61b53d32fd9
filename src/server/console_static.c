/* console_static.c — the console's pages under /console/ (docs/console.md):
 * files from --console-dir (the package's web/console/), and
 * /console/vendor/chart.js from Debian's libjs-chart.js where Debian
 * installs it.  Only GET and HEAD; a path with anything but
 * [A-Za-z0-9._-/], a segment starting with '.', or a file that resolves
 * outside the folder (a symlink out) is refused; every answer carries the
 * console's security headers. */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define STATIC_MAX (8u << 20)
#define CHART_JS   "/usr/share/javascript/chart.js/chart.js"

const char fp_console_csp[] = "default-src 'self'; script-src 'self'; style-src 'self'; "
                              "img-src 'self' data:; connect-src 'self'; "
                              "frame-ancestors 'none'; base-uri 'none'; form-action 'self'; "
                              "object-src 'none'";

static const struct {
    const char *ext, *type;
} types[] = {
    {".html", "text/html; charset=utf-8"},
    {".js", "text/javascript; charset=utf-8"},
    {".css", "text/css; charset=utf-8"},
    {".json", "application/json"},
    {".png", "image/png"},
    {".svg", "image/svg+xml"},
    {".ico", "image/x-icon"},
};

static const char *type_of(const char *path)
{
    const char *dot = strrchr(path, '.');
    for (size_t i = 0; dot && i < sizeof types / sizeof types[0]; i++)
        if (!strcmp(dot, types[i].ext))
            return types[i].type;
    return NULL;
}

/* 1 when rel (after "/console/") names a file we may serve. */
static int rel_ok(const char *rel)
{
    if (strspn(rel, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-/") !=
        strlen(rel))
        return 0;
    for (const char *seg = rel; seg; seg = strchr(seg, '/') ? strchr(seg, '/') + 1 : NULL)
        if (seg[0] == '.' || seg[0] == '/')
            return 0;
    return 1;
}

static enum MHD_Result not_found(fp_req *r)
{
    return fp_problem(r, FPC_NOT_FOUND, "路径不存在", "No such path", NULL);
}

/* The file at path if its real path lies under root ("" root: any). */
static enum MHD_Result send_file(fp_req *r, const char *root, const char *path)
{
    char real[PATH_MAX], rroot[PATH_MAX];
    const char *ct = type_of(path);
    if (!ct || !realpath(path, real) || (root[0] && !realpath(root, rroot)))
        return not_found(r);
    size_t rl = strlen(rroot);
    if (root[0] && (strncmp(real, rroot, rl) != 0 || real[rl] != '/'))
        return not_found(r);
    int fd = open(real, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || (size_t)st.st_size > STATIC_MAX) {
        if (fd >= 0)
            close(fd);
        return not_found(r);
    }
    size_t n = (size_t)st.st_size, got = 0;
    char *body = malloc(n ? n : 1);
    while (body && got < n) {
        ssize_t k = read(fd, body + got, n - got);
        if (k <= 0 && errno != EINTR)
            break;
        got += k > 0 ? (size_t)k : 0;
    }
    close(fd);
    if (!body || got != n) {
        free(body);
        return fp_problem(r, FPC_INTERNAL, "读取文件失败", "Cannot read the file", NULL);
    }
    const char *h[] = {FP_CONSOLE_SECURITY_HEADERS, NULL};
    return fp_respond(r, 200, ct, body, n, h);
}

enum MHD_Result fp_console_static(fp_req *r)
{
    const char *dir = r->srv->o.console_dir;
    if (!dir)
        return not_found(r);
    if (strcmp(r->method, "GET") && strcmp(r->method, "HEAD")) {
        const char *h[] = {"Allow", "GET, HEAD", FP_CONSOLE_SECURITY_HEADERS, NULL};
        char *body = strdup("{}");
        return body ? fp_respond(r, 405, "application/json", body, 2, h) : MHD_NO;
    }
    const char *rel = r->url + 9; /* after "/console/" */
    if (!rel[0])
        rel = "index.html";
    if (!rel_ok(rel))
        return not_found(r);
    if (!strcmp(rel, "vendor/chart.js"))
        return send_file(r, "", CHART_JS);
    char path[PATH_MAX];
    if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, rel) >= sizeof path)
        return not_found(r);
    return send_file(r, dir, path);
}
