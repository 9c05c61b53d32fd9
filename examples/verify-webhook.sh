#!/bin/sh
# verify-webhook.sh — check a fapiao webhook delivery's signature with openssl.
#
#   verify-webhook.sh SECRET TIMESTAMP NONCE SIGNATURE BODY_FILE
#
# SECRET is the whsec_… value `fapiao webhook set` printed; TIMESTAMP, NONCE
# and SIGNATURE are the X-Fapiao-Timestamp, X-Fapiao-Nonce and
# X-Fapiao-Signature headers; BODY_FILE holds the raw request body, byte for
# byte as received.  Prints "ok" and exits 0 when the signature is right and
# the timestamp is within 5 minutes of this machine's clock; exits 1
# otherwise.  (Compare in constant time in production code; see
# docs/webhooks.md.)
set -eu
[ $# -eq 5 ] || { echo "usage: $0 SECRET TIMESTAMP NONCE SIGNATURE BODY_FILE" >&2; exit 2; }
secret=$1 ts=$2 nonce=$3 sig=$4 body=$5

now=$(date +%s)
skew=$((now - ts)); [ "$skew" -lt 0 ] && skew=$((-skew))
if [ "$skew" -gt 300 ]; then echo "timestamp $ts is ${skew}s off: refused" >&2; exit 1; fi

mac=$( { printf '%s.%s.' "$ts" "$nonce"; cat "$body"; } |
       openssl dgst -sha256 -hmac "$secret" -hex | sed 's/^.*= //')
if [ "v1=$mac" = "$sig" ]; then echo ok; else echo "signature mismatch" >&2; exit 1; fi
