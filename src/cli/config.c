/* config.c — the config file and environment layers of config.h.
 *
 * The file is read with Debian's libinih through ini_parse_stream and a
 * reader of our own: the library is built without INI_HANDLER_LINENO, so
 * its handler is not told the line; the reader, called once per line, is.
 * The reader also sees what the handler never does: a section with no keys
 * (so an unknown empty section is still reported), a line longer than the
 * library's buffer (INI_MAX_LINE; it would otherwise be split in two), and
 * the file's total size (at most CFG_MAX_BYTES: no unbounded read). */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define CFG_MAX_BYTES (1 << 20)
#define CFG_MAX_SHOWN 50 /* problems printed; the count goes on */

struct cfg_file {
    char **text; /* n strdup'd values (NULL: not set) */
    size_t n;
};

/* The state of one read, shared by the reader and the handler. */
typedef struct rd {
    FILE *fp;
    const char *path, *section;
    const char *const *names;
    size_t n;
    cfg_val *vals;
    cfg_file *f;
    int line;     /* the line last read (1-based) */
    long bytes;   /* read so far */
    int problems; /* printed (or counted past CFG_MAX_SHOWN) */
    int stopped;  /* too large: the rest is not read */
} rd;

void cfg_error(const char *where, const char *zh, const char *en)
{
    fprintf(stderr, "fapiao: %s: %s / %s\n", where, zh, en);
}

static void problem(rd *r, int line, const char *zh, const char *en)
{
    if (r->problems++ < CFG_MAX_SHOWN) {
        char where[4200];
        snprintf(where, sizeof where, "%s:%d", r->path, line);
        cfg_error(where, zh, en);
    }
}

const char *cfg_path(const char *explicit_path, int *required)
{
    *required = 1;
    if (explicit_path)
        return explicit_path;
    const char *e = getenv("FAPIAO_CONFIG");
    if (e && *e)
        return e;
    *required = 0;
    return CFG_DEFAULT_PATH;
}

void cfg_env_name(const char *name, char *out, size_t cap)
{
    size_t i = 0;
    int w = snprintf(out, cap, "FAPIAO_");
    if (w < 0 || (size_t)w >= cap)
        return;
    for (i = 0; name[i] && (size_t)w + i + 1 < cap; i++)
        out[w + i] = name[i] == '-' ? '_' : (char)toupper((unsigned char)name[i]);
    out[w + i] = 0;
}

int cfg_bool(const char *s)
{
    static const char *const yes[] = {"true", "yes", "on", "1"}, *const no[] = {"false", "no",
                                                                                "off", "0"};
    for (size_t i = 0; i < 4; i++) {
        if (!strcasecmp(s, yes[i]))
            return 1;
        if (!strcasecmp(s, no[i]))
            return 0;
    }
    return -1;
}

/* A section header's name when line is one ("[name]"), into out. */
static int section_of(const char *line, char *out, size_t cap)
{
    if (!strncmp(line, "\xEF\xBB\xBF", 3)) /* a UTF-8 BOM (first line) */
        line += 3;
    while (*line == ' ' || *line == '\t')
        line++;
    if (*line != '[')
        return 0;
    const char *end = strchr(line, ']');
    if (!end)
        return 0; /* inih reports it as a syntax error */
    line++;
    while (line < end && isspace((unsigned char)*line))
        line++;
    while (end > line && isspace((unsigned char)end[-1]))
        end--;
    snprintf(out, cap, "%.*s", (int)(end - line), line);
    return 1;
}

/* The sections a config file may have: each command reads its own and
 * passes over the others ([upstream]: docs/upstream.md). */
static int known_section(const char *name)
{
    return !strcmp(name, "serve") || !strcmp(name, "upstream");
}

/* ini_reader: one line per call, counted; see the top of the file. */
static char *reader(char *str, int num, void *stream)
{
    rd *r = stream;
    if (r->stopped || !fgets(str, num, r->fp))
        return NULL;
    r->line++;
    size_t len = strlen(str);
    r->bytes += (long)len;
    if (len && str[len - 1] != '\n' && !feof(r->fp)) { /* longer than the buffer */
        int c;
        while ((c = getc(r->fp)) != EOF && c != '\n')
            if (++r->bytes > CFG_MAX_BYTES)
                break;
        char zh[96], en[96];
        snprintf(zh, sizeof zh, "行过长（最多 %d 个字符）", num - 2);
        snprintf(en, sizeof en, "line too long (at most %d characters)", num - 2);
        problem(r, r->line, zh, en);
        snprintf(str, (size_t)num, ";\n"); /* a comment for inih */
    }
    if (r->bytes > CFG_MAX_BYTES) {
        problem(r, r->line, "文件过大（最多 1 MiB）", "file too large (at most 1 MiB)");
        r->stopped = 1;
        return NULL;
    }
    char name[200];
    if (section_of(str, name, sizeof name) && !known_section(name)) {
        char zh[300], en[300];
        snprintf(zh, sizeof zh, "未知的节 [%s]（只有 [serve] 与 [upstream]）", name);
        snprintf(en, sizeof en, "unknown section [%s] (there are only [serve] and [upstream])",
                 name);
        problem(r, r->line, zh, en);
    }
    return str;
}

/* ini_handler: one key = value of the current line.  Always 1: problems
 * are ours to report (with their reason), so inih's return value is left
 * for its own syntax errors. */
static int handler(void *user, const char *section, const char *name, const char *value)
{
    rd *r = user;
    char zh[400], en[400];
    if (strcmp(section, r->section) != 0) {
        if (!*section) {
            snprintf(zh, sizeof zh, "键 %s 须位于 [%s] 节内", name, r->section);
            snprintf(en, sizeof en, "key %s is outside the [%s] section", name, r->section);
            problem(r, r->line, zh, en);
        }
        return 1; /* an unknown section was reported at its header */
    }
    size_t i = 0;
    while (i < r->n && !(r->names[i] && !strcmp(r->names[i], name)))
        i++;
    if (i == r->n) {
        const char *bare = name;
        while (*bare == '-')
            bare++;
        size_t j = 0;
        while (bare != name && j < r->n && !(r->names[j] && !strcmp(r->names[j], bare)))
            j++;
        if (bare != name && j < r->n) {
            snprintf(zh, sizeof zh, "未知的键 %s（键名不带前导横线：%s）", name, bare);
            snprintf(en, sizeof en, "unknown key %s (keys have no leading dashes: %s)", name, bare);
        } else {
            snprintf(zh, sizeof zh, "未知的键 %s（见 fapiao %s --help）", name, r->section);
            snprintf(en, sizeof en, "unknown key %s (see fapiao %s --help)", name, r->section);
        }
        problem(r, r->line, zh, en);
        return 1;
    }
    if (r->vals[i].raw) {
        snprintf(zh, sizeof zh, "键 %s 重复（第 %d 行已设置）", name, r->vals[i].line);
        snprintf(en, sizeof en, "key %s repeated (already set on line %d)", name, r->vals[i].line);
        problem(r, r->line, zh, en);
        return 1;
    }
    if (!*value) {
        snprintf(zh, sizeof zh, "键 %s 没有值", name);
        snprintf(en, sizeof en, "key %s has no value", name);
        problem(r, r->line, zh, en);
        return 1;
    }
    if (!(r->f->text[i] = strdup(value))) {
        problem(r, r->line, "内存不足", "out of memory");
        return 1;
    }
    r->vals[i].raw = r->f->text[i];
    r->vals[i].line = r->line;
    return 1;
}

int cfg_file_read(const char *path, int required, const char *section, const char *const *names,
                  size_t n, cfg_val *vals, int *exists, cfg_file **out)
{
    rd r = {.path = path, .section = section, .names = names, .n = n, .vals = vals};
    memset(vals, 0, n * sizeof *vals);
    *exists = 0;
    *out = NULL;
    cfg_file *f = calloc(1, sizeof *f);
    if (!f || !(f->text = calloc(n ? n : 1, sizeof *f->text))) {
        free(f);
        cfg_error(path, "内存不足", "out of memory");
        return 1;
    }
    f->n = n;
    *out = f;
    r.f = f;
    if (!(r.fp = fopen(path, "re"))) {
        if (errno == ENOENT && !required)
            return 0;
        char zh[300], en[300];
        snprintf(zh, sizeof zh, "无法读取配置文件：%s", strerror(errno));
        snprintf(en, sizeof en, "cannot read the config file: %s", strerror(errno));
        cfg_error(path, zh, en);
        return 1;
    }
    *exists = 1;
    int rc = ini_parse_stream(reader, &r, handler, &r);
    if (ferror(r.fp) && !r.problems) {
        char zh[300], en[300];
        snprintf(zh, sizeof zh, "读取配置文件出错：%s", strerror(errno));
        snprintf(en, sizeof en, "error reading the config file: %s", strerror(errno));
        cfg_error(path, zh, en);
        r.problems++;
    }
    fclose(r.fp);
    if (rc == -2) {
        cfg_error(path, "内存不足", "out of memory");
        r.problems++;
    } else if (rc > 0) { /* the first line inih could not parse */
        problem(&r, rc, "语法错误（应为 key = value 或 [serve]）",
                "syntax error (expected key = value or [serve])");
    }
    return r.problems;
}

void cfg_file_free(cfg_file *f)
{
    if (!f)
        return;
    for (size_t i = 0; i < f->n; i++)
        free(f->text[i]);
    free(f->text);
    free(f);
}
