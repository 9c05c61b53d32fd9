/* rbac.c — roles, permissions and IP allowlists (rbac.h). */
#include "fapiao/rbac.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* bit i of a role mask is role_names[i] (rbac.h) */
static const char *const role_names[] = {"issuer", "reviewer", "auditor",
                                         "admin",  "operator", "operator-auditor"};
#define NROLES (int)(sizeof role_names / sizeof role_names[0])
_Static_assert(1u << (sizeof role_names / sizeof role_names[0]) == FP_ROLE_ALL + 1u,
               "a name for every role bit");

static const struct {
    const char *name;
    unsigned roles;
} perms[FP_PERM__COUNT] = {
    [FP_PERM_NONE] = {"none", FP_ROLE_ALL},
    [FP_PERM_INVOICES_ISSUE] = {"invoices:issue", FP_ROLE_ISSUER},
    [FP_PERM_INVOICES_READ] = {"invoices:read",
                               FP_ROLE_ISSUER | FP_ROLE_REVIEWER | FP_ROLE_AUDITOR},
    [FP_PERM_INVOICES_ACK] = {"invoices:ack", FP_ROLE_ISSUER},
    [FP_PERM_RED_FORMS_WRITE] = {"red_forms:write", FP_ROLE_REVIEWER},
    [FP_PERM_RED_FORMS_READ] = {"red_forms:read",
                                FP_ROLE_ISSUER | FP_ROLE_REVIEWER | FP_ROLE_AUDITOR},
    [FP_PERM_JOBS_READ] = {"jobs:read", FP_ROLE_AUDITOR | FP_ROLE_ADMIN | FP_ROLE_OPERATOR |
                                            FP_ROLE_OPERATOR_AUDITOR},
    [FP_PERM_JOBS_REDRIVE] = {"jobs:redrive", FP_ROLE_ADMIN | FP_ROLE_OPERATOR},
    [FP_PERM_AUDIT_READ] = {"audit:read", FP_ROLE_AUDITOR | FP_ROLE_OPERATOR_AUDITOR},
    [FP_PERM_FAULTS] = {"faults:inject", FP_ROLE_ADMIN | FP_ROLE_OPERATOR},
    [FP_PERM_STORE_CHECK] = {"store:check", FP_ROLE_OPERATOR},
    [FP_PERM_TLS_FAILURES] = {"tls_failures:read", FP_ROLE_OPERATOR | FP_ROLE_OPERATOR_AUDITOR},
    [FP_PERM_CREDENTIALS] = {"credentials:admin", FP_ROLE_ADMIN},
};

const char *fp_perm_name(fp_perm p)
{
    return (unsigned)p < FP_PERM__COUNT ? perms[p].name : "?";
}

unsigned fp_perm_roles(fp_perm p)
{
    return (unsigned)p < FP_PERM__COUNT ? perms[p].roles : 0;
}

int fp_roles_allow(unsigned roles, fp_perm p)
{
    return (roles & fp_perm_roles(p)) != 0;
}

int fp_roles_instance_wide(unsigned roles)
{
    return (roles & FP_ROLE_INSTANCE) != 0;
}

int fp_roles_parse(const char *s, unsigned *roles)
{
    unsigned r = 0;
    const char *p = s;
    if (!s || !*s)
        return -1;
    while (*p) {
        size_t n = strcspn(p, ",");
        int found = -1;
        for (int i = 0; i < NROLES; i++)
            if (strlen(role_names[i]) == n && strncmp(p, role_names[i], n) == 0)
                found = i;
        if (found < 0 || (r & (1u << found)))
            return -1;
        r |= 1u << found;
        p += n;
        if (*p == ',' && !*++p)
            return -1; /* trailing comma */
    }
    if ((r & FP_ROLE_INSTANCE) && (r & FP_ROLE_SELLER))
        return -1; /* a credential spans sellers or belongs to one, never both */
    *roles = r;
    return 0;
}

void fp_roles_format(unsigned roles, char *out, size_t cap)
{
    size_t len = 0;
    out[0] = 0;
    for (int i = 0; i < NROLES; i++)
        if (roles & (1u << i)) {
            int n = snprintf(out + len, cap - len, "%s%s", len ? "," : "", role_names[i]);
            if (n < 0 || (size_t)n >= cap - len)
                return;
            len += (size_t)n;
        }
}

static int parse_addr(const char *s, unsigned char addr[16], int *family)
{
    if (inet_pton(AF_INET, s, addr) == 1) {
        *family = 4;
        return 0;
    }
    if (inet_pton(AF_INET6, s, addr) == 1) {
        static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        if (memcmp(addr, mapped, 12) == 0) { /* ::ffff:a.b.c.d is v4 */
            memmove(addr, addr + 12, 4);
            *family = 4;
        } else {
            *family = 6;
        }
        return 0;
    }
    return -1;
}

int fp_allowlist_parse(const char *s, fp_allowlist *out, char *bad, size_t bad_cap)
{
    memset(out, 0, sizeof *out);
    const char *p = s;
    while (p && *p) {
        size_t n = strcspn(p, ",");
        char item[80];
        int ok = n > 0 && n < sizeof item && out->n < FP_ALLOWLIST_MAX;
        if (ok) {
            memcpy(item, p, n);
            item[n] = 0;
            char *slash = strchr(item, '/');
            long bits = -1;
            if (slash) {
                char *end;
                *slash = 0;
                bits = strtol(slash + 1, &end, 10);
                ok = slash[1] && !*end;
            }
            int fam = 0;
            ok = ok && parse_addr(item, out->e[out->n].addr, &fam) == 0;
            int max = fam == 4 ? 32 : 128;
            if (ok && bits < 0)
                bits = max;
            ok = ok && bits >= 0 && bits <= max;
            if (ok) {
                out->e[out->n].family = fam;
                out->e[out->n].bits = (int)bits;
                out->n++;
            }
        }
        if (!ok) {
            if (bad)
                snprintf(bad, bad_cap, "%.*s", (int)(n < 60 ? n : 60), p);
            return -1;
        }
        p += n;
        if (*p == ',')
            p++;
    }
    return 0;
}

int fp_allowlist_match(const fp_allowlist *a, const char *ip)
{
    unsigned char addr[16];
    int fam;
    if (!ip || parse_addr(ip, addr, &fam) < 0)
        return 0;
    for (int i = 0; i < a->n; i++) {
        if (a->e[i].family != fam)
            continue;
        int bits = a->e[i].bits, whole = bits / 8, rest = bits % 8;
        if (memcmp(addr, a->e[i].addr, (size_t)whole) != 0)
            continue;
        if (rest) {
            unsigned char mask = (unsigned char)(0xff << (8 - rest));
            if ((addr[whole] & mask) != (a->e[i].addr[whole] & mask))
                continue;
        }
        return 1;
    }
    return 0;
}
