#!/usr/bin/env bash
# Throughput comparison: the same smtp-source load through
#   postern  smtp-source -> Postern (release build, trusted listener, on-disk spool with
#            real fsync) -> smtp-sink
#   postfix  smtp-source -> a Postfix relay on this machine (relayhost = the same smtp-sink)
#   direct   smtp-source -> smtp-sink (the ceiling: no relay at all)
# in two modes: `conn` (one connection per message) and `reuse` (smtp-source -d).
#
# A benchmark, not a test: CI never runs it. Needs root (Postfix), postfix (smtp-sink,
# smtp-source) and python3. Usage:
#
#   bash bench/compare.sh                          # 20,000 x 4 KiB, 20 sessions
#   MESSAGES=5000 bash bench/compare.sh            # a quicker run
#
# Environment: MESSAGES (20000), SIZE (4096 octets), SESSIONS (20), MODES ("conn reuse"),
# SYSTEMS ("direct postern postfix"), ROUNDS (3: each system but Postfix runs that many
# times per mode, interleaved; the table gives medians, each round's rate, and the share of
# the ceiling as the median of each round against the ceiling measured just before), STALL (60: seconds without a new arrival before a run
# is declared incomplete), POSTERN_BIN (default target/release/postern, built if missing),
# POSTERN_LOG (RUST_LOG for Postern, default info), POSTERN_TOML (the configuration template,
# default bench/postern-bench.toml; a copy with other settings compares them), BENCH_KEEP=1
# (keep the work directory),
# ARCHIVE (off: the bench principal's mail is not archived; on: a staff user of account
# type `complete` has the bench account's address as its mailbox, so the archive keeps
# every message). SYSTEMS may also name `postern-archive`: Postern with that archive on,
# beside plain `postern` in the same run (issue 7's on/off comparison). `postern-dkim-rsa`
# and `postern-dkim-ed25519`: Postern signing every message with an active DKIM key of
# that algorithm for the bench account's domain (issue 8's cost of signing). `null` and
# `null-sync`: bench/nullrelay.rs, the least a relay can do (no checks, no rewriting), with
# no disk at all or with a group-committed `fdatasync` before each `250`: the share of the
# ceiling a relay that adds nothing else reaches on this machine (NULLRELAY_BIN, default:
# built with cargo). `postern-pg`: Postern with `[store] backend = "postgres"` (one node)
# on a PostgreSQL cluster the script starts itself; `postern-pg2`: two Postern nodes on
# one database, each with its own spool and listener, the load split between them (two
# smtp-source processes, each sending half the messages over half the sessions; the rate
# is every message arrived at the sink over the time from the start until the last one).
# Both nodes share the machine's vCPUs with each other, PostgreSQL and the load tools.
# The cluster (Debian's /usr/lib/postgresql/*/bin: initdb, postgres; as the `postgres`
# user when run as root) listens on a free loopback port with its data under the work
# directory and normal durability (fsync and synchronous_commit on, as shipped); each
# round gets a fresh database; it is stopped at the end. For these systems the CPU column
# counts the Postern node(s) and the PostgreSQL server's process tree together
# (PG_BIN: the directory of the PostgreSQL binaries, default the newest installed).
# Under the table, what each run asked of its database per message (`pg_stat_database`:
# transactions, rows returned, fetched, inserted, updated, deleted; read after the nodes
# stopped, so start-up and background work are included).
#
# What is measured: wall time from starting smtp-source until smtp-sink has counted every
# message (`smtp-sink -c` counts a message when it receives the final dot), so a relay's
# queue must be drained, not only accepted. CPU is utime+stime from /proc/PID/stat of the
# relay's process tree (Postern: one process; Postfix: master, its live children and the
# children it has reaped), read before and after the run. smtp-source and smtp-sink run on
# the same 2 vCPUs as the relay and compete with it for them, so their CPU per message is
# in the table too (smtp-source: `times` of the subshell that reaped it; smtp-sink: its
# /proc ticks around the run): what a message costs the whole machine on each path, which
# is what the share of the ceiling follows. Under the table, for each relay and mode: the
# CPU per message along both paths, the share of the ceiling the relay would reach if the
# rate followed CPU alone, and the relay CPU per message that 60 % would need. The arrival count is watched
# by bench/watch.py: one process polling every 2-20 ms (an eighth of the time the run still
# needs, so every 2 ms near the end), not a shell loop forking twice per poll.
#
# Nothing outside the work directory is changed: Postfix runs as a separate instance with
# its own config directory (`postfix -c DIR`), queue and data directories and log file
# under the work directory; /etc/postfix is only read (master.cf is copied).

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
MESSAGES=${MESSAGES:-20000}
SIZE=${SIZE:-4096}
SESSIONS=${SESSIONS:-20}
MODES=${MODES:-conn reuse}
SYSTEMS=${SYSTEMS:-direct postern postfix}
ROUNDS=${ROUNDS:-3}
STALL=${STALL:-60}
ARCHIVE=${ARCHIVE:-off}
POSTERN_LOG=${POSTERN_LOG:-info}
POSTERN_TOML=${POSTERN_TOML:-$ROOT/bench/postern-bench.toml}
PATH=$PATH:/usr/sbin:/sbin

die() { echo "compare: $*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || die "run as root (Postfix and smtp-sink -u need it)"
for tool in smtp-sink smtp-source postfix postconf python3 curl; do
    command -v "$tool" >/dev/null || die "$tool missing (apt-get install postfix python3 curl)"
done

BIN=${POSTERN_BIN:-$ROOT/target/release/postern}
if [ ! -x "$BIN" ]; then
    (cd "$ROOT" && cargo build --release)
fi
BIN=$(readlink -f "$BIN")   # Postern is started from its own data directory

# On disk, so that fsync is real (not tmpfs).
W=$(mktemp -d /var/tmp/postern-bench.XXXXXX)
chmod 755 "$W"   # the postfix user must reach its queue and data directories
fstype=$(stat -f -c %T "$W")
[ "$fstype" = tmpfs ] && echo "warning: $W is on tmpfs: fsync costs nothing there" >&2

PIDS=()
PF_CONF=""
PG_DIR=""
cleanup() {
    local rc=$? pid
    set +e
    if [ -n "$PF_CONF" ] && [ -f "$W/postfix/queue/pid/master.pid" ]; then
        postfix -c "$PF_CONF" stop >/dev/null 2>&1
        for _ in $(seq 100); do postfix -c "$PF_CONF" status >/dev/null 2>&1 || break; sleep 0.1; done
    fi
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null; done
    for pid in "${PIDS[@]}"; do
        for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    done
    [ -n "$PG_DIR" ] && stop_pg
    if [ "${BENCH_KEEP:-0}" = 1 ] || [ "$rc" -ne 0 ]; then echo "work directory kept: $W" >&2; else rm -rf "$W"; fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

freeports() {
    python3 -c '
import socket, sys
ss = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in ss: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in ss))' "$1"
}
read -r SINK PF_PORT <<<"$(freeports 2)"

now_us() { echo $(( ${EPOCHREALTIME/[.,]/} )); }   # bash >= 5
secs() { printf '%d.%02d' $(($1 / 1000000)) $(($1 % 1000000 / 10000)); }

# CPU ticks (utime+stime+cutime+cstime) of PID and all its live descendants.
tree_ticks() {
    python3 - "$1" <<'PY'
import os, sys
root = int(sys.argv[1])
stat = {}
for d in os.listdir("/proc"):
    if d.isdigit():
        try:
            s = open("/proc/%s/stat" % d).read()
        except OSError:
            continue
        f = s[s.rindex(")") + 2:].split()
        stat[int(d)] = (int(f[1]), sum(int(x) for x in f[11:15]))  # ppid, utime..cstime
total, todo = 0, [root]
while todo:
    p = todo.pop()
    if p in stat:
        total += stat[p][1]
        todo += [c for c, (pp, _) in stat.items() if pp == p]
print(total)
PY
}

# The last `mesg=N` counter smtp-sink printed (one `tail` process per call, cheap to poll).
sink_count() {
    local s
    s=$(tail -c 200 "$W/sink.out" 2>/dev/null)
    case $s in *mesg=*) ;; *) echo 0; return ;; esac
    s=${s##*mesg=}
    echo "${s%%[!0-9]*}"
}

# Milliseconds of CPU (user + system) of the children a subshell reaped, from its `times`
# output (second line: "XmY.YYYs XmY.YYYs").
source_cpu_ms() {
    python3 - "$1" <<'PY'
import re, sys
lines = open(sys.argv[1]).read().split("\n")
ms = 0.0
for m, s in re.findall(r"(\d+)m([\d.]+)s", lines[1] if len(lines) > 1 else ""):
    ms += (int(m) * 60 + float(s)) * 1000
print("%.0f" % ms)
PY
}

# ---------------------------------------------------------------- smtp-sink (shared)
smtp-sink -c -u nobody -m 1000 "127.0.0.1:$SINK" 1000 >"$W/sink.out" 2>"$W/sink.err" &
SINK_PID=$!
PIDS+=("$SINK_PID")
sleep 0.3
kill -0 "${PIDS[0]}" 2>/dev/null || die "smtp-sink did not start: $(cat "$W/sink.err")"

# ---------------------------------------------------------------- Postern
POSTERN_PID=""
POSTERN_PORT=""
start_postern() { # label system [database-url node-name]
    local dir=$W/postern-$1 api token=bench-token-$$ principal=bench@postern.test
    read -r POSTERN_PORT api <<<"$(freeports 2)"
    mkdir -p "$dir"
    sed -e "s|@DATA@|$dir/data|g" -e "s|@API@|$api|g" -e "s|@PORT@|$POSTERN_PORT|g" \
        -e "s|@SINK@|$SINK|g" -e "s|@PRINCIPAL@|$principal|g" \
        "$POSTERN_TOML" >"$dir/postern.toml"
    if [ -n "${3:-}" ]; then
        printf '\n[store]\nbackend = "postgres"\nurl = "%s"\nnode = "%s"\n' "$3" "$4" >>"$dir/postern.toml"
    fi
    (cd "$dir" && POSTERN_ADMIN_TOKEN=$token RUST_LOG=$POSTERN_LOG NO_COLOR=1 \
        exec "$BIN" serve --config "$dir/postern.toml") >"$dir/stdout.log" 2>"$dir/postern.log" &
    POSTERN_PID=$!
    PIDS+=($POSTERN_PID)
    for _ in $(seq 100); do
        curl -sf "http://127.0.0.1:$api/readyz" >/dev/null 2>&1 && break
        sleep 0.1
    done
    local code
    if [ "${POSTERN_SETUP:-1}" = 0 ]; then   # a second node: the shared store has it all
        curl -sf "http://127.0.0.1:$api/readyz" >/dev/null 2>&1 \
            || die "Postern node $4 did not start: $(tail -5 "$dir/postern.log")"
        echo "$api" >"$dir/api.port"
        return
    fi
    code=$(curl -s -o "$dir/user.json" -w '%{http_code}' -X POST -H "Authorization: Bearer $token" \
        -H 'Content-Type: application/json' \
        -d "{\"login\":\"$principal\",\"email\":\"$principal\",\"kind\":\"system\",\"password\":\"bench-secret-0123456789abcdefghijklmnopqrstuvwxyz\"}" \
        "http://127.0.0.1:$api/api/v1/users")
    [ "$code" = 201 ] || die "Postern did not start or refused the user (HTTP $code): $(tail -5 "$dir/postern.log")"
    # The principal sends as its own address through a system-scope account (SPEC §2).
    code=$(curl -s -o "$dir/account.json" -w '%{http_code}' -X POST -H "Authorization: Bearer $token" \
        -H 'Content-Type: application/json' \
        -d "{\"name\":\"bench\",\"address\":\"$principal\",\"upstream\":\"sink\",\"scope\":{\"kind\":\"system\"},\"default_send_mode\":\"send_as\"}" \
        "http://127.0.0.1:$api/api/v1/accounts")
    [ "$code" = 201 ] || die "Postern refused the account (HTTP $code): $(cat "$dir/account.json")"
    if [ "$ARCHIVE" = on ] || [ "$2" = postern-archive ]; then
        archive_on "$dir" "$api" "$token" "$principal"
    fi
    case $2 in
        postern-dkim-rsa) dkim_on "$dir" "$api" "$token" rsa-2048 ;;
        postern-dkim-ed25519) dkim_on "$dir" "$api" "$token" ed25519 ;;
    esac
    echo "$api" >"$dir/api.port"
}

# A staff user of type `complete` whose mailbox is the bench account's address: the archive
# keeps every message the bench sends.
archive_on() { # dir api admin-token mailbox
    local dir=$1 api=$2 token=$3 mailbox=$4 id user_token code
    curl -sf -o "$dir/archivist.json" -X POST -H "Authorization: Bearer $token" \
        -H 'Content-Type: application/json' \
        -d '{"login":"archivist@postern.test","email":"archivist@postern.test","kind":"staff","password":"archivist-password-1"}' \
        "http://127.0.0.1:$api/api/v1/users" || die "archivist not created"
    id=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["id"])' "$dir/archivist.json")
    user_token=$(curl -sf -X POST -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
        -d '{}' "http://127.0.0.1:$api/api/v1/users/$id/tokens" \
        | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
    code=$(curl -s -o "$dir/mail-config.json" -w '%{http_code}' -X PUT -H "Authorization: Bearer $user_token" \
        -H 'Content-Type: application/json' -d "{\"account_type\":\"complete\",\"mailbox\":\"$mailbox\"}" \
        "http://127.0.0.1:$api/api/v1/me/mail-config")
    [ "$code" = 200 ] || die "mail configuration refused (HTTP $code): $(cat "$dir/mail-config.json")"
}

# An active DKIM key of `algorithm` for the bench account's domain: every message is signed.
dkim_on() { # dir api admin-token algorithm
    local code
    code=$(curl -s -o "$1/dkim.json" -w '%{http_code}' -X POST -H "Authorization: Bearer $3" \
        -H 'Content-Type: application/json' \
        -d "{\"domain\":\"postern.test\",\"algorithm\":\"$4\",\"selector\":\"bench\",\"activate\":true}" \
        "http://127.0.0.1:$2/api/v1/dkim-keys")
    [ "$code" = 201 ] || die "DKIM key refused (HTTP $code): $(cat "$1/dkim.json")"
}

# ---------------------------------------------------------------- the null relay
# bench/nullrelay.rs: the least a relay can do (no checks, no rewriting), a yardstick for
# the share of the ceiling a relay reaches here. `null` keeps nothing on disk and relays
# before its 250; `null-sync` group-commits each message into a file (`fdatasync`), answers
# 250, then relays it.
NULL_PID=""
NULL_PORT=""
start_null() { # label system
    if [ -z "${NULLRELAY_BIN:-}" ]; then
        NULLRELAY_BIN=$(cd "$ROOT" && cargo bench --bench nullrelay --no-run --message-format=json 2>/dev/null \
            | python3 -c 'import json, sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("executable") and m.get("target", {}).get("name") == "nullrelay": print(m["executable"])')
        [ -x "$NULLRELAY_BIN" ] || die "could not build bench/nullrelay.rs"
    fi
    NULL_PORT=$(freeports 1)
    local sync=()
    [ "$2" = null-sync ] && sync=("$W/null-$1.ring")
    "$NULLRELAY_BIN" "127.0.0.1:$NULL_PORT" "127.0.0.1:$SINK" "${sync[@]}" >"$W/null-$1.log" 2>&1 &
    NULL_PID=$!
    PIDS+=($NULL_PID)
    for _ in $(seq 100); do
        python3 -c 'import socket, sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1).close()' \
            "$NULL_PORT" 2>/dev/null && return
        sleep 0.1
    done
    die "the null relay did not start: $(cat "$W/null-$1.log")"
}

stop_null() {
    kill -TERM "$NULL_PID" 2>/dev/null || true
    wait "$NULL_PID" 2>/dev/null || true
}

stop_postern() {
    kill -TERM "$POSTERN_PID" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$POSTERN_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$POSTERN_PID" 2>/dev/null || true
    wait "$POSTERN_PID" 2>/dev/null || true
}

# ---------------------------------------------------------------- PostgreSQL (own cluster)
# A cluster under the work directory, durable as shipped (fsync, synchronous_commit and
# full_page_writes on); a fresh database per Postern run.
PG_PORT=""
PG_RUN=()
start_pg() {
    PG_BIN=${PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)}
    [ -x "$PG_BIN/initdb" ] || die "PostgreSQL binaries missing (apt-get install postgresql)"
    PG_DIR=$W/pg
    mkdir -p "$PG_DIR"
    PG_RUN=()
    if [ "$(id -u)" -eq 0 ]; then
        chown postgres: "$PG_DIR"
        PG_RUN=(runuser -u postgres --)
    fi
    PG_PORT=$(freeports 1)
    (cd / && "${PG_RUN[@]}" "$PG_BIN/initdb" -D "$PG_DIR/data" -U postgres -A trust -E UTF8 \
        --locale=C) >"$PG_DIR/initdb.log" 2>&1 || die "initdb failed: $(tail -5 "$PG_DIR/initdb.log")"
    (cd / && "${PG_RUN[@]}" "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/log" -w -t 60 \
        -o "-p $PG_PORT -k $PG_DIR -c listen_addresses=127.0.0.1 -c max_connections=200" start) \
        >"$PG_DIR/pg_ctl.log" 2>&1 || die "PostgreSQL did not start: $(tail -5 "$PG_DIR/log")"
    PG_PID=$(head -1 "$PG_DIR/data/postmaster.pid")
    echo "PostgreSQL $("$PG_BIN/postgres" --version | awk '{print $3}') on 127.0.0.1:$PG_PORT ($PG_DIR)," \
        "fsync=$(pg_sql 'SHOW fsync'), synchronous_commit=$(pg_sql 'SHOW synchronous_commit')" >&2
}

pg_sql() { # sql: runs it in the `postgres` database; what it printed
    (cd / && "${PG_RUN[@]}" "$PG_BIN/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres \
        -v ON_ERROR_STOP=1 -q -tA -c "$1")
}

# A fresh database for one run: its URL.
pg_database() { # name
    pg_sql "CREATE DATABASE $1" >/dev/null || die "could not create database $1"
    echo "postgres://postgres@127.0.0.1:$PG_PORT/$1?sslmode=disable"
}

# What a run asked of its database, start to stop (setup included; a backend reports its
# counts at the latest when it exits, so this is read after the nodes have stopped):
# transactions, rows returned, fetched, inserted, updated, deleted.
pg_counts() { # system mode database
    local row
    row=$(pg_sql "SELECT xact_commit + xact_rollback, tup_returned, tup_fetched, tup_inserted,
        tup_updated, tup_deleted FROM pg_stat_database WHERE datname = '$3'" | tr '|' '\t')
    printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$ROUND" "$row" >>"$W/pg-counts.tsv"
    echo "  $1/$2: database $3: transactions, rows returned, fetched, inserted, updated, deleted: $row" >&2
}

stop_pg() {
    (cd / && "${PG_RUN[@]}" "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m fast -w stop) >/dev/null 2>&1
    PG_DIR=""
}

# ---------------------------------------------------------------- Postfix (own instance)
start_postfix() {
    local pf=$W/postfix
    PF_CONF=$pf/conf
    mkdir -p "$PF_CONF" "$pf/queue" "$pf/data"
    cp /etc/postfix/master.cf "$PF_CONF/master.cf"
    : >"$PF_CONF/main.cf"
    postconf -c "$PF_CONF" -e \
        "compatibility_level = 3.6" \
        "queue_directory = $pf/queue" \
        "data_directory = $pf/data" \
        "maillog_file = $pf/maillog" \
        "maillog_file_prefixes = $W" \
        "myhostname = bench-postfix.localdomain" \
        "inet_interfaces = loopback-only" \
        "inet_protocols = ipv4" \
        "mynetworks = 127.0.0.0/8" \
        "mydestination =" \
        "local_recipient_maps =" \
        "alias_maps =" \
        "alias_database =" \
        "relayhost = [127.0.0.1]:$SINK" \
        "smtp_dns_support_level = disabled" \
        "smtpd_peername_lookup = no" \
        "biff = no"
    postconf -c "$PF_CONF" -F '*/*/chroot = n'
    postconf -c "$PF_CONF" -MX smtp/inet
    postconf -c "$PF_CONF" -M "127.0.0.1:$PF_PORT/inet=127.0.0.1:$PF_PORT inet n - n - - smtpd"
    /etc/postfix/post-install config_directory="$PF_CONF" meta_directory=/etc/postfix create-missing >/dev/null
    chown postfix "$pf/data"
    postfix -c "$PF_CONF" check
    postfix -c "$PF_CONF" start >/dev/null 2>&1 || die "postfix did not start: $(tail -5 "$pf/maillog")"
    for _ in $(seq 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$PF_PORT") 2>/dev/null && return 0
        sleep 0.1
    done
    die "postfix does not listen on 127.0.0.1:$PF_PORT: $(tail -5 "$pf/maillog")"
}

postfix_master() { head -1 "$W/postfix/queue/pid/master.pid" | tr -d ' '; }

# ---------------------------------------------------------------- one run
RESULTS=$W/results.tsv
: >"$RESULTS"

# CPU ticks of every PID given and its descendants.
ticks_of() {
    local total=0 p
    for p in "$@"; do total=$((total + $(tree_ticks "$p"))); done
    echo "$total"
}

run() { # system mode "port..." ["cpu_pid..."]: with several ports, the load is split evenly
    local system=$1 mode=$2 ports=($3) pids=(${4:-}) opt=() before target got t0 t_src="" t_done
    local src_rc=0 ticks0=0 ticks1=0 sink0 sink1 src_cpu n=${#ports[@]}
    [ "$mode" = reuse ] && opt=(-d)
    before=$(sink_count)
    target=$((before + MESSAGES))
    [ ${#pids[@]} -gt 0 ] && ticks0=$(ticks_of "${pids[@]}")
    sink0=$(tree_ticks "$SINK_PID")
    t0=$(now_us)
    # A subshell runs smtp-source (one per port, each with its share of the messages and
    # sessions) and, once it has reaped them, prints their CPU (`times`).
    ( i=0 srcs=()
      for port in "${ports[@]}"; do
          m=$((MESSAGES / n + (i < MESSAGES % n ? 1 : 0)))
          s=$((SESSIONS / n + (i < SESSIONS % n ? 1 : 0)))
          smtp-source -s "$s" -m "$m" -l "$SIZE" -f bench@postern.test -t sink@example.net \
              "${opt[@]}" "127.0.0.1:$port" >"$W/source-$system-$mode-$i.log" 2>&1 &
          srcs+=($!); i=$((i + 1))
      done
      rc=0
      for p in "${srcs[@]}"; do wait "$p" || rc=$?; done
      times >"$W/source.times"; exit $rc ) &
    local src=$! stalled
    read -r t_done t_src got stalled < <(python3 "$ROOT/bench/watch.py" "$W/sink.out" "$target" "$STALL" "$src")
    [ "$t_src" = 0 ] && t_src=""
    if [ "$stalled" = 1 ]; then
        pkill -P "$src" 2>/dev/null || true
        echo "  $system/$mode: no new arrival for ${STALL}s, stopping at $((got - before)) of $MESSAGES" >&2
    fi
    wait "$src" || src_rc=$?
    [ -n "$t_src" ] || t_src=$(now_us)
    [ ${#pids[@]} -gt 0 ] && ticks1=$(ticks_of "${pids[@]}")
    sink1=$(tree_ticks "$SINK_PID")
    src_cpu=$(source_cpu_ms "$W/source.times")
    got=$(( $(sink_count) - before ))
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$system" "$mode" "$got" "$(secs $((t_done - t0)))" \
        "$(secs $((t_src - t0)))" "${pids:+$((ticks1 - ticks0))}" "$src_rc" "$ROUND" \
        "$src_cpu" "$((sink1 - sink0))" >>"$RESULTS"
    echo "  $system/$mode: $got of $MESSAGES arrived in $(secs $((t_done - t0))) s (smtp-source done after $(secs $((t_src - t0))) s, exit $src_rc)" >&2
}

# ---------------------------------------------------------------- the runs
echo "work directory: $W ($fstype); sink 127.0.0.1:$SINK" >&2
echo "load: $MESSAGES messages x $SIZE octets, $SESSIONS sessions; modes: $MODES; systems: $SYSTEMS; rounds: $ROUNDS" >&2
case " $SYSTEMS " in *" postfix "*) start_postfix ;; esac
case " $SYSTEMS " in *" postern-pg "*|*" postern-pg2 "*) start_pg ;; esac
for mode in $MODES; do
  for ROUND in $(seq "$ROUNDS"); do
    for system in $SYSTEMS; do
        # Postfix is twenty times slower: measured once per mode (its rate barely varies).
        [ "$system" = postfix ] && [ "$ROUND" -gt 1 ] && continue
        case $system in
            direct) run direct "$mode" "$SINK" ;;
            postern|postern-archive|postern-dkim-rsa|postern-dkim-ed25519)
                start_postern "$mode-$system-$ROUND" "$system"
                run "$system" "$mode" "$POSTERN_PORT" "$POSTERN_PID"
                stop_postern ;;
            postern-pg)
                url=$(pg_database "bench_${mode}_pg_$ROUND")
                start_postern "$mode-$system-$ROUND" "$system" "$url" bench-a
                run "$system" "$mode" "$POSTERN_PORT" "$POSTERN_PID $PG_PID"
                stop_postern
                sleep 1; pg_counts "$system" "$mode" "bench_${mode}_pg_$ROUND" ;;
            postern-pg2)
                url=$(pg_database "bench_${mode}_pg2_$ROUND")
                start_postern "$mode-$system-$ROUND-a" "$system" "$url" bench-a
                pid_a=$POSTERN_PID port_a=$POSTERN_PORT
                POSTERN_SETUP=0 start_postern "$mode-$system-$ROUND-b" "$system" "$url" bench-b
                run "$system" "$mode" "$port_a $POSTERN_PORT" "$pid_a $POSTERN_PID $PG_PID"
                stop_postern
                POSTERN_PID=$pid_a stop_postern
                sleep 1; pg_counts "$system" "$mode" "bench_${mode}_pg2_$ROUND" ;;
            postfix) run postfix "$mode" "$PF_PORT" "$(postfix_master)" ;;
            null|null-sync)
                start_null "$mode-$system-$ROUND" "$system"
                run "$system" "$mode" "$NULL_PORT" "$NULL_PID"
                stop_null
                rm -f "$W/null-$mode-$system-$ROUND.ring" ;;
            *) die "unknown system $system" ;;
        esac
        sleep 2 # let TIME_WAIT sockets and queues settle between runs
    done
  done
done

# ---------------------------------------------------------------- the table
python3 - "$RESULTS" "$MESSAGES" "$(getconf CLK_TCK)" <<'PY'
import statistics, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
sent, hz = int(sys.argv[2]), int(sys.argv[3])
runs = {}  # (system, mode) -> [(round, got, secs, src, ticks, rc, rate, src_ms, sink_ticks)]
for system, mode, got, secs, src, ticks, rc, rnd, src_ms, sink in rows:
    rate = int(got) / float(secs) if float(secs) > 0 else 0.0
    runs.setdefault((system, mode), []).append(
        (rnd, int(got), float(secs), src, ticks, rc, rate, float(src_ms), int(sink)))
med = lambda xs: statistics.median(xs) if xs else None
rate = {k: med([r[6] for r in v]) for k, v in runs.items()}
path = {}  # (system, mode) -> (relay CPU, smtp-source CPU, smtp-sink CPU), ms per message
print("| system | mode | rounds | messages arrived (of sent) | seconds | msg/s | msg/s each round "
      "| vs Postfix | % of ceiling | smtp-source done (s) | CPU ms/msg | smtp-source CPU ms/msg "
      "| smtp-sink CPU ms/msg |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
for (system, mode), v in runs.items():
    r = rate[(system, mode)]
    pf = rate.get(("postfix", mode))
    direct = {x[0]: x[6] for x in runs.get(("direct", mode), [])}
    # % of ceiling: per round against the ceiling measured just before it, then the median.
    pcts = [100 * x[6] / direct[x[0]] for x in v if direct.get(x[0])]
    vs = "%.2fx" % (r / pf) if pf else "-"
    pct = "%.0f %%" % med(pcts) if pcts else "-"
    cpus = [int(x[4]) * 1000.0 / hz / x[1] for x in v if x[4] and x[1]]
    cpu = "%.3f" % med(cpus) if cpus else "-"
    src_cpu = "%.3f" % med([x[7] / x[1] for x in v if x[1]])
    sink_cpu = "%.3f" % med([x[8] * 1000.0 / hz / x[1] for x in v if x[1]])
    got = " / ".join(str(x[1]) for x in v)
    notes = "".join(" (smtp-source exit %s)" % x[5] for x in v if x[5] != "0")
    each = " / ".join("%.0f" % x[6] for x in v)
    print("| %s | %s | %d | %s (of %d)%s | %.2f | %.0f | %s | %s | %s | %s | %s | %s | %s |"
          % (system, mode, len(v), got, sent, notes, med([x[2] for x in v]), r, each, vs, pct,
             " / ".join(x[3] for x in v), cpu, src_cpu, sink_cpu))
    path[(system, mode)] = (med(cpus) if cpus else None, float(src_cpu), float(sink_cpu))
# The share of the ceiling a relay could reach if the rate followed CPU alone: what a
# message costs the machine straight to the sink, against through the relay (all three
# processes share the same vCPUs), and the relay's CPU per message that 60 % would need.
lines = []
for (system, mode), (cpu, src, sink) in path.items():
    ceiling = path.get(("direct", mode))
    if system == "direct" or cpu is None or ceiling is None:
        continue
    direct_path, relay_path = ceiling[1] + ceiling[2], src + cpu + sink
    lines.append("- %s, %s: straight to the sink %.3f ms (%.3f + %.3f), through it %.3f ms "
                 "(%.3f + %.3f + %.3f): %.0f %% if the rate followed CPU alone; 60 %% needs "
                 "it at %.3f ms per message" % (system, mode, direct_path, ceiling[1], ceiling[2],
                 relay_path, src, cpu, sink, 100 * direct_path / relay_path,
                 direct_path / 0.6 - src - sink))
if lines:
    print("\nCPU per message along each path (medians; smtp-source + relay + smtp-sink):")
    print("\n".join(lines))
PY
if [ -s "$W/pg-counts.tsv" ]; then
    python3 - "$W/pg-counts.tsv" "$MESSAGES" <<'PY'
import statistics, sys
sent = int(sys.argv[2])
runs = {}
for l in open(sys.argv[1]):
    f = l.rstrip("\n").split("\t")
    if len(f) == 9 and f[3]:
        runs.setdefault((f[0], f[1]), []).append([int(x) for x in f[3:]])
print("\nPostgreSQL, per message sent (medians over rounds; the run's database from its creation "
      "to the nodes' stop, setup and background work included): transactions, rows returned, "
      "fetched, inserted, updated, deleted")
for (system, mode), v in runs.items():
    cols = [statistics.median(r[i] for r in v) / sent for i in range(6)]
    print("- %s, %s: %s" % (system, mode, " / ".join("%.3f" % c for c in cols)))
PY
fi
