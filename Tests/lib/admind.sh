# Shared by the scripts that run a tool against the real piam-admind (Tests/schemathesis,
# Tests/scim, Tests/console): source it, then
#   port=$(free_port)
#   start_admind BIN DB PORT LOG [piam-admind arguments…]   # sets admind_pid
#   wait_admind PORT LOG PID…                               # until the API answers; fails if a PID exits

# A free loopback TCP port.
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Starts piam-admind on DB, listening on 127.0.0.1:PORT, logging to LOG.
start_admind() {
  local bin=$1 db=$2 port=$3 log=$4
  shift 4
  "$bin/piam-admind" --db "$db" --listen "127.0.0.1:$port" "$@" >"$log" 2>&1 &
  admind_pid=$!
}

# Waits (30 s at most) until piam-admind on PORT serves its OpenAPI document; exits the script
# with the logs when one of the PIDs (the daemons it started) has exited meanwhile.
wait_admind() {
  local port=$1 log=$2
  shift 2
  for _ in $(seq 1 300); do
    curl -fsS "http://127.0.0.1:$port/admin/v1/openapi.json" >/dev/null 2>&1 && return 0
    for p in "$@"; do
      kill -0 "$p" 2>/dev/null || { echo "a daemon exited:" >&2; cat "$log" >&2; exit 1; }
    done
    sleep 0.1
  done
  echo "piam-admind did not answer on 127.0.0.1:$port:" >&2
  cat "$log" >&2
  exit 1
}
