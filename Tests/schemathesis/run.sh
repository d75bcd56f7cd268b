#!/usr/bin/env bash
# schemathesis against the live piam-admind, from the committed OpenAPI document
# (Docs/openapi/admin-v1.json): every check (no 5xx, every response conforms to its schema,
# schema-valid requests accepted, schema-violating ones rejected, 405 for other methods, …).
#
#   Tests/schemathesis/run.sh [--bin .build/debug] [--examples 30] [--seed N]
#
# Runs on a fresh demo database, authenticated as the business's administrator with an API
# token (piamctl token create), so every route is exercised by someone allowed to act.
# Needs: schemathesis (PyPI), built piam-admind and piamctl. Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/../.."
. Tests/lib/admind.sh
bin=.build/debug examples=30 seed=${PIAM_SCHEMATHESIS_SEED:-20261130}
while [ $# -gt 0 ]; do
  case "$1" in
    --bin) bin=$2; shift 2 ;;
    --examples) examples=$2; shift 2 ;;
    --seed) seed=$2; shift 2 ;;
    *) echo "usage: $0 [--bin DIR] [--examples N] [--seed N]" >&2; exit 2 ;;
  esac
done
work=$(mktemp -d /tmp/piam-schemathesis.XXXXXX)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
"$bin/piamctl" demo --db "$work/piam.db" >/dev/null
token=$("$bin/piamctl" token create --db "$work/piam.db" --user nina.hq --name schemathesis --json \
  | python3 -c 'import json, sys; print(json.load(sys.stdin)["secret"])')
port=$(free_port)
# A usage directory piamd has not written to yet: the usage reports answer (no use), not 404.
mkdir "$work/usage"
PIAM_ADMIND_USAGE_PATHS="$work/usage" start_admind "$bin" "$work/piam.db" "$port" "$work/admind.log"
pid=$admind_pid
wait_admind "$port" "$work/admind.log" "$pid"
status=0
schemathesis --config-file Tests/schemathesis/schemathesis.toml run Docs/openapi/admin-v1.json \
  --url "http://127.0.0.1:$port" -H "Authorization: Bearer $token" \
  --checks all --max-examples "$examples" --seed "$seed" --no-color || status=$?
if ! kill -0 "$pid" 2>/dev/null; then
  echo "schemathesis: piam-admind died during the run:" >&2; cat "$work/admind.log" >&2; status=1
fi
if grep -q "unexpected error" "$work/admind.log"; then
  echo "schemathesis: piam-admind logged unexpected errors:" >&2; grep "unexpected error" "$work/admind.log" >&2; status=1
fi
exit "$status"
