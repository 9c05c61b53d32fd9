/* test_keyfile.c — the permission rule for secret files (keyfile.h):
 * PostgreSQL's rule, table-driven over owner, effective uid and mode, and
 * fp_keyfile_read on real files (the bits, which root's reads ignore, are
 * what is judged). */
#include "check.h"
#include "fapiao/keyfile.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void test_rule(void)
{
    const struct {
        unsigned uid, euid, mode;
        int dir, rc;
        const char *msg;
    } cases[] = {
        /* the service user's own files: owner only */
        {1000, 1000, 0600, 0, 0, NULL},
        {1000, 1000, 0400, 0, 0, NULL},
        {1000, 1000, 0640, 0, FP_EINVAL,
         "has mode 0640, readable by group or others; fix: chmod 600"},
        {1000, 1000, 0604, 0, FP_EINVAL, "has mode 0604"},
        {1000, 1000, 0660, 0, FP_EINVAL, "fix: chmod 600"},
        {1000, 1000, 0700, 0, 0, NULL},
        /* root's files: its group may read (root:ssl-cert 0640) */
        {0, 1000, 0640, 0, 0, NULL},
        {0, 1000, 0440, 0, 0, NULL},
        {0, 1000, 0600, 0, 0, NULL},
        {0, 1000, 0660, 0, FP_EINVAL, "writable by its group; fix: chmod 640"},
        {0, 1000, 0644, 0, FP_EINVAL, "has mode 0644"},
        {0, 1000, 0604, 0, FP_EINVAL, "fix: chmod 640"},
        /* a server running as root: its own files are root's */
        {0, 0, 0640, 0, 0, NULL},
        {0, 0, 0644, 0, FP_EINVAL, "fix: chmod 640"},
        /* somebody else's file */
        {1001, 1000, 0600, 0, FP_EINVAL, "owned by uid 1001, neither the service user (uid 1000)"},
        {1001, 0, 0600, 0, FP_EINVAL, "fix: chown 0"},
        /* not a file */
        {1000, 1000, 0700, 1, FP_EINVAL, "not a regular file"},
    };
    for (size_t i = 0; i < NCASES(cases); i++) {
        check_ctx("rule[%zu] uid %u euid %u mode %04o", i, cases[i].uid, cases[i].euid,
                  cases[i].mode);
        struct stat st;
        memset(&st, 0, sizeof st);
        st.st_uid = cases[i].uid;
        st.st_gid = 103;
        st.st_mode = (cases[i].dir ? S_IFDIR : S_IFREG) | cases[i].mode;
        fp_err err = {0};
        CHECK_EQ_INT(fp_keyfile_check_stat(&st, cases[i].euid, "/etc/x/server.key", "私钥",
                                           "private key", &err),
                     cases[i].rc);
        if (cases[i].msg) {
            CHECK_CONTAINS(err.msg, cases[i].msg);
            CHECK_CONTAINS(err.msg, "/etc/x/server.key");
            CHECK_CONTAINS(err.msg, "私钥");
        }
    }
}

static void test_read(void)
{
    char dir[] = "/tmp/fp_test_keyfile_XXXXXX";
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        exit(2);
    }
    char path[128];
    snprintf(path, sizeof path, "%s/token.key", dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
    CHECK(fd >= 0 && write(fd, "secret\n", 7) == 7);
    close(fd);
    unsigned char *data = NULL;
    size_t n = 0;
    fp_err err = {0};

    check_ctx("read 0600");
    CHECK_EQ_INT(fp_keyfile_read(path, "令牌签名密钥", "token signing key", 64, &data, &n, &err),
                 0);
    CHECK_EQ_INT(n, 7);
    CHECK(data && memcmp(data, "secret\n", 8) == 0); /* NUL-terminated */
    fp_keyfile_wipe(data, n);
    CHECK_EQ_INT(fp_keyfile_check_path(path, "令牌签名密钥", "token signing key", &err), 0);

    check_ctx("read 0644: refused by its bits, also as root");
    chmod(path, 0644);
    CHECK_EQ_INT(fp_keyfile_read(path, "令牌签名密钥", "token signing key", 64, &data, &n, &err),
                 FP_EINVAL);
    CHECK(data == NULL);
    CHECK_CONTAINS(err.msg, "token signing key has mode 0644");
    CHECK_CONTAINS(err.msg, path);
    CHECK_EQ_INT(fp_keyfile_check_path(path, "令牌签名密钥", "token signing key", &err), FP_EINVAL);

    check_ctx("too large, empty, missing");
    chmod(path, 0600);
    CHECK_EQ_INT(fp_keyfile_read(path, "x", "x", 6, &data, &n, &err), FP_EINVAL);
    CHECK_CONTAINS(err.msg, "larger than 6 bytes");
    CHECK_EQ_INT(truncate(path, 0), 0);
    CHECK_EQ_INT(fp_keyfile_read(path, "x", "x", 6, &data, &n, &err), FP_EINVAL);
    CHECK_CONTAINS(err.msg, "is empty");
    unlink(path);
    CHECK_EQ_INT(fp_keyfile_read(path, "x", "key", 6, &data, &n, &err), FP_EIO);
    CHECK_CONTAINS(err.msg, "cannot read the key");
    CHECK_EQ_INT(fp_keyfile_check_path(path, "x", "key", &err), FP_ENOTFOUND);
    fp_keyfile_wipe(NULL, 0);
    rmdir(dir);
}

int main(void)
{
    test_rule();
    test_read();
    return check_summary();
}
