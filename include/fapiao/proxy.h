/* proxy.h — the PROXY protocol version 2 header (binary), as an edge proxy
 * such as HAProxy (`send-proxy-v2`) puts it before the client's bytes to
 * carry the client's real address (src/server/proxy.c, docs/security.md
 * "Connections").  Parsed strictly: anything not exactly a well-formed v2
 * header of a TCP stream (or the proxy's own LOCAL connection) is refused. */
#ifndef FAPIAO_PROXY_H
#define FAPIAO_PROXY_H

#include <stddef.h>
#include <sys/socket.h>

#define FP_PROXY_V2_FIXED 16   /* signature, version/command, family, length */
#define FP_PROXY_V2_MAX   1024 /* a whole header longer than this is refused */

typedef struct fp_proxy_v2 {
    int local; /* LOCAL command: the proxy's own connection (health check), no address */
    struct sockaddr_storage src, dst; /* AF_INET or AF_INET6 with port (PROXY only) */
    socklen_t src_len, dst_len;
} fp_proxy_v2;

/* Parses the header at the start of p[0..n).  Returns its length (> 0)
 * when it is complete and valid; 0 when more bytes are needed (*need, if
 * not NULL, is then the number needed so far: 16, or the whole header once
 * the fixed part is in); FP_EINVAL when the bytes cannot be a valid
 * header.  Bytes after the header are not looked at. */
int fp_proxy_v2_parse(const unsigned char *p, size_t n, fp_proxy_v2 *out, size_t *need);

/* 1 when p[0..n) starts like a PROXY header of either version (the v2
 * signature, or "PROXY " of the text version 1) as far as n goes (n > 0). */
int fp_proxy_looks_like(const unsigned char *p, size_t n);

#endif
