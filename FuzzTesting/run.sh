#!/usr/bin/env bash
# Builds the libFuzzer targets and runs each one.
#
#   FuzzTesting/run.sh                     # every target 20 s (what .ci/run does)
#   FuzzTesting/run.sh --seconds 3600      # every target an hour, one after another
#   FuzzTesting/run.sh --seconds 1200 --parallel --nice    # all at once, at the lowest priority
#   FuzzTesting/run.sh --only FuzzWire --seconds 600
#
# The committed corpus (Corpus/TARGET) is read, never written: new inputs go to a work corpus
# ($FUZZ_WORK, default /tmp/piam-fuzz/TARGET), kept between runs so long runs build on each
# other. A crash stops that target and leaves crash-* in the work directory; the script exits 1
# and prints the reproducer command. Each target's last libFuzzer line (executions, coverage,
# features, corpus) is printed at the end.
set -euo pipefail
cd "$(dirname "$0")"

seconds=20
parallel=0
nice_cmd=()
only=""
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) seconds=$2; shift 2 ;;
    --parallel) parallel=1; shift ;;
    --nice) nice_cmd=(nice -n 19); shift ;;
    --only) only=$2; shift 2 ;;
    *) echo "usage: $0 [--seconds N] [--parallel] [--nice] [--only TARGET]" >&2; exit 2 ;;
  esac
done

targets=(FuzzWire FuzzAuthZEN FuzzForwardAuth FuzzImport)
declare -A dict=([FuzzWire]=wire [FuzzAuthZEN]=authzen [FuzzForwardAuth]=forward-auth [FuzzImport]=import)
[ -n "$only" ] && targets=("$only")

echo "fuzz: building (debug, -sanitize=fuzzer,address)"
"${nice_cmd[@]}" swift build -c debug --sanitize=fuzzer --sanitize=address 2>&1 | grep -E 'error|warning: unre|Compiling|Build complete' | tail -5
bin=$(swift build -c debug --sanitize=fuzzer --sanitize=address --show-bin-path)

work=${FUZZ_WORK:-/tmp/piam-fuzz}
# The Swift backtracer hangs under libFuzzer and confuses AddressSanitizer.
export SWIFT_BACKTRACE=enable=no

run_one() {
  local t=$1
  mkdir -p "$work/$t"
  local log="$work/$t.log"
  echo "fuzz: $t for ${seconds}s (log $log)"
  ( cd "$work/$t" && "${nice_cmd[@]}" "$bin/$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
      -max_len=4096 -print_final_stats=1 -dict="$OLDPWD/Dictionaries/${dict[$t]}.dict" \
      "$work/$t/corpus" "$OLDPWD/Corpus/$t" ) >"$log" 2>&1 &
  echo $! >"$work/$t.pid"
}

mkdir -p "$work"
for t in "${targets[@]}"; do mkdir -p "$work/$t/corpus"; done
status=0
if [ "$parallel" = 1 ]; then
  for t in "${targets[@]}"; do run_one "$t"; done
  for t in "${targets[@]}"; do wait "$(cat "$work/$t.pid")" || status=1; done
else
  for t in "${targets[@]}"; do
    run_one "$t"
    wait "$(cat "$work/$t.pid")" || status=1
  done
fi

for t in "${targets[@]}"; do
  log="$work/$t.log"
  last=$(grep -E '^#[0-9]+.*(DONE|pulse|NEW|REDUCE|INITED)' "$log" | tail -1 || true)
  runs=$(grep -E '^stat::number_of_executed_units' "$log" | awk '{print $2}' || true)
  echo "fuzz: $t: ${runs:-?} executions; last: ${last:-none}"
  if grep -qE 'ERROR: (libFuzzer|AddressSanitizer)|Fatal error|invariant broken' "$log"; then
    status=1
    echo "fuzz: $t FAILED:" >&2
    grep -E 'ERROR|Fatal error|invariant broken|Test unit written' "$log" | head -10 >&2
    echo "fuzz: reproduce with SWIFT_BACKTRACE=enable=no $bin/$t $work/$t/crash-…" >&2
  fi
done
exit $status
