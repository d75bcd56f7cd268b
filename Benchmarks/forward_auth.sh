#!/usr/bin/env bash
# Forward-auth and AuthZEN through piamd's HTTP face, against baselines measured in the same run:
#   Benchmarks/forward_auth.sh [--seconds S] [--reps N] [--conns "1 16 64"] [--out DIR] [--bin DIR]
#   [--only "nginx caddy authzen"]
#   (--bin: take piamd and piamctl from DIR, already built in release, instead of building them;
#    --only: run just these parts)
#
#  nginx (worker_processes 1, Config/nginx-piam.conf's auth location; piamd's HTTP face on a
#  Unix socket), each configuration serving the same static file, interleaved rep by rep:
#    alone        no auth_request
#    internal     auth_request to an internal location answering 200
#    piam-allow   auth_request to piamd, an identity piamd allows
#    piam-deny    auth_request to piamd, an identity piamd denies (out_of_scope)
#    eval-allow   POST /access/v1/evaluation proxied to piamd (allowed): AuthZEN on a kept Unix
#                 socket connection, measured the same way as forward-auth
#  Caddy (forward_auth as in Config/Caddyfile): alone, forward_auth to a Caddy site answering 200,
#  forward_auth to piamd (allow).
#  AuthZEN: POST /access/v1/evaluation (allow, deny) against GET /healthz, wrk straight at piamd
#  (loopback TCP), on kept connections; and the same evaluation and a forward-auth request sent
#  down the general path (X-PIAM-Min-Revision: 0: the pre-issue-20 code) against the fast path.
#
#  wrk -t1 -cN -d S --latency; medians over the reps of req/s and p50; piamd's CPU per request
#  from /proc/PID/stat (utime+stime) around each run, and the proxy's (nginx's worker, Caddy);
#  the connections piamd accepted per run
#  (piam_http_connections_accepted_total). TSV of every run and the summary go to --out.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=5 reps=5 conns="1 16 64" out=/tmp/piam-forward-auth build=1 bin=.build/release only="nginx caddy authzen"
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) seconds=$2; shift 2 ;;
    --reps) reps=$2; shift 2 ;;
    --conns) conns=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --bin) bin=$2; build=0; shift 2 ;;
    --only) only=$2; shift 2 ;;
    -h|--help) sed -n 2,24p "$0"; exit 0 ;;
    *) echo "forward_auth.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
mkdir -p "$out"

need=()
for pkg in wrk nginx caddy curl libsqlite3-dev libsystemd-dev pkg-config; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  echo "forward_auth.sh: installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq "${need[@]}" >/dev/null
fi
# Debian starts nginx and caddy services after installing them; this script runs its own on
# other ports.
[ "$build" = 1 ] && swift build -c release --product piamd && swift build -c release --product piamctl
B=$(cd "$bin" && pwd)
w=$(mktemp -d /tmp/piam-fa.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

"$B/piamctl" demo --db "$w/demo.db" >/dev/null
# An allowed reader of a claim, and another partner's admin denied it (partner isolation).
claim=CLM-00001
allow=$("$B/piamctl" who-can --db "$w/demo.db" read "claim:$claim" --json | python3 -c 'import json,sys; d=json.load(sys.stdin); print((d.get("users") or d.get("subjects") or d["items"])[0])')
deny=bluesky-agency-admin
routes='[{"method": "GET,HEAD", "path": "/claims/{id}", "action": "read", "type": "claim", "id": "{id}"}]'
hz=$(getconf CLK_TCK)
for who in allow deny general; do
  subject=$allow; [ "$who" = deny ] && subject=$deny
  cat >"$w/eval-$who.lua" <<EOF
wrk.method = "POST"
wrk.body = '{"subject":{"type":"user","id":"$subject"},"action":{"name":"read"},"resource":{"type":"claim","id":"$claim"}}'
wrk.headers["Content-Type"] = "application/json"
EOF
done

start_piamd() {  # $1: http.listen
  PIAMD_FORWARD_AUTH_ROUTES="$routes" "$B/piamd" --db "$w/demo.db" --socket "$w/p.sock" --http "$1" >"$w/piamd.log" 2>&1 &
  piamd=$!
  pids+=("$piamd")
  for _ in $(seq 200); do
    if [[ "$1" == unix:* ]]; then curl -sf --unix-socket "${1#unix:}" http://x/healthz >/dev/null 2>&1 && return; else curl -sf "http://$1/healthz" >/dev/null 2>&1 && return; fi
    kill -0 "$piamd" || { cat "$w/piamd.log"; exit 1; }
    sleep 0.05
  done
  echo "piamd did not answer /healthz"; cat "$w/piamd.log"; exit 1
}
cpu_ticks() { awk '{print $14 + $15}' "/proc/$piamd/stat"; }
# The proxy's own CPU (nginx's worker, Caddy), where one runs in front: what the subrequest costs it.
proxy_pid=
proxy_ticks() { if [ -n "$proxy_pid" ]; then awk '{print $14 + $15}' "/proc/$proxy_pid/stat"; else echo 0; fi; }
accepted() {  # piam_http_connections_accepted_total, less the scrape's own connection
  local m
  if [ -n "${piam_unix:-}" ]; then m=$(curl -s --unix-socket "$piam_unix" http://x/metrics); else m=$(curl -s "http://$piam_tcp/metrics"); fi
  echo "$m" | awk '/^piam_http_connections_accepted_total/ {print $2}'
}

# One wrk run: config name, connections, URL, extra wrk args; appends a TSV row.
run() {
  local name=$1 c=$2 url=$3; shift 3
  local t0 a0 p0 t1 a1 p1 text
  t0=$(cpu_ticks); a0=$(accepted); p0=$(proxy_ticks)
  text=$(wrk -t1 -c"$c" -d"${seconds}s" --latency "$@" "$url")
  t1=$(cpu_ticks); a1=$(accepted); p1=$(proxy_ticks)
  python3 - "$name" "$c" "$((t1 - t0))" "$hz" "$((${a1%.*} - ${a0%.*} - 1))" "$text" "$((p1 - p0))" >>"$out/runs.tsv" <<'PY'
import re, sys
name, c, ticks, hz, acc, text, pticks = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), sys.argv[6], int(sys.argv[7])
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
total = int(re.search(r"(\d+) requests in", text).group(1))
m = re.search(r"50%\s+([\d.]+)(us|ms|s|m)\b", text)
if not m: sys.exit(f"no p50 in wrk's output:\n{text}")
p50 = float(m.group(1)) * {"us": 1, "ms": 1000, "s": 1e6, "m": 6e7}[m.group(2)]
non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
cpu = ticks / hz * 1e6 / max(total, 1)
pcpu = pticks / hz * 1e6 / max(total, 1)
print(f"{name}\t{c}\t{rps:.0f}\t{p50:.0f}\t{cpu:.2f}\t{acc}\t{total}\t{non2xx.group(1) if non2xx else 0}\t{pcpu:.2f}")
PY
}

printf 'config\tconns\treq_s\tp50_us\tpiamd_cpu_us_per_req\tpiamd_accepted\trequests\tnon2xx\tproxy_cpu_us_per_req\n' >"$out/runs.tsv"

# ---- nginx ---------------------------------------------------------------------------------
start_piamd "unix:$w/h.sock"
part() { [[ " $only " == *" $1 "* ]]; }
piam_unix=$w/h.sock piam_tcp=
mkdir -p "$w/nginx/tmp" "$w/www/claims"
echo "upstream page" >"$w/www/claims/$claim"
snippet=$(sed -n '/^upstream piam_http/,$p' Config/nginx-piam.conf \
  | sed -e "s#/run/piam/http.sock#$w/h.sock#" -e 's#\$remote_user#$http_x_test_identity#' \
        -e "s#listen 80;#listen 127.0.0.1:18083;#" \
        -e "s#proxy_pass http://127.0.0.1:8080;#root $w/www;#")
cat >"$w/nginx/nginx.conf" <<EOF
$( [ "$(id -u)" = 0 ] && echo "user root;" )
worker_processes 1;
pid $w/nginx/nginx.pid;
error_log $w/nginx/error.log;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $w/nginx/tmp/body; proxy_temp_path $w/nginx/tmp/proxy;
    fastcgi_temp_path $w/nginx/tmp/fastcgi; uwsgi_temp_path $w/nginx/tmp/uwsgi; scgi_temp_path $w/nginx/tmp/scgi;
    default_type text/plain;
    server { listen 127.0.0.1:18081; location / { root $w/www; } }
    server {
        listen 127.0.0.1:18082;
        location = /_ok { internal; return 200; }
        location / { auth_request /_ok; root $w/www; }
    }
$snippet
    # AuthZEN evaluations through nginx to piamd's socket, on the same kept connections.
    server {
        listen 127.0.0.1:18084;
        location = /access/v1/evaluation {
            proxy_pass http://piam_http;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
EOF
nginx -p "$w/nginx" -c "$w/nginx/nginx.conf" -g 'daemon off;' &
pids+=($!)
for _ in $(seq 100); do curl -sf "http://127.0.0.1:18081/claims/$claim" >/dev/null 2>&1 && break; sleep 0.05; done
proxy_pid=$(pgrep -P "${pids[-1]}" nginx | head -1)  # the one worker
# Sanity: each configuration answers as it should.
check() { local code; code=$(curl -s -o /dev/null -w '%{http_code}' -H "X-Test-Identity: $2" "$1"); [ "$code" = "$3" ] || { echo "$1 as $2: $code, expected $3"; cat "$w/nginx/error.log"; exit 1; }; }
check "http://127.0.0.1:18081/claims/$claim" x 200
check "http://127.0.0.1:18082/claims/$claim" x 200
check "http://127.0.0.1:18083/claims/$claim" "$allow" 200
check "http://127.0.0.1:18083/claims/$claim" "$deny" 403
curl -s -X POST -H 'Content-Type: application/json' "http://127.0.0.1:18084/access/v1/evaluation" \
  -d "{\"subject\":{\"type\":\"user\",\"id\":\"$allow\"},\"action\":{\"name\":\"read\"},\"resource\":{\"type\":\"claim\",\"id\":\"$claim\"}}" \
  | grep -q '"decision":true' || { echo "AuthZEN through nginx did not allow"; cat "$w/nginx/error.log"; exit 1; }

part nginx && echo "== nginx: ${reps} reps × conns {$conns} × 4 configurations, ${seconds} s each"
part nginx && for r in $(seq "$reps"); do
  for c in $conns; do
    run nginx-alone "$c" "http://127.0.0.1:18081/claims/$claim"
    run nginx-internal "$c" "http://127.0.0.1:18082/claims/$claim"
    run nginx-piam-allow "$c" "http://127.0.0.1:18083/claims/$claim" -H "X-Test-Identity: $allow"
    run nginx-piam-deny "$c" "http://127.0.0.1:18083/claims/$claim" -H "X-Test-Identity: $deny"
    run nginx-eval-allow "$c" "http://127.0.0.1:18084/access/v1/evaluation" -s "$w/eval-allow.lua"
  done
done

# ---- Caddy ---------------------------------------------------------------------------------
cat >"$w/Caddyfile" <<EOF
{
    admin off
    auto_https off
    storage file_system $w/caddy-data
}
http://127.0.0.1:18091 {
    root * $w/www
    file_server
}
http://127.0.0.1:18092 {
    forward_auth 127.0.0.1:18094 {
        uri /ok
    }
    root * $w/www
    file_server
}
http://127.0.0.1:18093 {
    forward_auth unix/$w/h.sock {
        uri /forward-auth
        header_up X-Forwarded-User {http.request.header.X-Test-Identity}
        copy_headers X-PIAM-Subject X-PIAM-Org X-PIAM-Revision
        transport http {
            keepalive_idle_conns_per_host 256
        }
    }
    root * $w/www
    file_server
}
http://127.0.0.1:18094 {
    respond 200
}
EOF
HOME=$w XDG_DATA_HOME=$w/caddy-data XDG_CONFIG_HOME=$w/caddy-config caddy run --config "$w/Caddyfile" --adapter caddyfile >"$w/caddy.log" 2>&1 &
pids+=($!)
for _ in $(seq 200); do curl -sf "http://127.0.0.1:18091/claims/$claim" >/dev/null 2>&1 && break; sleep 0.05; done
proxy_pid=${pids[-1]}
check "http://127.0.0.1:18092/claims/$claim" x 200
check "http://127.0.0.1:18093/claims/$claim" "$allow" 200
part caddy && echo "== Caddy: ${reps} reps × conns {$conns} × 3 configurations"
part caddy && for r in $(seq "$reps"); do
  for c in $conns; do
    run caddy-alone "$c" "http://127.0.0.1:18091/claims/$claim"
    run caddy-internal "$c" "http://127.0.0.1:18092/claims/$claim"
    run caddy-piam-allow "$c" "http://127.0.0.1:18093/claims/$claim" -H "X-Test-Identity: $allow"
  done
done
cleanup; pids=(); proxy_pid=

# ---- AuthZEN straight at piamd ----------------------------------------------------------------
start_piamd 127.0.0.1:18181
piam_unix= piam_tcp=127.0.0.1:18181
# X-PIAM-Min-Revision (0: any graph) sends a request down the general path — swift-nio's HTTP
# pipeline and HTTPFace, the code every request took before issue 20: before/after in one run.
echo 'wrk.headers["X-PIAM-Min-Revision"] = "0"' >>"$w/eval-general.lua"
fa=(-H "X-Forwarded-User: $allow" -H "X-Original-URI: /claims/$claim")
part authzen && echo "== AuthZEN: ${reps} reps × conns {$conns} × evaluation allow/deny vs /healthz"
part authzen && for r in $(seq "$reps"); do
  for c in $conns; do
    run authzen-healthz "$c" "http://127.0.0.1:18181/healthz"
    run authzen-eval-allow "$c" "http://127.0.0.1:18181/access/v1/evaluation" -s "$w/eval-allow.lua"
    run authzen-eval-deny "$c" "http://127.0.0.1:18181/access/v1/evaluation" -s "$w/eval-deny.lua"
    run authzen-eval-general "$c" "http://127.0.0.1:18181/access/v1/evaluation" -s "$w/eval-general.lua"
    run direct-fa-fast "$c" "http://127.0.0.1:18181/forward-auth" "${fa[@]}"
    run direct-fa-general "$c" "http://127.0.0.1:18181/forward-auth" "${fa[@]}" -H "X-PIAM-Min-Revision: 0"
  done
done

echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); $(nginx -v 2>&1 | cut -d/ -f2), caddy $(caddy version | cut -d' ' -f1); $(date -u +%Y-%m-%dT%H:%MZ)"
python3 - "$out/runs.tsv" <<'PY' | tee "$out/summary.txt"
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
med = {}
for key in {(r["config"], int(r["conns"])) for r in rows}:
    rs = [r for r in rows if (r["config"], int(r["conns"])) == key]
    med[key] = {f: statistics.median(float(r[f]) for r in rs) for f in ("req_s", "p50_us", "piamd_cpu_us_per_req", "piamd_accepted", "non2xx", "requests", "proxy_cpu_us_per_req")}
conns = sorted({k[1] for k in med})
def table(title, base, configs, cpu, proxy=False):
    print(f"\n{title} (medians; ratios against {base} in the same run)")
    print(f"{'configuration':<22}{'conns':>6}{'req/s':>10}{'ratio':>8}{'p50 µs':>9}{'p50 ×':>8}" + (f"{'piamd µs/req':>14}{'accepted':>10}" if cpu else "") + (f"{'proxy µs/req':>14}" if proxy else ""))
    for c in conns:
        b = med.get((base, c))
        for name in configs:
            m = med.get((name, c))
            if not m or not b: continue
            line = f"{name:<22}{c:>6}{m['req_s']:>10.0f}{m['req_s']/b['req_s']:>8.2f}{m['p50_us']:>9.0f}{m['p50_us']/b['p50_us']:>8.2f}"
            if cpu and (name.split("-")[1] in ("piam", "eval", "healthz", "fa")):
                line += f"{m['piamd_cpu_us_per_req']:>14.2f}{m['piamd_accepted']:>10.0f}"
            elif cpu and proxy:
                line += f"{'':>14}{'':>10}"
            if proxy:
                line += f"{m['proxy_cpu_us_per_req']:>14.2f}"
            print(line)
table("nginx", "nginx-alone", ["nginx-alone", "nginx-internal", "nginx-piam-allow", "nginx-piam-deny", "nginx-eval-allow"], True, True)
table("Caddy", "caddy-alone", ["caddy-alone", "caddy-internal", "caddy-piam-allow"], True, True)
table("AuthZEN on piamd's HTTP face", "authzen-healthz", ["authzen-healthz", "authzen-eval-allow", "authzen-eval-deny", "authzen-eval-general"], True)
table("forward-auth straight at piamd: fast path vs the general path (before issue 20)", "direct-fa-general", ["direct-fa-general", "direct-fa-fast"], True)
PY
