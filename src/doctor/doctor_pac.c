/* doctor_pac.c — `fapiao doctor --pac FILE`: what a proxy auto-config
 * file says for the server's URL.  Browsers run FindProxyForURL(url, host);
 * most other programs (Java, curl, Python, Go, services) never do, and go
 * direct where the browser goes through a proxy: PROXY_PAC (a warning)
 * names the proxy the file picks, and the local layer then checks it as it
 * checks --proxy (CONNECT, doctor_proxy.c).
 *
 * The file is JavaScript from the network's administrator: it runs in
 * Duktape (a small embeddable engine with no file, network or process
 * bindings of its own) inside a child process with a CPU and an alarm limit
 * of the doctor's timeout and, outside ASan builds, an address-space limit,
 * so an endless loop or a runaway allocation ends the child, not the
 * doctor.  The PAC helpers are the usual ones (isInNet, shExpMatch, …);
 * dnsResolve and myIpAddress are the only functions that reach the system,
 * and only its resolver.  dateRange and timeRange with minutes throw
 * (named in the finding): the doctor does not guess a calendar. */
#include "doctor_internal.h"

#include <duktape.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#define PAC_MAX_BYTES (256 * 1024)

/* The helpers every PAC file may call (Netscape's list, as browsers have
 * them), but dnsResolve and myIpAddress, which are C below. */
static const char pac_utils[] =
    "function isPlainHostName(h){return h.indexOf('.')<0;}\n"
    "function dnsDomainIs(h,d){return h.length>=d.length&&"
    "h.substring(h.length-d.length)==d;}\n"
    "function localHostOrDomainIs(h,hd){return h==hd||hd.lastIndexOf(h+'.',0)==0;}\n"
    "function isResolvable(h){return dnsResolve(h)!==null;}\n"
    "function dnsDomainLevels(h){return h.split('.').length-1;}\n"
    "function convert_addr(ip){var b=ip.split('.');"
    "return((b[0]&255)<<24|(b[1]&255)<<16|(b[2]&255)<<8|(b[3]&255))>>>0;}\n"
    "function isInNet(ip,pat,mask){if(!/^\\d+\\.\\d+\\.\\d+\\.\\d+$/.test(ip)){"
    "ip=dnsResolve(ip);if(ip===null)return false;}"
    "return((convert_addr(ip)&convert_addr(mask))>>>0)=="
    "((convert_addr(pat)&convert_addr(mask))>>>0);}\n"
    "function shExpMatch(s,p){p=p.replace(/[.+^${}()|[\\]\\\\]/g,'\\\\$&')"
    ".replace(/\\*/g,'.*').replace(/\\?/g,'.');return new RegExp('^'+p+'$').test(s);}\n"
    "var __pac_days=['SUN','MON','TUE','WED','THU','FRI','SAT'];\n"
    "function weekdayRange(a,b,g){var d=new Date();"
    "var t=(b==='GMT'||g==='GMT')?d.getUTCDay():d.getDay();"
    "var x=__pac_days.indexOf(a),y=(b&&b!=='GMT')?__pac_days.indexOf(b):x;"
    "if(x<0||y<0)return false;return x<=y?(t>=x&&t<=y):(t>=x||t<=y);}\n"
    "function timeRange(){var a=Array.prototype.slice.call(arguments);"
    "var g=a[a.length-1]==='GMT';if(g)a.pop();var d=new Date();"
    "var h=g?d.getUTCHours():d.getHours();if(a.length==1)return h==a[0];"
    "if(a.length==2)return a[0]<=a[1]?(h>=a[0]&&h<a[1]):(h>=a[0]||h<a[1]);"
    "throw new Error('timeRange with minutes is not supported by fapiao doctor');}\n"
    "function dateRange(){throw new Error('dateRange is not supported by fapiao doctor');}\n";

static duk_ret_t js_dns_resolve(duk_context *ctx)
{
    const char *h = duk_safe_to_string(ctx, 0);
    struct addrinfo hints = {.ai_family = AF_INET}, *ai = NULL;
    char ip[INET_ADDRSTRLEN];
    if (getaddrinfo(h, NULL, &hints, &ai) != 0 || !ai) {
        duk_push_null(ctx);
        return 1;
    }
    inet_ntop(AF_INET, &((struct sockaddr_in *)ai->ai_addr)->sin_addr, ip, sizeof ip);
    freeaddrinfo(ai);
    duk_push_string(ctx, ip);
    return 1;
}

/* The address the default route leaves from (a UDP connect sends nothing). */
static duk_ret_t js_my_ip(duk_context *ctx)
{
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(53)}, me;
    socklen_t len = sizeof me;
    char ip[INET_ADDRSTRLEN] = "127.0.0.1";
    inet_pton(AF_INET, "192.0.2.1", &to.sin_addr);
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&to, sizeof to) == 0 &&
        getsockname(fd, (struct sockaddr *)&me, &len) == 0)
        inet_ntop(AF_INET, &me.sin_addr, ip, sizeof ip);
    if (fd >= 0)
        close(fd);
    duk_push_string(ctx, ip);
    return 1;
}

static void put(int fd, const char *a, const char *b)
{
    char out[1024];
    int n = snprintf(out, sizeof out, "%s%s", a, b ? b : "");
    if (n > 0 && write(fd, out, (size_t)n < sizeof out ? (size_t)n : sizeof out - 1) < 0)
        _exit(1);
}

/* The child: FindProxyForURL(url, host) onto fd ("!" + the error when it
 * fails), then _exit. */
static void pac_child(int fd, const char *src, size_t len, const char *url, const char *host,
                      int timeout_ms)
{
    unsigned secs = (unsigned)(timeout_ms + 999) / 1000;
    struct rlimit cpu = {.rlim_cur = secs, .rlim_max = secs + 1};
    setrlimit(RLIMIT_CPU, &cpu);
#if !defined(__SANITIZE_ADDRESS__)
    struct rlimit as = {.rlim_cur = 512UL << 20, .rlim_max = 512UL << 20};
    setrlimit(RLIMIT_AS, &as);
#endif
    alarm(secs);
    duk_context *ctx = duk_create_heap_default();
    if (!ctx) {
        put(fd, "!cannot start the JavaScript engine", NULL);
        _exit(0);
    }
    duk_push_c_function(ctx, js_dns_resolve, 1);
    duk_put_global_string(ctx, "dnsResolve");
    duk_push_c_function(ctx, js_my_ip, 0);
    duk_put_global_string(ctx, "myIpAddress");
    if (duk_peval_string(ctx, pac_utils) != 0)
        put(fd, "!the PAC helpers: ", duk_safe_to_string(ctx, -1));
    else if (duk_pop(ctx), duk_peval_lstring(ctx, src, len) != 0)
        put(fd, "!", duk_safe_to_string(ctx, -1));
    else if (duk_pop(ctx),
             !duk_get_global_string(ctx, "FindProxyForURL") || !duk_is_function(ctx, -1))
        put(fd, "!the file defines no function FindProxyForURL", NULL);
    else if (duk_push_string(ctx, url), duk_push_string(ctx, host), duk_pcall(ctx, 2) != 0)
        put(fd, "!FindProxyForURL: ", duk_safe_to_string(ctx, -1));
    else
        put(fd, "", duk_safe_to_string(ctx, -1));
    _exit(0);
}

/* Runs the file for url and host: 0 and its answer in out, or -1 and why. */
static int pac_eval(const char *file, const char *url, const char *host, int timeout_ms, char *out,
                    size_t n)
{
    FILE *f = fopen(file, "rb");
    if (!f) {
        snprintf(out, n, "cannot read %s: %s", file, strerror(errno));
        return -1;
    }
    char *src = malloc(PAC_MAX_BYTES);
    size_t len = src ? fread(src, 1, PAC_MAX_BYTES, f) : 0;
    int big = src && len == PAC_MAX_BYTES;
    fclose(f);
    int p[2] = {-1, -1};
    pid_t pid = -1;
    if (!src || big || pipe2(p, O_CLOEXEC) < 0 || (pid = fork()) < 0) {
        snprintf(out, n, "%s", big ? "the PAC file is larger than 256 KiB" : strerror(errno));
        free(src);
        return -1;
    }
    if (pid == 0) {
        close(p[0]);
        pac_child(p[1], src, len, url, host, timeout_ms);
    }
    close(p[1]);
    free(src);
    size_t got = 0;
    double end = fp_doc_now_ms() + timeout_ms + 500;
    while (got + 1 < n) {
        int left = (int)(end - fp_doc_now_ms());
        struct pollfd pfd = {.fd = p[0], .events = POLLIN};
        if (left <= 0 || poll(&pfd, 1, left) <= 0)
            break;
        ssize_t k = read(p[0], out + got, n - 1 - got);
        if (k <= 0)
            break;
        got += (size_t)k;
    }
    out[got] = 0;
    close(p[0]);
    int st = 0;
    if (waitpid(pid, &st, WNOHANG) == 0) {
        kill(pid, SIGKILL);
        waitpid(pid, &st, 0);
    }
    if (got == 0) {
        snprintf(out, n, "FindProxyForURL did not finish within %d ms (%s)", timeout_ms,
                 WIFSIGNALED(st) ? strsignal(WTERMSIG(st)) : "no answer");
        return -1;
    }
    if (out[0] == '!') {
        memmove(out, out + 1, got);
        return -1;
    }
    return 0;
}

const char *fp_doc_pac_proxy(dctx *c, char *proxy, size_t n)
{
    cJSON *d = fp_doc_det(c, FP_DOC_LOCAL);
    char url[400], ans[1024];
    int v6 = strchr(c->r->host, ':') != NULL;
    snprintf(url, sizeof url, "%s://%s%s%s:%d/", c->r->scheme, v6 ? "[" : "", c->r->host,
             v6 ? "]" : "", c->r->port);
    cJSON_AddStringToObject(d, "pac", c->o->pac);
    if (pac_eval(c->o->pac, url, c->r->host, c->timeout_ms, ans, sizeof ans) < 0) {
        cJSON_AddStringToObject(d, "pac_error", ans);
        fp_doc_hit(c, FP_DOC_LOCAL, "PROXY_PAC",
                   "the PAC file %s cannot be evaluated for %s: %s; browsers then connect "
                   "directly",
                   c->o->pac, url, ans);
        return NULL;
    }
    cJSON_AddStringToObject(d, "pac_result", ans);
    /* the first entry decides: "PROXY h:p; DIRECT" */
    char kind[16] = "", where[300] = "";
    if (sscanf(ans, " %15[A-Za-z5] %299[^; ]", kind, where) < 1 ||
        strcasecmp(kind, "DIRECT") == 0) {
        fp_doc_note(c, FP_DOC_LOCAL, "the PAC file says DIRECT for %s", url);
        return NULL;
    }
    if (strcasecmp(kind, "PROXY") != 0 && strcasecmp(kind, "HTTP") != 0) {
        fp_doc_hit(c, FP_DOC_LOCAL, "PROXY_PAC",
                   "the PAC file sends %s through %s %s (\"%s\"), which the doctor does not "
                   "check; programs that do not run PAC files connect directly",
                   url, kind, where, ans);
        return NULL;
    }
    snprintf(proxy, n, "http://%s", where);
    fp_doc_hit(c, FP_DOC_LOCAL, "PROXY_PAC",
               "the PAC file sends %s through %s (\"%s\"); programs that do not run PAC files "
               "(Java, curl, Python, services) connect directly unless given "
               "https_proxy=%s",
               url, where, ans, proxy);
    return proxy;
}
