/* rbac.h — roles, permissions and network allowlists.
 *
 * One role model (docs/security.md has the matrix).  A client holds one or
 * more roles of ONE kind:
 *
 * seller-scoped roles: everything they see and do is their own seller's
 *   issuer    issues invoices, reads its seller's invoices, confirms receipt
 *   reviewer  handles red-invoice forms (open, confirm, reject, withdraw) and
 *             reads invoices (issuing the red invoice itself needs issuer)
 *   auditor   reads everything of its seller: invoices, forms, outbox jobs,
 *             the seller's audit records
 *   admin     operates its seller's side: outbox re-drive, fault injection
 *             (tests)
 * instance-wide roles: span every seller, never touch invoices
 *   operator          runs the instance: every seller's outbox jobs
 *                     (read, re-drive), the store check, fault injection
 *   operator-auditor  reads every seller's outbox jobs and the whole audit
 *                     log, the instance-wide records included
 * Credentials and ranges are managed with the CLI (`fapiao keys`, `fapiao
 * ranges`) by whoever runs the server.
 * Every route of the server names the one permission it needs (the routing
 * table in src/server/server.c); a request without it gets 403 FORBIDDEN
 * naming the permission. */
#ifndef FAPIAO_RBAC_H
#define FAPIAO_RBAC_H

#include <stddef.h>
#include <stdint.h>

enum {
    FP_ROLE_ISSUER = 1 << 0,
    FP_ROLE_REVIEWER = 1 << 1,
    FP_ROLE_AUDITOR = 1 << 2,
    FP_ROLE_ADMIN = 1 << 3,
    FP_ROLE_OPERATOR = 1 << 4,
    FP_ROLE_OPERATOR_AUDITOR = 1 << 5,
    FP_ROLE_SELLER = 0xf,    /* the seller-scoped roles */
    FP_ROLE_INSTANCE = 0x30, /* the instance-wide roles */
    FP_ROLE_ALL = 0x3f
};

typedef enum fp_perm {
    FP_PERM_NONE = 0,        /* public or any authenticated client */
    FP_PERM_INVOICES_ISSUE,  /* invoices:issue */
    FP_PERM_INVOICES_READ,   /* invoices:read */
    FP_PERM_INVOICES_ACK,    /* invoices:ack */
    FP_PERM_RED_FORMS_WRITE, /* red_forms:write */
    FP_PERM_RED_FORMS_READ,  /* red_forms:read */
    FP_PERM_JOBS_READ,       /* jobs:read */
    FP_PERM_JOBS_REDRIVE,    /* jobs:redrive */
    FP_PERM_AUDIT_READ,      /* audit:read */
    FP_PERM_FAULTS,          /* faults:inject */
    FP_PERM_STORE_CHECK,     /* store:check */
    FP_PERM_TLS_FAILURES,    /* tls_failures:read */
    FP_PERM_CREDENTIALS,     /* credentials:admin (the seller's API credentials) */
    FP_PERM__COUNT
} fp_perm;

const char *fp_perm_name(fp_perm p);
/* Bitmask of roles that hold p. */
unsigned fp_perm_roles(fp_perm p);
int fp_roles_allow(unsigned roles, fp_perm p);

/* 1 when roles span every seller (operator, operator-auditor). */
int fp_roles_instance_wide(unsigned roles);

/* "issuer,reviewer" <-> bitmask.  Parse returns -1 for an unknown or empty
 * role name, an empty list, duplicates, or seller-scoped and instance-wide
 * roles mixed. */
int fp_roles_parse(const char *s, unsigned *roles);
void fp_roles_format(unsigned roles, char *out, size_t cap);

/* An IP allowlist: comma-separated CIDRs ("10.0.0.0/8,2001:db8::/32,
 * 192.168.1.7"; a bare address is /32 or /128).  Parse returns 0 or -1 with
 * the bad entry copied to bad (may be NULL). */
#define FP_ALLOWLIST_MAX 32
typedef struct fp_allowlist {
    int n;
    struct {
        int family; /* 4 or 6 */
        int bits;
        unsigned char addr[16];
    } e[FP_ALLOWLIST_MAX];
} fp_allowlist;
int fp_allowlist_parse(const char *s, fp_allowlist *out, char *bad, size_t bad_cap);
/* 1 when ip (text, v4 or v6; a v4-mapped v6 counts as v4) is in the list. */
int fp_allowlist_match(const fp_allowlist *a, const char *ip);

#endif
