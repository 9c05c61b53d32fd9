/* config.h — the layers under `fapiao serve`'s flags (docs/configuration.md):
 * FAPIAO_<NAME> environment variables and the [serve] section of an INI
 * file read with libinih.  It knows no option itself: serve_opts.c passes
 * the names from its table, so an option is a key and a variable the
 * moment it is a row.  Problems are printed "fapiao: WHERE: zh / en", WHERE
 * being FILE:LINE or the variable's name. */
#ifndef FAPIAO_CLI_CONFIG_H
#define FAPIAO_CLI_CONFIG_H

#include <stddef.h>

#define CFG_DEFAULT_PATH "/etc/fapiao/fapiao.conf"

/* Where a setting's value came from, weakest first. */
typedef enum { CFG_DEFAULT = 0, CFG_FILE, CFG_ENV, CFG_FLAG } cfg_src;

/* One key's value in the file: raw NULL when the file does not set it. */
typedef struct cfg_val {
    const char *raw;
    int line;
} cfg_val;

/* What a read file holds: the text of its values (cfg_val.raw points in). */
typedef struct cfg_file cfg_file;

/* The file to read: explicit (--config) when not NULL, else $FAPIAO_CONFIG
 * when set and not empty, else CFG_DEFAULT_PATH.  *required is 1 for the
 * first two (a missing file is an error), 0 for the default (read only if
 * it exists). */
const char *cfg_path(const char *explicit_path, int *required);

/* Reads path's [section] against names[0..n) (NULL entries are skipped):
 * vals[i] is names[i]'s value.  An unknown section or key, a repeated key,
 * an empty value, a syntax error, an over-long line or an unreadable file
 * are each printed with FILE:LINE.  Returns the number of problems (0:
 * fine); *out (freed with cfg_file_free) owns the values either way.  A
 * missing file that is not required is no problem: *exists is then 0. */
int cfg_file_read(const char *path, int required, const char *section, const char *const *names,
                  size_t n, cfg_val *vals, int *exists, cfg_file **out);
void cfg_file_free(cfg_file *f);

/* "FAPIAO_" + name upper-cased, '-' → '_' (into out[cap]). */
void cfg_env_name(const char *name, char *out, size_t cap);

/* true/yes/on/1 → 1, false/no/off/0 → 0 (any case), else -1. */
int cfg_bool(const char *s);

/* "fapiao: WHERE: zh / en" on stderr (both languages: a config problem is
 * read in logs and journals, by whoever is on call). */
void cfg_error(const char *where, const char *zh, const char *en);

#endif
