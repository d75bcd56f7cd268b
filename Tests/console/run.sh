#!/usr/bin/env bash
# The consoles end to end in a real headless Chromium (Tests/console/e2e.py, Selenium) against
# the real piam-admind (--demo, loopback) and piamd, on a fresh demo database; piamd records usage
# and piam-admind reads it (usage.path, usage.paths).
#
#   Tests/console/run.sh [--bin .build/debug]
#   PIAM_SCREENSHOTS=DIR Tests/console/run.sh     # also save each main page, desktop and phone
#
# Needs: chromium and chromium-driver (Debian), selenium (PyPI), built piamd, piam-admind and
# piamctl. Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/../.."
. Tests/lib/admind.sh
bin=.build/debug
while [ $# -gt 0 ]; do
  case "$1" in
    --bin) bin=$2; shift 2 ;;
    *) echo "usage: $0 [--bin DIR]" >&2; exit 2 ;;
  esac
done
work=$(mktemp -d /tmp/piam-console-e2e.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
"$bin/piamctl" demo --db "$work/piam.db" >/dev/null
# piamd records usage in its own file (usage.path); piam-admind reads that directory
# (usage.paths) for the usage tiles, the dormant-access page and the reviews' last use.
mkdir -p "$work/usage"
PIAMD_USAGE_PATH="$work/usage/piamd.db" PIAMD_USAGE_FLUSH_MS=200 \
  "$bin/piamd" --db "$work/piam.db" --socket "$work/piamd.sock" >"$work/piamd.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 300); do
  "$bin/piamctl" status --socket "$work/piamd.sock" >/dev/null 2>&1 && break
  kill -0 "${pids[0]}" 2>/dev/null || { echo "piamd exited:" >&2; cat "$work/piamd.log" >&2; exit 1; }
  sleep 0.1
done
[ -f "$work/usage/piamd.db" ] || { echo "piamd did not create its usage file" >&2; cat "$work/piamd.log" >&2; exit 1; }
port=$(free_port)
export PIAM_ADMIND_USAGE_PATHS="$work/usage"
start_admind "$bin" "$work/piam.db" "$port" "$work/admind.log" --demo
pids+=("$admind_pid")
wait_admind "$port" "$work/admind.log" "${pids[@]}"
status=0
PIAM_CONSOLE_URL="http://127.0.0.1:$port" PIAM_PIAMCTL="$bin/piamctl" PIAM_SOCKET="$work/piamd.sock" \
  python3 Tests/console/e2e.py || status=$?
if grep -q "unexpected error" "$work/admind.log"; then
  echo "console e2e: piam-admind logged unexpected errors:" >&2; grep "unexpected error" "$work/admind.log" >&2; status=1
fi
[ "$status" -eq 0 ] || { echo "--- piam-admind log" >&2; tail -50 "$work/admind.log" >&2; }
exit "$status"
