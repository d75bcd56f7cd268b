#!/usr/bin/env bash
# Usage recording's cost on the 1M-user graph, against piamd without it in the same run:
#   Benchmarks/usage_cost.sh [--db PATH] [--seconds S] [--reps N] [--bin DIR] [--out DIR]
#   [--no-day]
#   (--bin: piamd, piamctl, piam-bench and piam-scale already built in release in DIR;
#    --no-day: skip the simulated day, ~15 minutes of writes on this machine kind)
#
#  1. piam-scale usage (in-process, no daemon): a check(utf8:) against the same check with its
#     facts and LoopUsage.record (what piamd does per decision with usage.path set), cold and
#     warm, interleaved batches; one event loop's tally memory with 1M people active in one
#     flush interval; a simulated day (1M people, 4 active minutes each, 3 features) written as
#     1,440 one-minute flushes into a usage database: its size.
#  2. piamd itself, usage off and on alternately, --reps times each (piamd restarted for each
#     run, on the same graph): piam-bench load one at a time (1 connection, depth 1: p50) and
#     pipelined (8 connections × 32 in flight: decisions/s, and piamd's CPU per decision from
#     /proc/PID/stat). Medians; on/off ratios.
set -euo pipefail
cd "$(dirname "$0")/.."

db=/tmp/piam-bench-1M.db seconds=5 reps=3 out=/tmp/piam-usage-cost bin="" day=1
while [ $# -gt 0 ]; do
  case "$1" in
    --db) db=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --reps) reps=$2; shift 2 ;;
    --bin) bin=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --no-day) day=0; shift ;;
    -h|--help) sed -n 2,16p "$0"; exit 0 ;;
    *) echo "usage_cost.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
mkdir -p "$out"
if [ -z "$bin" ]; then
  swift build -c release
  bin=.build/release
fi

if [ ! -f "$db" ]; then
  echo "== writing the 1M-user graph to $db (piamctl demo --orgs 10000 --users 1000000 --resources 100000)"
  "$bin/piamctl" demo --db "$db" --force --orgs 10000 --users 1000000 --resources 100000 >/dev/null
fi
# A large write left in the graph's WAL (a graph written before imports emptied it, another
# program's writes) is read back whole by piamd whenever its once-a-second verification opens
# the file anew while no other connection holds it (SQLite rebuilds the WAL index): half a core
# for the 883 MB WAL one earlier run left. Checkpoint it first, so the runs measure piamd.
python3 -c 'import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); c.execute("PRAGMA wal_checkpoint(TRUNCATE)"); c.close()' "$db"
echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); $(date -u +%Y-%m-%dT%H:%MZ); load $(cut -d' ' -f1-3 /proc/loadavg)"

echo "== in-process (piam-scale usage)"
day_flag=(); [ "$day" = 0 ] && day_flag=(--skip-day)
"$bin/piam-scale" usage --db "$db" --usage-db "$out/day.db" "${day_flag[@]}" --json > "$out/inprocess.json"

echo "== piamd, usage off / on, $reps reps"
run=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$run"' EXIT
: > "$out/runs.tsv"
for rep in $(seq 1 "$reps"); do
  for mode in off on; do
    rm -f "$run/usage.db"* "$run/d.sock"
    env=()
    [ "$mode" = on ] && env=(PIAMD_USAGE_PATH="$run/usage.db" PIAMD_USAGE_FLUSH_MS=1000)
    env "${env[@]}" "$bin/piamd" --db "$db" --socket "$run/d.sock" > "$run/piamd.log" 2>&1 &
    pid=$!
    for _ in $(seq 1 600); do [ -S "$run/d.sock" ] && "$bin/piamctl" status --socket "$run/d.sock" >/dev/null 2>&1 && break; sleep 0.1; done
    one=$("$bin/piam-bench" run --socket "$run/d.sock" --db "$db" --connections 1 --depth 1 --seconds "$seconds" --json --quiet)
    t0=$(awk '{print $14 + $15}' "/proc/$pid/stat")
    many=$("$bin/piam-bench" run --socket "$run/d.sock" --db "$db" --connections 8 --depth 32 --seconds "$seconds" --json --quiet)
    t1=$(awk '{print $14 + $15}' "/proc/$pid/stat")
    rss=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")
    kill -TERM "$pid"; wait "$pid" || true
    size=0; [ -f "$run/usage.db" ] && size=$(stat -c %s "$run/usage.db")
    python3 - "$rep" "$mode" "$rss" "$size" "$one" "$many" "$((t1 - t0))" "$(getconf CLK_TCK)" >> "$out/runs.tsv" <<'PY'
import json, sys
rep, mode, rss, size = sys.argv[1:5]
one, many = json.loads(sys.argv[5]), json.loads(sys.argv[6])
# piamd's CPU (utime + stime) per decision during the pipelined run: what usage costs the
# daemon, beside its throughput (on two shared cores it varied as much: 1.5-2.5 us).
cpu = int(sys.argv[7]) / int(sys.argv[8]) * 1e9 / max(1, many["decisions"])
print("\t".join(map(str, [rep, mode, one["p50_us"], one["requests_per_second"], many["decisions_per_second"], many["p50_us"], rss, size, f"{cpu:.1f}"])))
PY
    echo "  rep $rep usage $mode: $(tail -1 "$out/runs.tsv")"
  done
done

python3 - "$out" <<'PY'
import json, statistics, sys
out = sys.argv[1]
r = json.load(open(f"{out}/inprocess.json"))
print("in-process, per check (medians of 4,096-check batches):")
for k, name in (("", "cold"), ("warm_", "warm")):
    print(f"  {name}: check {r[k + 'check_utf8_median_ns']:.0f} ns; with its facts {r[k + 'check_utf8_facts_median_ns']:.0f} ns "
          f"(attribution +{r[k + 'attribution_cost_ns']:.1f} ns); and the tally {r[k + 'check_utf8_facts_record_median_ns']:.0f} ns "
          f"(tally +{r[k + 'tally_cost_ns']:.1f} ns, target <= 15 ns; usage on +{r[k + 'usage_on_cost_ns']:.1f} ns)")
print(f"memory: {r['memory_keys']:.0f} keys ({r['memory_people']:.0f} people in one interval): tables {r['memory_table_mb']:.1f} MB, RSS +{r['memory_rss_growth_mb']:.1f} MB")
if 'day_usage_db_mb' in r:
    print(f"a simulated day: {r['day_feature_rows_written']:.0f} feature rows in 1,440 flushes, {r['day_write_seconds']:.1f} s of writes, usage database {r['day_usage_db_mb']:.1f} MB")
rows = [l.rstrip("\n").split("\t") for l in open(f"{out}/runs.tsv") if l.strip()]
def med(mode, col): return statistics.median(float(x[col]) for x in rows if x[1] == mode)
p50_off, p50_on = med("off", 2), med("on", 2)
dps_off, dps_on = med("off", 4), med("on", 4)
print("piamd through the socket (medians over the reps):")
print(f"  one at a time p50: off {p50_off:.1f} us, on {p50_on:.1f} us = {p50_on / p50_off:.3f}x")
print(f"  pipelined (8 x 32): off {dps_off:,.0f}/s, on {dps_on:,.0f}/s = {dps_on / dps_off:.3f}x (target cost <= 5 %)")
cpu_off, cpu_on = med("off", 8), med("on", 8)
print(f"  piamd CPU per pipelined decision: off {cpu_off:.0f} ns, on {cpu_on:.0f} ns = {cpu_on / cpu_off:.3f}x")
print(f"  peak RSS: off {med('off', 6) / 1024:.0f} MB, on {med('on', 6) / 1024:.0f} MB; usage database after the runs {med('on', 7) / 1048576:.2f} MB")
PY
echo "JSON and TSV: $out"
