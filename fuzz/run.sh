#!/usr/bin/env bash
# Fuzzes Postern with AFL++ (through cargo-afl): the SMTP session and the header rewrite.
#
#   bash fuzz/run.sh [SECONDS] [TARGET...]
#
# Installs what it needs (make and a C compiler from Debian, cargo-afl from crates.io, the
# AFL++ runtime cargo-afl ships), builds the targets, replays the seeds and the committed
# regressions, then runs every target (default: smtp headers) for SECONDS each (default
# 60), all at once at low priority. Exits non-zero if a regression fails again or AFL++
# found a crash, and prints each crash input and its panic. Findings stay in fuzz/out/.
# RESUME=1 continues an earlier campaign in fuzz/out/ instead of starting over.
set -euo pipefail

secs=${1:-60}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(smtp headers)
here=$(cd "$(dirname "$0")" && pwd)
cd "$here"
cargo_afl_version=0.18.2

install() {
    if ! command -v make >/dev/null || ! command -v cc >/dev/null; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq make gcc
    fi
    if ! cargo afl --version 2>/dev/null | grep -q "$cargo_afl_version"; then
        cargo install --locked --force cargo-afl --version "$cargo_afl_version"
    fi
    # cargo-afl builds the AFL++ runtime and tools from the source it ships (no download);
    # it refuses (harmlessly) when they are already built for this rustc.
    cargo afl config --build >/dev/null 2>&1 || true
}

build() {
    # The harness's own checks (what a well-formed reply is) run with the crate's tests
    # (tests/fuzz_replies.rs), not in a second instrumented build.
    nice -n 10 cargo afl build --release --locked --bins
}

# The seeds and the committed regressions must pass before any fuzzing.
replay() {
    local t
    for t in "${targets[@]}"; do
        local dirs=("seeds/$t")
        [ -d "regressions/$t" ] && [ -n "$(ls -A "regressions/$t")" ] && dirs+=("regressions/$t")
        "target/release/$t" "${dirs[@]}" 2>/dev/null || {
            echo "fuzz: $t fails on its seeds or regressions:" >&2
            "target/release/$t" "${dirs[@]}" >&2 || true
            return 1
        }
    done
}

fuzz() {
    local t=$1 input=seeds/$t
    if [ "${RESUME:-0}" = 1 ] && [ -d "out/$t/default" ]; then
        input=-
    else
        rm -rf "out/$t"
    fi
    mkdir -p "out/$t"
    AFL_NO_UI=1 AFL_SKIP_CPUFREQ=1 AFL_NO_AFFINITY=1 \
        AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_SKIP_CRASHES=1 \
        AFL_AUTORESUME=1 \
        nice -n 15 cargo afl fuzz -i "$input" -o "out/$t" -V "$secs" -t 10000 -m none \
        -x dict/"$t".dict "target/release/$t" >"out/$t.log" 2>&1
}

report() {
    local t=$1 found=0 f
    local stats=out/$t/default/fuzzer_stats
    if [ -f "$stats" ]; then
        echo "== $t: $(grep -E '^(run_time|execs_done|execs_per_sec|corpus_count|bitmap_cvg|saved_crashes|saved_hangs) ' "$stats" | awk '{printf "%s=%s ", $1, $3}')"
    else
        echo "== $t: AFL++ did not start; its log:" >&2
        tail -40 "out/$t.log" >&2
        return 1
    fi
    for f in out/"$t"/default/crashes/id:*; do
        [ -e "$f" ] || continue
        found=1
        echo "-- crash $f:"
        od -c "$f" | head -40
        "target/release/$t" "$f" 2>&1 | grep -v '^replay' | head -20 || true
    done
    for f in out/"$t"/default/hangs/id:*; do
        [ -e "$f" ] || continue
        echo "-- hang (over 10 s; not counted as a failure on a shared machine) $f"
    done
    return $found
}

started=$(date +%s)
install
build
echo "fuzz: installed and built in $(($(date +%s) - started)) s"
replay
pids=()
for t in "${targets[@]}"; do
    fuzz "$t" &
    pids+=($!)
done
for pid in "${pids[@]}"; do wait "$pid" || true; done
sleep 2 # let the killed target processes go
# Store and spool directories of target processes AFL++ killed (the harness sweeps them
# too, at its next start).
for d in /dev/shm/postern-fuzz-* "${TMPDIR:-/tmp}"/postern-fuzz-*; do
    [ -d "$d" ] || continue
    pid=${d##*/postern-fuzz-}
    [ -d "/proc/${pid%%-*}" ] || rm -rf "$d"
done
status=0
for t in "${targets[@]}"; do report "$t" || status=1; done
exit $status
