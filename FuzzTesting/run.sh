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

targets=(FuzzWire FuzzAuthZEN FuzzForwardAuth FuzzHTTPFastPath FuzzImport)
declare -A dict=([FuzzWire]=wire [FuzzAuthZEN]=authzen [FuzzForwardAuth]=forward-auth [FuzzHTTPFastPath]=http-fast-path
                 [FuzzImport]=import)
[ -n "$only" ] && targets=("$only")

# SwiftPM passes --sanitize=fuzzer and --sanitize=address to the compiler as two options in a
# random order, and the compiler keeps only the last: some modules came out with coverage and no
# AddressSanitizer, others the reverse (FuzzWire carried 544 coverage counters, its own, of
# 49,076). `-Xswiftc -sanitize=fuzzer,address` comes last and names both. lld links them so that
# libFuzzer sees every module's counters.
build=(swift build -c debug --sanitize=fuzzer --sanitize=address -Xswiftc -sanitize=fuzzer,address -Xswiftc -use-ld=lld)
echo "fuzz: building (${build[*]})"
# Only the fuzz products: the root package's own executables are no use here.
for t in "${targets[@]}"; do
  "${nice_cmd[@]}" "${build[@]}" --product "$t" 2>&1 | grep -E 'error|complete' | tail -3
done
bin=$("${build[@]}" --show-bin-path)
# Every target must carry the coverage counters of the code it fuzzes, not only its own.
for t in "${targets[@]}"; do
  size=$(readelf -SW "$bin/$t" | awk '$2 == "__sancov_cntrs" { print $6 }')
  counters=$(( 16#${size:-0} ))
  if [ "${counters:-0}" -lt 10000 ]; then
    echo "fuzz: $t has ${counters:-no} coverage counters: a stale object was built without -sanitize=fuzzer;" \
         "remove FuzzTesting/.build/*/debug and run again" >&2
    exit 1
  fi
done

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
  grep -q 'Loaded 1 PC tables' "$log" && pcs=$(grep -Eo 'Loaded 1 PC tables \([0-9]+ PCs\)' "$log" | grep -Eo '[0-9]+ PCs' | head -1)
  runs=$(grep -E '^stat::number_of_executed_units' "$log" | awk '{print $2}' || true)
  echo "fuzz: $t: ${runs:-?} executions (${pcs:-? PCs} instrumented); last: ${last:-none}"
  if grep -qE 'ERROR: (libFuzzer|AddressSanitizer)|Fatal error|invariant broken' "$log"; then
    status=1
    echo "fuzz: $t FAILED:" >&2
    grep -E 'ERROR|Fatal error|invariant broken|Test unit written' "$log" | head -10 >&2
    echo "fuzz: reproduce with SWIFT_BACKTRACE=enable=no $bin/$t $work/$t/crash-…" >&2
  fi
done
exit $status
