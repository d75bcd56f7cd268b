#!/bin/bash
# piam-admind under a real systemd 252 beside piamd (in a throwaway namespace, see sandbox.sh):
#   the unit verifies clean with an exposure of at most 2.0; systemctl start reaches active
#   (running) with STATUS once the socket is bound; a write through the API (the proxy's header
#   on its Unix socket) is served by piamd at the revision it answered; piam-admind can write
#   the database directory and piamd cannot; a SIGSTOP starves the watchdog and systemd
#   restarts piam-admind, which serves again.
# Usage: admind-test.sh PIAMD PIAMCTL PIAM_ADMIND REPO_ROOT
set -euo pipefail
PIAMD=$1; PIAMCTL=$2; ADMIND=$3; REPO=$4
HERE=$(cd "$(dirname "$0")" && pwd)
WORK=$(mktemp -d /tmp/piam-admind-test.XXXXXX)
SB="$HERE/sandbox.sh"
sb() { "$SB" run "$WORK" "$@"; }
fail() { echo "FAIL: $*" >&2; sb journalctl -u piam-admind -u piamd --no-pager -n 80 >&2 || true; exit 1; }
trap '"$SB" stop "$WORK"; rm -rf "$WORK"' EXIT

"$SB" start "$WORK" >/dev/null
echo "systemd is running (pid $(cat "$WORK/pid"))"
put() { sb sh -c "mkdir -p \"\$(dirname '$2')\" && cat > '$2' && chmod $3 '$2'" < "$1"; }
put "$PIAMD" /usr/local/bin/piamd 0755
put "$PIAMCTL" /usr/local/bin/piamctl 0755
put "$ADMIND" /usr/local/bin/piam-admind 0755
put "$REPO/Config/piamd.json" /etc/piam/piamd.json 0644
put "$REPO/Config/piam-admind.json" /etc/piam/piam-admind.json 0644
put "$REPO/systemd/piamd.service" /etc/systemd/system/piamd.service 0644
put "$REPO/systemd/piamd.socket" /etc/systemd/system/piamd.socket 0644
put "$REPO/systemd/piam-admind.service" /etc/systemd/system/piam-admind.service 0644
sb mkdir -p /etc/systemd/system/piam-admind.service.d
sb sh -c 'printf "[Service]\nWatchdogSec=3s\n" > /etc/systemd/system/piam-admind.service.d/test.conf'
sb systemctl daemon-reload

out=$(sb systemd-analyze verify /etc/systemd/system/piam-admind.service 2>&1) || fail "verify: $out"
[ -z "$out" ] || fail "systemd-analyze verify is not clean: $out"
score=$(sb systemd-analyze security --offline=true /etc/systemd/system/piam-admind.service 2>&1 | sed -n 's/.*Overall exposure level for piam-admind.service: \([0-9.]*\).*/\1/p')
echo "verify: clean; security exposure: $score"
awk "BEGIN { exit !($score <= 2.0) }" || fail "exposure $score > 2.0"

sb mkdir -p /var/lib/piam
sb piamctl demo --db /var/lib/piam/piam.db --force >/dev/null
sb systemctl start piamd.socket piamd.service piam-admind.service || fail "systemctl start"
[ "$(sb systemctl is-active piam-admind.service)" = active ] || fail "not active"
status=$(sb systemctl show -p StatusText --value piam-admind.service)
echo "STATUS: $status"
case "$status" in "serving revision "*) ;; *) fail "unexpected STATUS: $status";; esac

# A write through the API, then piamd serves that revision.
api() { sb curl -sS --unix-socket /run/piam-admin/admin.sock -H 'X-Forwarded-User: nina.hq' "$@"; }
reply=$(api -X POST http://localhost/admin/v1/users/carl.claims/suspend) || fail "API call"
rev=$(printf '%s' "$reply" | sed -n 's/.*"revision":\([0-9]*\).*/\1/p')
[ -n "$rev" ] || fail "no revision in $reply"
sb piamctl check --socket /run/piam/piamd.sock --min-revision "$rev" carl.claims read claim:CLM-00001 >/dev/null 2>&1 \
  && fail "piamd still allows a suspended user at revision $rev"
denied=$(sb piamctl check --socket /run/piam/piamd.sock --min-revision "$rev" carl.claims read claim:CLM-00001 --json 2>/dev/null || true)
case "$denied" in *subject_inactive*) ;; *) fail "piamd at revision $rev did not answer subject_inactive: $denied";; esac
echo "write: revision $rev, piamd denies subject_inactive"

# piam-admind wrote the database (above); piamd, beside it, sees it read-only.
apid=$(sb systemctl show -p MainPID --value piam-admind.service)
dpid=$(sb systemctl show -p MainPID --value piamd.service)
if sb nsenter -t "$dpid" -m touch /var/lib/piam/piam.db 2>/dev/null; then fail "piamd can write the database"; fi

# Watchdog: SIGSTOP, systemd restarts it, it serves again.
sb kill -STOP "$apid"
for _ in $(seq 1 150); do
  n=$(sb systemctl show -p NRestarts --value piam-admind.service)
  [ "$n" -ge 1 ] && [ "$(sb systemctl is-active piam-admind.service)" = active ] && break
  sleep 0.2
done
[ "$n" -ge 1 ] || fail "watchdog did not restart piam-admind (NRestarts=$n)"
for _ in $(seq 1 50); do api http://localhost/admin/v1/me >/dev/null 2>&1 && break; sleep 0.2; done
api http://localhost/admin/v1/me | grep -q '"user":"nina.hq"' || fail "not serving after the watchdog restart"
echo "watchdog: restarted (NRestarts=$n), serving again"
sb systemctl stop piam-admind.service piamd.service
echo "PASS"
