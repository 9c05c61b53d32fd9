#!/usr/bin/env bash
# pg-harness.sh — a throw-away PostgreSQL 15 for one test run.
#
#   tests/pg/pg-harness.sh run -- COMMAND [ARGS...]
#
# Makes a fresh cluster in a temporary directory, starts it on a free
# loopback port (never 5432) with its socket in that directory, fsync and
# synchronous_commit on, creates the database `fapiao`, runs COMMAND with
# FAPIAO_PG_URL=postgresql://fapiao@127.0.0.1:PORT/fapiao in its
# environment, then stops the server and removes everything (trap), whatever
# COMMAND did.  Exits with COMMAND's status; 77 (ctest's "skipped") when the
# PostgreSQL 15 binaries are absent.
#
# PostgreSQL refuses to run as root, and CI runs as root: then the server
# runs as the `postgres` user that Debian's postgresql-15 package creates,
# or, when that user is missing, as the system user `fapiao-pgtest`, created
# once under a lock (so two runs at once never race on useradd).  Each run
# has its own directory, port and socket: two runs at once do not collide.
# Access is `trust` on 127.0.0.1 only: the cluster lives for one test.
set -euo pipefail

PGBIN=${FAPIAO_PGBIN:-/usr/lib/postgresql/15/bin}

die() { echo "pg-harness: $*" >&2; exit 1; }

[ "${1:-}" = run ] && [ "${2:-}" = -- ] && [ $# -ge 3 ] ||
    die "usage: $0 run -- COMMAND [ARGS...]"
shift 2

if [ ! -x "$PGBIN/initdb" ] || [ ! -x "$PGBIN/pg_ctl" ] || [ ! -x "$PGBIN/postgres" ]; then
    echo "pg-harness: SKIP: PostgreSQL 15 binaries not found in $PGBIN" \
         "(install postgresql-15: scripts/install-deps.sh --test)" >&2
    exit 77
fi

# Who runs the server.
as_user=()
if [ "$(id -u)" -eq 0 ]; then
    if id -u postgres >/dev/null 2>&1; then
        user=postgres
    else
        user=fapiao-pgtest
        if ! id -u "$user" >/dev/null 2>&1; then
            ( flock -w 30 9
              id -u "$user" >/dev/null 2>&1 ||
                  useradd --system --no-create-home --home-dir /nonexistent \
                          --shell /usr/sbin/nologin "$user"
            ) 9>/run/lock/fapiao-pgtest.lock || die "cannot create the user $user"
        fi
    fi
    as_user=(runuser -u "$user" --)
fi

dir=$(mktemp -d "${TMPDIR:-/tmp}/fapiao-pg.XXXXXX")
chmod 0755 "$dir"
[ ${#as_user[@]} -eq 0 ] || chown "$user" "$dir"
pgdata=$dir/data
started=0
cleanup() {
    if [ "$started" = 1 ]; then
        "${as_user[@]}" "$PGBIN/pg_ctl" -D "$pgdata" -m immediate -w -t 20 stop >/dev/null 2>&1 || true
    fi
    rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

"${as_user[@]}" "$PGBIN/initdb" -D "$pgdata" -U fapiao --auth=trust -E UTF8 --locale=C.UTF-8 \
    >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; die "initdb failed"; }

# A free port: bind port 0, read it, release it; a clash with someone who
# took it meanwhile makes the start fail, and the next attempt picks again.
free_port() {
    python3 -c 'import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

port=
for attempt in 1 2 3 4 5; do
    p=$(free_port)
    [ "$p" != 5432 ] || continue
    if "${as_user[@]}" "$PGBIN/pg_ctl" -D "$pgdata" -l "$dir/server.log" -w -t 30 \
        -o "-c listen_addresses=127.0.0.1 -p $p -c unix_socket_directories=$dir \
            -c fsync=on -c synchronous_commit=on -c max_connections=60 \
            -c shared_buffers=32MB" start >/dev/null 2>&1; then
        port=$p
        started=1
        break
    fi
    started=1 # a half-started server is stopped by cleanup
    "${as_user[@]}" "$PGBIN/pg_ctl" -D "$pgdata" -m immediate -w -t 20 stop >/dev/null 2>&1 || true
    started=0
    echo "pg-harness: start on port $p failed (attempt $attempt), retrying" >&2
done
[ -n "$port" ] || { cat "$dir/server.log" >&2 || true; die "postgres would not start"; }

"$PGBIN/createdb" -h 127.0.0.1 -p "$port" -U fapiao fapiao || die "createdb failed"

export FAPIAO_PG_URL="postgresql://fapiao@127.0.0.1:$port/fapiao"
echo "pg-harness: $FAPIAO_PG_URL (data $pgdata)" >&2
set +e
"$@"
status=$?
set -e
exit $status
