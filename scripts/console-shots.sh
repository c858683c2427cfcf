#!/usr/bin/env bash
# Screenshots of every console page, over demo data, as PNG files in OUTDIR:
#
#   bash scripts/console-shots.sh OUTDIR
#
# Runs the ignored test tests/console_shots.rs, which starts a gateway in-process, creates
# demo users, accounts and a ticket through the API, and has headless chromium (Debian's
# `chromium` and `chromium-driver`, installed by the test harness when run as root) write
# OUTDIR/NAME.png for each page listed in that file. Prints the files it wrote.
set -euo pipefail

if [ $# -ne 1 ]; then
    echo "usage: $0 OUTDIR" >&2
    exit 2
fi
mkdir -p "$1"
OUT=$(cd "$1" && pwd)
cd "$(dirname "${BASH_SOURCE[0]}")/.."
POSTERN_SHOTS_DIR="$OUT" cargo test --quiet --test console_shots -- --ignored --nocapture \
    --test-threads=1
