#!/usr/bin/env bash
# Inbound helpdesk throughput: smtp-source sends MESSAGES messages from one customer to a
# helpdesk mailbox on Postern's inbound listener; measured are the time until smtp-source
# has its last `250` (accepted: spooled with fsync) and the time until the queue is empty
# and every message is a ticket (recorded: one ticket-store transaction + sync each).
#
# A benchmark, not a test: CI never runs it. Needs postfix's smtp-source, curl, python3.
#
#   bash bench/inbound.sh                    # 1000 x 2 KiB, 8 sessions
#   MESSAGES=5000 SESSIONS=16 bash bench/inbound.sh
#
# Environment: MESSAGES (1000), SIZE (2048), SESSIONS (8), POSTERN_BIN (default
# target/release/postern, built if missing), BENCH_KEEP=1 (keep the work directory).
# Authentication checks are off (no resolver here reaches the internet).
set -euo pipefail
MESSAGES=${MESSAGES:-1000}
SIZE=${SIZE:-2048}
SESSIONS=${SESSIONS:-8}
cd "$(dirname "$0")/.."
BIN=${POSTERN_BIN:-target/release/postern}
[ -x "$BIN" ] || cargo build --release
W=$(mktemp -d /tmp/postern-inbound.XXXXXX)
cleanup() {
    [ -n "${PID:-}" ] && kill "$PID" 2>/dev/null || true
    [ "${BENCH_KEEP:-}" = 1 ] && echo "kept $W" || rm -rf "$W"
}
trap cleanup EXIT
read -r API SMTP <<<"$(python3 -c '
import socket
s=[socket.socket() for _ in range(2)]
for x in s: x.bind(("127.0.0.1", 0))
print(" ".join(str(x.getsockname()[1]) for x in s))')"
TOKEN=inbound-bench-token-0123456789
cat >"$W/postern.toml" <<EOF
data_dir = "$W/data"
hostname = "gw.bench"
[api]
bind = "127.0.0.1:$API"
[tls]
cert = "$W/cert.pem"
key = "$W/key.pem"
[[listener]]
name = "inbound"
bind = "127.0.0.1:$SMTP"
purpose = "inbound"
tls = "none"
[inbound]
authenticate = false
EOF
POSTERN_ADMIN_TOKEN=$TOKEN RUST_LOG=warn "$BIN" serve --config "$W/postern.toml" >"$W/log" 2>&1 &
PID=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$API/readyz" >/dev/null && break; sleep 0.1; done
api() { curl -sf -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' "$@"; }
api -X POST -d '{"name":"Help","address":"help@example.com","inbound":{"auto_create_requesters":true}}' \
    "http://127.0.0.1:$API/api/v1/accounts" >/dev/null
count() { api "http://127.0.0.1:$API/api/v1/$1" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))'; }

start=$(date +%s.%N)
smtp-source -c -m "$MESSAGES" -s "$SESSIONS" -l "$SIZE" -f ann@customer.example \
    -t help@example.com -S "bench ticket" "127.0.0.1:$SMTP" >"$W/source.log" 2>&1
accepted=$(date +%s.%N)
while [ "$(count queue)" != 0 ]; do sleep 0.05; done
recorded=$(date +%s.%N)
tickets=$(count tickets)
python3 - "$start" "$accepted" "$recorded" "$MESSAGES" "$tickets" <<'PY'
import sys
start, accepted, recorded = map(float, sys.argv[1:4])
n, tickets = int(sys.argv[4]), int(sys.argv[5])
print(f"messages {n}, tickets {tickets}")
print(f"accepted in {accepted - start:.2f} s ({n / (accepted - start):.0f} msg/s)")
print(f"recorded in {recorded - start:.2f} s ({n / (recorded - start):.0f} tickets/s end to end)")
PY
[ "$tickets" = "$MESSAGES" ]
