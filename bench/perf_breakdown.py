#!/usr/bin/env python3
"""perf_breakdown.py — the server's CPU during bench/issue.sh, by part.

    perf script -i PERF_DATA -F comm,tid,ip,sym,dso | bench/perf_breakdown.py

Record with call graphs that see through the libraries (frame pointers do
not): FAPIAO_BENCH_PERF=FILE FAPIAO_BENCH_PERF_OPTS="--call-graph dwarf,8192
-F 499" bench/issue.sh.  Each sample goes to the first part (in the order of
RULES) one of whose functions is on its stack; the thread decides between
the HTTP workers' parts and the other threads' (writer, checkpointer,
outbox workers).  Output: a markdown table, share of all samples.  The parts
are those of docs/performance.md.
"""
import collections
import re
import sys

# (part, functions (exact names) any of which on the stack claims the sample)
HTTP_RULES = [
    ("JSON parse + validation (and freeing the tree)", {"fp_invoice_parse_with", "fp_json_parse",
                                                        "fp_invoice_clear"}),
    ("canonical re-print + SHA-256 (request hash)", {"fp_invoice_canonical", "cJSON_PrintUnformatted",
                                                     "cJSON_PrintPreallocated", "fp_sha256"}),
    ("response document (render)", {"fp_invoice_render"}),
    ("auth: token check + client authorization", {"fp_token_verify", "fp_authorize", "fp_authorize_client"}),
    ("seller lookup (generation read + cache)", {"fp_server_seller"}),
    ("idempotency lookup (read connection)", {"fp_store_find_serial", "sq_store_find_serial"}),
    ("problem+json (429 etc.)", {"fp_problem"}),
    ("response headers + queueing (fp_respond)", {"fp_respond", "fp_respond_response", "replay"}),
    ("request setup / routing / limits (on_request)", {"req_new", "route_and_handle", "fp_ratelimit_check"}),
    ("hand-off to the writer + resume (locks, futex)", {"fp_store_submit", "on_committed", "fp_h_issue_resumed",
                                                       "fp_server_park", "MHD_resume_connection"}),
    ("request end (on_completed, metrics)", {"on_completed", "fp_req_count"}),
    ("TLS: send (record encrypt + sendmsg + TCP)", {"gnutls_record_send2", "gnutls_record_send"}),
    ("TLS: receive (recv + decrypt)", {"gnutls_record_recv", "guard_pull"}),
    ("TLS: handshake", {"gnutls_handshake"}),
    ("setsockopt (TCP_NODELAY: pushes the frames)", {"__GI___setsockopt", "setsockopt"}),
    ("epoll / eventfd (suspend, resume, wait)", {"MHD_suspend_connection", "epoll_ctl", "__GI_epoll_ctl", "epoll_wait", "__GI___read",
                                                 "__libc_read", "read"}),
    ("issue handler, other (times, copies, adaptive limit)", {"issue_submit", "prepare_blue", "issue_or_suspend",
                                                             "fp_issue_common", "fp_h_issue"}),
]
WRITER_RULES = [
    ("writer: outbox job rows", {"enqueue_jobs"}),
    ("writer: audit row + hash chain", {"fp_sq_audit_append"}),
    ("writer: invoice row, number, clock", {"issue_one", "flush_ranges", "fp_sq_clock_flush"}),
    ("writer: BEGIN / COMMIT (WAL pages written, fsync)", {"fp_sq_step_done"}),
    ("writer: batch bookkeeping (fail-stop checks, acks, wake-ups)", {"run_batch", "writer_main"}),
]
OTHER_ROOTS = [
    ("checkpointer (WAL -> database)", {"ckpt_main"}),
    ("outbox workers (claim, PDF files, complete)", {"worker_main", "run_job"}),
    ("health / audit / other threads", set()),
]


def samples(lines):
    cur = None
    for line in lines:
        if not line.strip():
            if cur:
                yield cur
            cur = None
            continue
        if not line[0].isspace():
            parts = line.split()
            cur = (parts[0], [])
            continue
        m = re.match(r"\s*[0-9a-f]+ (.*?) \((.*)\)$", line.rstrip())
        if m and cur is not None:
            name = m.group(1).replace(" (inlined)", "")
            if name == "[unknown]" and "libcjson" in m.group(2):
                name = "cjson_internal"  # cJSON's static functions have no symbols
            cur[1].append(name)
    if cur:
        yield cur


def classify(comm, frames):
    names = set(frames)
    if comm == "MHD-worker":
        # fp_invoice_canonical tail-calls cJSON's printer: its frame is gone
        if ("prepare_blue" in names and "cjson_internal" in names and
                not names & {"fp_invoice_parse_with", "fp_invoice_clear", "fp_invoice_render"}):
            names = names | {"fp_invoice_canonical"}
        for part, fns in HTTP_RULES:
            if names & fns:
                return "HTTP", part
        if any(f.startswith("sqlite3") for f in frames):
            return "HTTP", "SQLite reads, other"
        if any(f in ("malloc", "free", "__GI___libc_free", "__GI___libc_malloc", "_int_malloc",
                     "_int_free", "cfree@GLIBC_2.2.5", "__memset_avx2_unaligned_erms") for f in frames):
            return "HTTP", "libmicrohttpd: memory (connection pool reset, allocations)"
        return "HTTP", "libmicrohttpd + kernel, other (connection state machine, syscalls)"
    if "writer_main" in names:
        for part, fns in WRITER_RULES:
            if names & fns:
                return "writer", part
    for part, fns in OTHER_ROOTS:
        if not fns or names & fns:
            return "other threads", part
    return "other threads", "?"


def main():
    total = 0
    parts = collections.Counter()
    groups = collections.Counter()
    for comm, frames in samples(sys.stdin):
        group, part = classify(comm, frames)
        parts[(group, part)] += 1
        groups[group] += 1
        total += 1
    if not total:
        print("no samples")
        return 1
    print(f"{total} samples\n")
    print("| thread group | part | share of server CPU |")
    print("|---|---|---|")
    for group in ("HTTP", "writer", "other threads"):
        print(f"| **{group}** | (all) | **{100 * groups[group] / total:.1f} %** |")
        for (g, part), n in sorted(parts.items(), key=lambda kv: -kv[1]):
            if g == group:
                print(f"| {group} | {part} | {100 * n / total:.1f} % |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
