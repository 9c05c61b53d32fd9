/* layers.h — the layers of src/ and the layer of every public header, in
 * one place.  test_layers.c holds the code to these rules; test_nofloat.c
 * takes the domain's headers from here.
 *
 * Each folder of src/ is one layer.  The public headers all live in
 * include/fapiao/ (so moving a .c file changes no #include line); the table
 * below says which layer each one is the face of.  A header missing from it,
 * or a row whose header is gone, fails the lint: a new header gets its layer
 * when it is written.  Headers inside a folder (src/server/internal.h, ...)
 * belong to that folder. */
#ifndef FP_TEST_LAYERS_H
#define FP_TEST_LAYERS_H

#include <stddef.h>

typedef struct layer_rule {
    const char *name;     /* the folder under src/ */
    const char *may_use;  /* the only layers it may include from, or NULL: any
                             but must_not (and never in a loop) */
    const char *must_not; /* layers it must not include from, or NULL */
    const char *why;
} layer_rule;

/* Lists are layer names between spaces: " lib core ". */
static const layer_rule layer_rules[] = {
    {"lib", " lib ", NULL,
     "generic machinery under everything (clocks, JSON, errors, metrics, breaker, rate limits): "
     "it knows nothing of invoices, stores or servers"},
    {"core", " core lib ", NULL,
     "the 数电票 domain (money, invoice, red forms, tax ids and codes): pure rules on the library "
     "only; the no-float lint covers it"},
    {"security", NULL, " core store audit auditor render outbox monitor server doctor cli ",
     "crypto, tokens, keys and roles: used by the layers above, uses only the library"},
    {"store", NULL, " auditor backup server monitor outbox render cli doctor ",
     "the store is used by the server, the outbox, the monitor and the CLI, never the other way "
     "round (a second backend plugs in under include/fapiao/store.h)"},
    {"audit", NULL, " store auditor server monitor outbox render cli doctor ",
     "the audit chain's format (hashing, signing, key files): the store writes it, so it is "
     "below the store"},
    {"auditor", NULL, " backup server monitor outbox render cli doctor ",
     "the auditor's tools over a stored log (verify, export, list, ship): above the store, below "
     "the CLI and the server"},
    {"render", NULL, " store server monitor outbox cli doctor ",
     "PDF and XML from a stored document: a renderer, no I/O of its own"},
    {"backup", NULL, " server monitor outbox render cli doctor ",
     "backup sets, restores and the archiver (docs/recovery.md): on the store and the "
     "auditor, below the server and the CLI"},
    {"outbox", NULL, " server monitor cli doctor ", "job threads on the store"},
    {"monitor", NULL, " server cli doctor ", "health checks on the store and the outbox"},
    {"kb", " kb lib ", NULL, "the finding articles: text and an index"},
    {"upstream", " upstream core lib ", NULL,
     "the tax platform's wire format (docs/upstream.md): stored documents out, answers in; "
     "no store, no server"},
    {"doctor", NULL, " store server monitor outbox cli audit auditor render ",
     "a client-side diagnosis: it talks to a server over the network, never links into one"},
    {"server", NULL, " cli doctor ", "the HTTP service over everything but the CLI"},
    {"client", " client lib doctor kb ", NULL,
     "libfapiao-client (include/fapiao-client/): an API client on the library's breaker and "
     "clock; its doctor hook runs the doctor, never the server or the store"},
    {"alerting", " alerting security lib ", NULL,
     "the built-in alert evaluator and notifier (docs/alerting.md): it reads the metrics text, "
     "never the store or the server"},
    {"console", NULL, " server cli doctor ",
     "the console's people side (docs/console.md): users' login, TOTP enrolment, sessions; on the "
     "store and security, below the server, which speaks HTTP for it"},
    {"cli", NULL, NULL, "the top: the fapiao command; nothing includes from it"},
};

/* include/fapiao/<name>.h -> layer */
static const struct {
    const char *header, *layer;
} header_layers[] = {
    {"adaptive.h", "lib"},       {"breaker.h", "lib"},
    {"clock.h", "lib"},          {"err.h", "lib"},
    {"json.h", "lib"},           {"metrics.h", "lib"},
    {"ratelimit.h", "lib"},      {"invoice.h", "core"},
    {"money.h", "core"},         {"red.h", "core"},
    {"taxcode.h", "core"},       {"taxid.h", "core"},
    {"invoice_doc.h", "core"},   {"auth.h", "security"},
    {"crypto.h", "security"},    {"keyfile.h", "security"},
    {"rbac.h", "security"},      {"seal.h", "security"},
    {"tlsgen.h", "security"},    {"store.h", "store"},
    {"jobs.h", "store"},         {"upload.h", "store"},
    {"store_backup.h", "store"}, {"backup.h", "backup"},
    {"audit.h", "audit"},        {"auditor.h", "auditor"},
    {"pdf.h", "render"},         {"xml.h", "render"},
    {"outbox.h", "outbox"},      {"webhook.h", "outbox"},
    {"health.h", "monitor"},     {"kb.h", "kb"},
    {"doctor.h", "doctor"},      {"findings.h", "doctor"},
    {"server.h", "server"},      {"proxy.h", "server"},
    {"tls.h", "server"},         {"upstream.h", "upstream"},
    {"alerting.h", "alerting"},  {"totp.h", "security"},
    {"password.h", "security"},  {"console.h", "console"},
    {"credit.h", "store"},       {"numkeeper.h", "outbox"},
    {"uploader.h", "outbox"},    {"keeper.h", "lib"},
    {"redkeeper.h", "outbox"},   {"topn.h", "monitor"},
    {"auditwatch.h", "monitor"},
};

/* Loops known today, each with the change that removes it.  The lint fails
 * on any other loop, and on a row here that no longer loops, so the merge
 * that removes one must delete its row and this list ends up empty.
 *
 *   "src/DIR/FILE.c"  a loop between files of one folder (file A calls a
 *                     function defined in file B and B one defined in A,
 *                     possibly through others) that goes through FILE.c
 *   "DIR1 DIR2"       a loop between folders made of exactly these */
static const struct {
    const char *loop, *removed_by;
} known_loops[] = {
    {NULL, NULL}, /* none left (issue 14 removed them); the list ends at the first NULL */
};

/* Public declarations known to sit in another layer's header, each with
 * the change that moves it ("include/fapiao/HEADER FUNCTION"); the same
 * rules as known_loops.  Ends with a NULL row. */
static const struct {
    const char *decl, *removed_by;
} known_misplaced[] = {
    {NULL, NULL}, /* none left; the list ends at the first NULL */
};

#endif
