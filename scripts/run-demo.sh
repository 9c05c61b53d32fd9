#!/usr/bin/env bash
# `make run`: initialise a demo data directory on first use, start
# `fapiao serve` on it, and print a ready-to-paste curl that issues an
# invoice.  Ctrl-C stops the server (queued invoices are committed first).
set -euo pipefail
bin=${1:-build/fapiao}
data=${2:-var/demo}
listen=${3:-127.0.0.1:8443}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
mkdir -p "$(dirname "$data")"
data=$(cd "$(dirname "$data")" && pwd)/$(basename "$data")
cred="$data/demo-credential.json"
url="https://$listen"

if [ ! -f "$data/fapiao.db" ]; then
  out=$("$bin" init --data-dir "$data" --demo --json --base-url "$url")
  id=$(printf '%s' "$out" | grep -o '"client_id":"[^"]*"' | cut -d'"' -f4)
  secret=$(printf '%s' "$out" | grep -o '"client_secret":"[^"]*"' | cut -d'"' -f4)
  # The demo keeps its credential beside the data so `make run` can print a
  # working command every time; real installs keep secrets elsewhere.
  ( umask 077; printf '{"client_id":"%s","client_secret":"%s"}\n' "$id" "$secret" > "$cred" )
  echo "fapiao: 已创建演示数据目录 / created demo data directory $data"
fi

"$bin" serve --data-dir "$data" --listen "$listen" &
pid=$!
trap 'kill -TERM $pid 2>/dev/null; wait $pid 2>/dev/null' INT TERM EXIT

for _ in $(seq 1 100); do
  if curl -sf --cacert "$data/tls/server.crt" "$url/healthz" >/dev/null 2>&1; then break; fi
  if ! kill -0 $pid 2>/dev/null; then
    echo "fapiao: 服务未能启动（见上方错误） / the server did not start (see the error above)" >&2
    trap - EXIT; exit 1
  fi
  sleep 0.1
done

cat <<MSG

fapiao 已启动 / is running at $url   (Ctrl-C 停止 / to stop)
数据目录 / data directory: $data

开具第一张发票（复制粘贴到另一个终端）/ Issue a first invoice (paste into another terminal):

TOKEN=\$(curl -s --cacert $data/tls/server.crt -H 'Content-Type: application/json' -d @$cred $url/v1/token | sed -n 's/.*"access_token":"\([^"]*\)".*/\1/p')
curl -s --cacert $data/tls/server.crt $url/v1/invoices -H "Authorization: Bearer \$TOKEN" -H "Idempotency-Key: demo-\$(date +%s)" -H 'Content-Type: application/json' -d @$root/examples/invoice.json

MSG
wait $pid
