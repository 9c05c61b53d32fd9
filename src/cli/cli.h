/* cli.h — what the subcommands share: bilingual messages and flag parsing. */
#ifndef FAPIAO_CLI_H
#define FAPIAO_CLI_H

#include <stddef.h>

#include "fapiao/audit.h"

/* 1 when messages should be Chinese (the first set of LC_ALL, LC_MESSAGES,
 * LANG starts with zh). */
int cli_zh(void);
/* Prints "fapiao: <zh or en>" to stderr; both, zh then en, one line each,
 * when the language is unknown (neither zh* nor en*: unset, C, POSIX, other). */
void cli_error(const char *zh, const char *en);

/* "fapiao: <what, zh or en>: <detail>" — detail is a library message. */
void cli_fail(const char *zh, const char *en, const char *detail);

/* A flag table row: "--name" takes a value unless is_bool. */
typedef struct cli_flag {
    const char *name;
    int is_bool;
    const char **value; /* for value flags */
    int *set;           /* for bool flags */
} cli_flag;

/* Parses argv[1..] against flags; returns 0 or prints a usage error and
 * returns -1. */
int cli_parse(int argc, char **argv, const cli_flag *flags, const char *usage);

/* The audit signing key's path when it is kept outside the data directory:
 * the `--audit-key PATH` any command accepts (cli_parse takes it), else
 * $FAPIAO_AUDIT_KEY, else NULL (DIR/audit.key).  docs/audit.md. */
const char *cli_audit_key(void);

/* The knowledge base's directory: $FAPIAO_KB_DIR, else the source tree's kb/
 * when it exists, else the installed /usr/share/fapiao/kb (cmd_kb.c). */
const char *cli_kb_dir(void);

/* -1 (with a usage error printed) when a required flag's value is NULL. */
int cli_require(const char *value, const char *flag, const char *usage);

/* The subcommand argv[1] names, looked up in a table whose rows begin with
 * the name (a `const char *`; rows `stride` bytes apart, n of them): its
 * row's index, or -1 with *rc the command's exit status after what is
 * printed: --help / -h: the usage on stdout, 0; no subcommand: "缺少子命令" /
 * "a subcommand is required" with the list and the usage on stderr, 2; an
 * unknown one: "未知的 <cmd> 子命令 X（可用：…）" / "unknown <cmd> subcommand
 * X (one of: …)" and the usage on stderr, 2.  CLI_SUBCOMMAND passes a
 * table's size and stride. */
int cli_subcommand(int argc, char **argv, const char *cmd, const void *table, size_t n,
                   size_t stride, const char *usage, int *rc);
#define CLI_SUBCOMMAND(argc, argv, cmd, subs, usage, rc)                                           \
    cli_subcommand(argc, argv, cmd, subs, sizeof(subs) / sizeof((subs)[0]), sizeof((subs)[0]),     \
                   usage, rc)
/* *out from a flag's decimal value in 0..max (s NULL: *out 0); -1 after a
 * usage error naming the flag (not a number, or out of range). */
int cli_count(const char *s, const char *flag, long long max, long long *out, const char *usage);
/* The same for min..max, *out left as it is when s is NULL (its default):
 * every numeric flag goes through one of the two, so that "abc", "-1" and
 * an overflow all get the one message naming the flag (exit 2). */
int cli_number(const char *s, const char *flag, long long min, long long max, long long *out,
               const char *usage);

/* 0 when DIR/fapiao.db is there and usable (read and, if write, write);
 * else prints why and returns -1: "permission denied" naming the path that
 * refused us, or "not a data directory (no fapiao.db)" + hint. */
int cli_check_data_dir(const char *dir, int write, const char *hint_zh, const char *hint_en);
/* 1 (with the message printed) when DIR/fapiao.db is gone but a fail-stop
 * marker says it vanished while serving: restore, never re-init. */
int cli_database_lost(const char *dir);

/* The database setting, as serve resolves it (docs/ha.md): the
 * `--database URL|FILE` any command accepts (cli_parse takes it), else
 * $FAPIAO_DATABASE, else the config file's [serve] database key; NULL:
 * DIR/fapiao.db. */
const char *cli_database(void);
const char *cli_database_flag(void);   /* --database alone (NULL: not given) */
void cli_database_set(const char *db); /* a command's own --database (serve) */
/* 1 when that setting names a server database (postgresql://…). */
int cli_on_server_db(void);
/* The database to open for DIR into out: cli_database() or DIR/fapiao.db.
 * 0, or -1 when it does not fit. */
int cli_db_path(char *out, size_t cap, const char *dir);
/* -1 with "WHAT works on SQLite only; on PostgreSQL use INSTEAD" (zh + en)
 * when the database setting names a server database; else 0. */
int cli_refuse_server_db(const char *what, const char *instead_zh, const char *instead_en);

/* Opens the database (cli_db_path; a small read pool) through the store's
 * seam, or prints why not and returns NULL. */
/* The data directory's serve lock (fapiao.lock), held until exit: its fd,
 * or -1 (printed) when a fapiao serve holds it. */
int cli_lock_serve(const char *dir);
struct fp_store *cli_open_store(const char *dir);
/* The same, read-only (store_ro.c): for commands that only look. */
struct fp_store *cli_open_store_ro(const char *dir);
struct fp_store *cli_open_store_opts(const char *dir, int read_only);
/* The audit record of an admin action, actor "cli:<user>" (in actor, 80
 * bytes), for the store call that makes the change: the store writes it in
 * the change's own transaction (docs/audit.md).  target NULL: the store's
 * default (what was changed). */
fp_audit_rec cli_audit_rec(char actor[80], const char *action, const char *target,
                           const char *outcome);

/* After serve failed to load its certificate: when the certificate or the
 * key file is missing (a production `fapiao init` makes none), says what
 * to do (cmd_init.c). */
void cli_tls_missing_hint(const char *crt, const char *key);

int cmd_init(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_ranges(int argc, char **argv);
int cmd_kb(int argc, char **argv);
int cmd_upstream(int argc, char **argv);
int cmd_doctor(int argc, char **argv);
int cmd_alerts(int argc, char **argv);
int cmd_pdf(int argc, char **argv);
int cmd_render_worker(int argc, char **argv);
int cmd_outbox(int argc, char **argv);
int cmd_webhook(int argc, char **argv);
int cmd_audit(int argc, char **argv);
int cmd_keys(int argc, char **argv);
int cmd_users(int argc, char **argv);
int cmd_clock(int argc, char **argv);
int cmd_check(int argc, char **argv);
int cmd_backup(int argc, char **argv);
int cmd_sellers(int argc, char **argv);
int cmd_taxcodes(int argc, char **argv);
int cmd_migrate(int argc, char **argv);
int cmd_tls(int argc, char **argv);   /* cmd_tls.c */
int cmd_issue(int argc, char **argv); /* cmd_issue.c: libfapiao-client */
int cmd_get(int argc, char **argv);
int cmd_pdf_download(int argc, char **argv);
int cmd_spool(int argc, char **argv); /* cmd_spool.c: the offline spool */

#endif
