/* test_layers.c — a lint run as a ctest: the layers hold (layers.h).
 *
 * Each folder of src/ is a layer; a file's #include "fapiao/x.h" is a use of
 * x.h's layer (layers.h maps every public header to one), and a header in
 * include/fapiao/ including another is a use too.  The lint fails when
 *   - a folder uses a layer its row in layers.h does not allow (core: only
 *     lib; lib: nothing but lib; store: not server, monitor, outbox, cli,
 *     render; ...);
 *   - the folders' uses form a loop;
 *   - the files of one folder form a loop: file A calls a function defined
 *     (non-static) in file B while B, perhaps through others, calls one
 *     defined in A.  Includes cannot show this (a folder's files share one
 *     internal.h), so this part reads definitions and calls;
 *   - a public header has no layer, or a row of the map names a header
 *     that is gone, or a folder of src/ has no row;
 * except the loops listed in layers.h's known_loops, each with the change
 * that removes it; a listed loop that no longer exists fails too, so the
 * list empties as those changes land.
 *
 *   test_layers          lint FP_SOURCE_DIR (must be clean), then prove the
 *                        checker bites on the planted tree in
 *                        tests/data/lint/layers (exactly the findings it
 *                        announces in want.txt)
 *   test_layers ROOT     lint the tree at ROOT (a checkout) only; exit 1 if
 *                        anything is found */
#include "check.h"
#include "layers.h"
#include "lint.h"

#ifndef FP_SOURCE_DIR
#error "FP_SOURCE_DIR must be defined by the build"
#endif

#define MAX_FILES   512
#define MAX_LAYERS  32
#define MAX_DEFS    8192
#define MAX_FINDING 256

typedef struct src_file {
    char rel[256];
    int layer;  /* index into layer names, -1: none */
    int folder; /* for files under src/: their folder's index; -1 for headers */
    int is_c;
    char *text;
    size_t len;
} src_file;

typedef struct def {
    const char *name; /* into a file's text (not NUL-terminated) */
    size_t n;
    int file;
} def;

typedef struct lint {
    const char *root;
    int strict; /* the real tree: every map row and known loop must exist */
    src_file f[MAX_FILES];
    int nf;
    char layer[MAX_LAYERS][32];
    int nl;
    /* folder graph: the first place each use was seen */
    char edge_site[MAX_LAYERS][MAX_LAYERS][200];
    def defs[MAX_DEFS];
    int ndefs;
    unsigned char *fedge; /* nf x nf, file -> file calls within a folder */
    int known_seen[sizeof known_loops / sizeof known_loops[0]];
    int misplaced_seen[sizeof known_misplaced / sizeof known_misplaced[0]];
    char findings[MAX_FINDING][400];
    int n;
    int quiet;
} lint;

__attribute__((format(printf, 2, 3))) static void finding(lint *l, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    lint_vfinding(l->findings[0], sizeof l->findings[0], MAX_FINDING, &l->n, l->quiet, "layers",
                  fmt, ap);
    va_end(ap);
}

static int layer_index(lint *l, const char *name, size_t n)
{
    for (int i = 0; i < l->nl; i++)
        if (strlen(l->layer[i]) == n && memcmp(l->layer[i], name, n) == 0)
            return i;
    if (l->nl == MAX_LAYERS || n >= sizeof l->layer[0])
        return -1;
    memcpy(l->layer[l->nl], name, n);
    l->layer[l->nl][n] = 0;
    return l->nl++;
}

static const layer_rule *rule_of(const char *name)
{
    for (size_t i = 0; i < NCASES(layer_rules); i++)
        if (strcmp(layer_rules[i].name, name) == 0)
            return &layer_rules[i];
    return NULL;
}

static const char *header_layer(const char *h)
{
    for (size_t i = 0; i < NCASES(header_layers); i++)
        if (strcmp(header_layers[i].header, h) == 0)
            return header_layers[i].layer;
    return NULL;
}

/* " a b " contains name */
static int in_list(const char *list, const char *name)
{
    char pat[64];
    snprintf(pat, sizeof pat, " %s ", name);
    return list && strstr(list, pat) != NULL;
}

static void add_file(void *arg, const char *path, const char *rel)
{
    lint *l = arg;
    if (l->nf == MAX_FILES) {
        finding(l, "more than %d files: raise MAX_FILES", MAX_FILES);
        return;
    }
    src_file *f = &l->f[l->nf];
    memset(f, 0, sizeof *f);
    snprintf(f->rel, sizeof f->rel, "%s", rel);
    f->layer = f->folder = -1;
    f->is_c = lint_has_suffix(rel, ".c");
    if (strncmp(rel, "src/", 4) == 0) {
        const char *slash = strchr(rel + 4, '/');
        if (!slash)
            return; /* a file directly in src/: no layer */
        f->folder = f->layer = layer_index(l, rel + 4, (size_t)(slash - (rel + 4)));
    } else if (strncmp(rel, "include/fapiao/", 15) == 0) {
        const char *ly = header_layer(rel + 15);
        if (!ly)
            finding(l,
                    "%s: a public header with no layer: add it to header_layers in "
                    "tests/unit/layers.h",
                    rel);
        else
            f->layer = layer_index(l, ly, strlen(ly));
    } else {
        return;
    }
    f->text = lint_read(path, &f->len);
    if (!f->text) {
        finding(l, "%s: cannot read", rel);
        return;
    }
    l->nf++;
}

/* ---- includes: the folder graph ---- */

typedef struct inc_ctx {
    lint *l;
    int file;
} inc_ctx;

static void on_include(void *arg, const lint_tok *t)
{
    inc_ctx *c = arg;
    lint *l = c->l;
    src_file *f = &l->f[c->file];
    if (t->kind != TK_DIRECTIVE || t->n < 8 || memcmp(t->p, "include", 7) != 0)
        return;
    const char *q = memchr(t->p, '"', t->n);
    if (!q)
        return; /* <system> headers */
    const char *e = memchr(q + 1, '"', t->n - (size_t)(q + 1 - t->p));
    if (!e || e - q - 1 < 8 || memcmp(q + 1, "fapiao/", 7) != 0)
        return; /* a folder's own header */
    char h[128];
    snprintf(h, sizeof h, "%.*s", (int)(e - q - 8), q + 8);
    const char *ly = header_layer(h);
    if (!ly) {
        finding(l, "%s:%d: includes fapiao/%s, which has no layer in tests/unit/layers.h", f->rel,
                t->line, h);
        return;
    }
    if (f->layer < 0)
        return;
    int to = layer_index(l, ly, strlen(ly));
    if (to < 0 || to == f->layer)
        return;
    const char *from = l->layer[f->layer];
    const layer_rule *r = rule_of(from);
    if (r && ((r->may_use && !in_list(r->may_use, ly)) || in_list(r->must_not, ly)))
        finding(l, "%s:%d: %s includes fapiao/%s (layer %s); %s %s [%s]: %s", f->rel, t->line, from,
                h, ly, from, r->may_use ? "may use only" : "must not use",
                r->may_use ? r->may_use : r->must_not, r->why);
    char *site = l->edge_site[f->layer][to], where[sizeof l->edge_site[0][0]];
    if (!site[0]) {
        snprintf(where, sizeof where, "%.120s:%d fapiao/%.60s", f->rel, t->line, h);
        memcpy(site, where, sizeof where);
    }
}

/* ---- definitions and calls: the file graph ---- */

static void on_def(void *arg, const lint_tok *t)
{
    inc_ctx *c = arg;
    lint *l = c->l;
    if (t->kind != TK_IDENT || t->def != 1 || t->def_static)
        return;
    if (l->ndefs == MAX_DEFS) {
        finding(l, "more than %d definitions: raise MAX_DEFS", MAX_DEFS);
        return;
    }
    /* t->p points into the tokenizer's buffer: keep a copy */
    char *name = strndup(t->p, t->n);
    if (!name)
        return;
    l->defs[l->ndefs++] = (def){name, t->n, c->file};
}

static int def_cmp(const void *a, const void *b)
{
    const def *x = a, *y = b;
    size_t n = x->n < y->n ? x->n : y->n;
    int r = memcmp(x->name, y->name, n);
    return r ? r : (x->n > y->n) - (x->n < y->n);
}

static void on_use(void *arg, const lint_tok *t)
{
    inc_ctx *c = arg;
    lint *l = c->l;
    if (t->kind != TK_IDENT || t->def || t->depth == 0)
        return; /* calls are made inside function bodies */
    def key = {t->p, t->n, -1};
    def *d = bsearch(&key, l->defs, (size_t)l->ndefs, sizeof *l->defs, def_cmp);
    if (!d)
        return;
    while (d > l->defs && def_cmp(d - 1, &key) == 0)
        d--;
    for (; d < l->defs + l->ndefs && def_cmp(d, &key) == 0; d++)
        if (d->file != c->file && l->f[d->file].folder == l->f[c->file].folder)
            l->fedge[c->file * l->nf + d->file] = 1;
}

/* A public header's functions are defined in its layer's folder: the map
 * cannot go stale when a file moves.  (Prototypes with no definition in
 * src/, e.g. for tests, are not checked.) */
static void on_proto(void *arg, const lint_tok *t)
{
    inc_ctx *c = arg;
    lint *l = c->l;
    const src_file *h = &l->f[c->file];
    if (t->kind != TK_IDENT || t->def != 2 || t->def_static)
        return;
    def key = {t->p, t->n, -1};
    def *d = bsearch(&key, l->defs, (size_t)l->ndefs, sizeof *l->defs, def_cmp);
    if (!d)
        return;
    while (d > l->defs && def_cmp(d - 1, &key) == 0)
        d--;
    for (; d < l->defs + l->ndefs && def_cmp(d, &key) == 0; d++) {
        const src_file *f = &l->f[d->file];
        if (f->folder == h->layer)
            continue;
        char what[300];
        snprintf(what, sizeof what, "%s %.*s", h->rel, (int)t->n, t->p);
        int ki = -1;
        for (size_t i = 0; known_misplaced[i].decl; i++)
            if (strcmp(known_misplaced[i].decl, what) == 0)
                ki = (int)i;
        if (ki >= 0) {
            l->misplaced_seen[ki] = 1;
            continue;
        }
        finding(l, "%s:%d: declares %.*s, defined in %s: the header's layer is %s (layers.h)",
                h->rel, t->line, (int)t->n, t->p, f->rel, l->layer[h->layer]);
    }
}

/* ---- strongly connected components (Tarjan), on an n x n matrix ---- */

typedef struct scc {
    const unsigned char *adj;
    int n, counter, sp;
    int idx[MAX_FILES], low[MAX_FILES], on[MAX_FILES], stack[MAX_FILES];
    int comp[MAX_FILES]; /* component id per node */
    int ncomp;
} scc;

static void scc_visit(scc *s, int v)
{
    s->idx[v] = s->low[v] = ++s->counter;
    s->stack[s->sp++] = v;
    s->on[v] = 1;
    for (int w = 0; w < s->n; w++) {
        if (!s->adj[v * s->n + w])
            continue;
        if (!s->idx[w]) {
            scc_visit(s, w);
            if (s->low[w] < s->low[v])
                s->low[v] = s->low[w];
        } else if (s->on[w] && s->idx[w] < s->low[v]) {
            s->low[v] = s->idx[w];
        }
    }
    if (s->low[v] == s->idx[v]) {
        int w;
        do {
            w = s->stack[--s->sp];
            s->on[w] = 0;
            s->comp[w] = s->ncomp;
        } while (w != v);
        s->ncomp++;
    }
}

static void scc_run(scc *s, const unsigned char *adj, int n)
{
    memset(s, 0, sizeof *s);
    s->adj = adj;
    s->n = n;
    for (int v = 0; v < n; v++)
        if (!s->idx[v])
            scc_visit(s, v);
}

static int known_index(const char *loop)
{
    for (size_t i = 0; known_loops[i].loop; i++)
        if (strcmp(known_loops[i].loop, loop) == 0)
            return (int)i;
    return -1;
}

static void folder_loops(lint *l)
{
    static unsigned char adj[MAX_LAYERS * MAX_LAYERS];
    memset(adj, 0, sizeof adj);
    for (int a = 0; a < l->nl; a++)
        for (int b = 0; b < l->nl; b++)
            adj[a * l->nl + b] = l->edge_site[a][b][0] != 0;
    static scc s;
    scc_run(&s, adj, l->nl);
    for (int c = 0; c < s.ncomp; c++) {
        /* the members, in alphabetical order */
        int m[MAX_LAYERS], k = 0;
        for (int v = 0; v < l->nl; v++)
            if (s.comp[v] == c)
                m[k++] = v;
        if (k < 2)
            continue;
        for (int i = 1; i < k; i++)
            for (int j = i; j > 0 && strcmp(l->layer[m[j - 1]], l->layer[m[j]]) > 0; j--) {
                int t = m[j];
                m[j] = m[j - 1];
                m[j - 1] = t;
            }
        char names[400] = "", sites[1200] = "";
        for (int i = 0; i < k; i++) {
            snprintf(names + strlen(names), sizeof names - strlen(names), "%s%s", i ? " " : "",
                     l->layer[m[i]]);
            for (int j = 0; j < k; j++)
                if (adj[m[i] * l->nl + m[j]])
                    snprintf(sites + strlen(sites), sizeof sites - strlen(sites), "; %s -> %s (%s)",
                             l->layer[m[i]], l->layer[m[j]], l->edge_site[m[i]][m[j]]);
        }
        int ki = known_index(names);
        if (ki >= 0) {
            l->known_seen[ki] = 1;
            if (!l->quiet)
                fprintf(stderr, "layers: known loop between folders %s (to be removed by %s)%s\n",
                        names, known_loops[ki].removed_by, sites);
        } else {
            finding(l, "loop between folders %s%s", names, sites);
        }
    }
}

static void file_loops(lint *l)
{
    static scc s;
    scc_run(&s, l->fedge, l->nf);
    for (int c = 0; c < s.ncomp; c++) {
        char names[2000] = "";
        int k = 0, ki = -1;
        for (int v = 0; v < l->nf; v++)
            if (s.comp[v] == c) {
                snprintf(names + strlen(names), sizeof names - strlen(names), "%s%s", k ? " " : "",
                         l->f[v].rel);
                int x = known_index(l->f[v].rel);
                if (x >= 0)
                    ki = x;
                k++;
            }
        if (k < 2)
            continue;
        if (ki >= 0) {
            l->known_seen[ki] = 1;
            if (!l->quiet)
                fprintf(stderr, "layers: known loop between files (to be removed by %s): %s\n",
                        known_loops[ki].removed_by, names);
        } else {
            finding(l, "loop between files (each calls a function the next defines): %s", names);
        }
    }
}

/* Lints the tree at root; returns the number of findings. */
static int lint_tree(lint *l, const char *root, int strict)
{
    for (int i = 0; i < l->nf; i++)
        free(l->f[i].text);
    for (int i = 0; i < l->ndefs; i++)
        free((char *)l->defs[i].name);
    free(l->fedge);
    int quiet = l->quiet;
    memset(l, 0, sizeof *l);
    l->quiet = quiet;
    l->root = root;
    l->strict = strict;
    for (size_t i = 0; i < NCASES(layer_rules); i++)
        layer_index(l, layer_rules[i].name, strlen(layer_rules[i].name));
    int nl_rules = l->nl;
    if (lint_walk(root, "src", add_file, l) < 0 || lint_walk(root, "include", add_file, l) < 0) {
        finding(l, "%s: cannot read src/ or include/", root);
        return l->n;
    }
    for (int i = nl_rules; i < l->nl; i++)
        finding(l, "src/%s: a folder with no row in layer_rules (tests/unit/layers.h)",
                l->layer[i]);
    if (strict) {
        char path[1200];
        for (size_t i = 0; i < NCASES(header_layers); i++) {
            snprintf(path, sizeof path, "%s/include/fapiao/%s", root, header_layers[i].header);
            struct stat st;
            if (stat(path, &st) != 0)
                finding(l,
                        "include/fapiao/%s is in header_layers (tests/unit/layers.h) but "
                        "does not exist: remove its row",
                        header_layers[i].header);
        }
    }
    /* includes, then definitions, then calls */
    for (int i = 0; i < l->nf; i++) {
        inc_ctx c = {l, i};
        lint_tokens(l->f[i].text, l->f[i].len, on_include, &c);
    }
    for (int i = 0; i < l->nf; i++)
        if (l->f[i].is_c && l->f[i].folder >= 0) {
            inc_ctx c = {l, i};
            lint_tokens(l->f[i].text, l->f[i].len, on_def, &c);
        }
    qsort(l->defs, (size_t)l->ndefs, sizeof *l->defs, def_cmp);
    l->fedge = calloc((size_t)l->nf * (size_t)l->nf, 1);
    if (!l->fedge) {
        finding(l, "out of memory");
        return l->n;
    }
    for (int i = 0; i < l->nf; i++)
        if (l->f[i].is_c && l->f[i].folder >= 0) {
            inc_ctx c = {l, i};
            lint_tokens(l->f[i].text, l->f[i].len, on_use, &c);
        }
    for (int i = 0; i < l->nf; i++)
        if (!l->f[i].is_c && l->f[i].folder < 0 && l->f[i].layer >= 0) {
            inc_ctx c = {l, i};
            lint_tokens(l->f[i].text, l->f[i].len, on_proto, &c);
        }
    folder_loops(l);
    file_loops(l);
    if (strict)
        for (size_t i = 0; known_loops[i].loop; i++)
            if (!l->known_seen[i])
                finding(l,
                        "known loop \"%s\" no longer exists: delete its row from known_loops "
                        "(tests/unit/layers.h)",
                        known_loops[i].loop);
    if (strict)
        for (size_t i = 0; known_misplaced[i].decl; i++)
            if (!l->misplaced_seen[i])
                finding(l,
                        "known misplaced declaration \"%s\" is gone: delete its row from "
                        "known_misplaced (tests/unit/layers.h)",
                        known_misplaced[i].decl);
    return l->n;
}

/* The planted tree announces its findings in want.txt, one per line: a
 * substring of the finding's message. */
static void check_fixture(lint *l)
{
    static const char dir[] = FP_SOURCE_DIR "/tests/data/lint/layers";
    l->quiet = 1;
    int n = lint_tree(l, dir, 0);
    l->quiet = 0;
    lint_check_want(FP_SOURCE_DIR "/tests/data/lint/layers/want.txt", l->findings[0],
                    sizeof l->findings[0], n, MAX_FINDING);
    printf("%s: %d files, %d findings (expected)\n", dir, l->nf, n);
}

typedef struct tok_count {
    int directives, defs, statics, protos;
    char names[128];
} tok_count;

static void count_tok(void *arg, const lint_tok *t)
{
    tok_count *g = arg;
    if (t->kind == TK_DIRECTIVE)
        g->directives++;
    if (t->kind == TK_IDENT && t->def == 2)
        g->protos++;
    if (t->kind == TK_IDENT && t->def == 1) {
        g->defs++;
        g->statics += t->def_static;
        snprintf(g->names + strlen(g->names), sizeof g->names - strlen(g->names), " %.*s",
                 (int)t->n, t->p);
    }
}

/* What the lint reads of a file: directives and definitions outside
 * comments and strings; prototypes and initialisers are no definitions. */
static void test_tokenizer(void)
{
    static const char text[] = "#include \"fapiao/a.h\"\n"
                               "/* #include \"fapiao/b.h\" */\n"
                               "static int hidden(void) { return 0; }\n"
                               "const char *s = \"#include \\\"fapiao/c.h\\\"\";\n"
                               "__attribute__((unused)) int fp_shown(int x)\n{\n"
                               "    while (x) x--;\n    return hidden();\n}\n"
                               "int fp_proto(void);\n"
                               "static const int t[] = {1, 2};\n"
                               "struct s { int (*f)(void); };\n";
    check_ctx("tokenizer");
    tok_count got = {0};
    lint_tokens(text, sizeof text - 1, count_tok, &got);
    CHECK_EQ_INT(got.directives, 1);
    CHECK_EQ_INT(got.defs, 2);
    CHECK_EQ_INT(got.statics, 1);
    CHECK_EQ_INT(got.protos, 1); /* fp_proto; not the member f */
    CHECK_MSG(strcmp(got.names, " hidden fp_shown") == 0, "definitions: \"%s\"", got.names);
}

int main(int argc, char **argv)
{
    static lint l;
    if (argc > 1) {
        int n = lint_tree(&l, argv[1], 1);
        printf("%s: %d files, %d findings\n", argv[1], l.nf, n);
        return n == 0 ? 0 : 1;
    }
    test_tokenizer();
    check_ctx("the tree");
    int n = lint_tree(&l, FP_SOURCE_DIR, 1);
    CHECK_EQ_INT(n, 0);
    CHECK_MSG(l.nf > 100, "only %d files read", l.nf);
    printf("%s: %d files, %d findings\n", FP_SOURCE_DIR, l.nf, n);
    check_ctx("the planted tree");
    check_fixture(&l);
    check_ctx("%s", "");
    return check_summary();
}
