#!/bin/bash
# piamd under a real systemd 252 (sb a throwaway namespace, see sandbox.sh):
#   units verify clean; systemctl start reaches active (running) with STATUS; systemctl reload
#   returns once the new graph is served, and fails (unit still active, serving) when it failed;
#   kill -STOP starves the watchdog, systemd restarts piamd (NRestarts >= 1) and it serves again.
# Usage: systemd-test.sh PIAMD PIAMCTL REPO_ROOT
set -euo pipefail
PIAMD=$1; PIAMCTL=$2; REPO=$3
HERE=$(cd "$(dirname "$0")" && pwd)
WORK=$(mktemp -d /tmp/piam-systemd-test.XXXXXX)
SB="$HERE/sandbox.sh"
sb() { "$SB" run "$WORK" "$@"; }
fail() { echo "FAIL: $*" >&2; sb journalctl -u piamd --no-pager -n 60 >&2 || true; exit 1; }
trap '"$SB" stop "$WORK"; rm -rf "$WORK"' EXIT

"$SB" start "$WORK" >/dev/null
echo "systemd is running (pid $(cat "$WORK/pid"))"

# Copy files in through the namespace: the sandbox has its own /tmp, so paths under the host's
# /tmp (a CI clone, say) are not visible inside.
put() { sb sh -c "mkdir -p \"\$(dirname '$2')\" && cat > '$2' && chmod $3 '$2'" < "$1"; }
put "$PIAMD" /usr/local/bin/piamd 0755
put "$PIAMCTL" /usr/local/bin/piamctl 0755
put "$REPO/Config/piamd.json" /etc/piam/piamd.json 0644
put "$REPO/systemd/piamd.service" /etc/systemd/system/piamd.service 0644
put "$REPO/systemd/piamd.socket" /etc/systemd/system/piamd.socket 0644
# A shorter watchdog so the test does not wait 10 s.
sb mkdir -p /etc/systemd/system/piamd.service.d
sb sh -c 'printf "[Service]\nWatchdogSec=3s\n" > /etc/systemd/system/piamd.service.d/test.conf'
sb systemctl daemon-reload

out=$(sb systemd-analyze verify /etc/systemd/system/piamd.service /etc/systemd/system/piamd.socket 2>&1) || fail "verify: $out"
[ -z "$out" ] || fail "systemd-analyze verify is not clean: $out"
echo "verify: clean"
score=$(sb systemd-analyze security --offline=true /etc/systemd/system/piamd.service 2>&1 | sed -n 's/.*Overall exposure level for piamd.service: \([0-9.]*\).*/\1/p')
echo "security exposure: $score"
awk "BEGIN { exit !($score <= 2.0) }" || fail "exposure $score > 2.0"

sb mkdir -p /var/lib/piam
sb piamctl demo --db /var/lib/piam/piam.db --force >/dev/null
sb systemctl start piamd.socket piamd.service || fail "systemctl start"
[ "$(sb systemctl is-active piamd.service)" = active ] || fail "not active"
[ "$(sb systemctl show -p SubState --value piamd.service)" = running ] || fail "not running"
status=$(sb systemctl show -p StatusText --value piamd.service)
echo "STATUS: $status"
case "$status" in "serving revision "*users*) ;; *) fail "unexpected STATUS: $status";; esac
sb piamctl check --socket /run/piam/piamd.sock carl.claims read claim:CLM-00001 || fail "check through the socket"
sb journalctl -u piamd --no-pager -o cat | grep "adopted_from_systemd=true" >/dev/null || fail "the socket unit's socket was not adopted"
# journald got the priorities: notice and above includes "listening", excludes info lines.
sb journalctl -u piamd --no-pager -o cat -p notice | grep listening >/dev/null || fail "no notice-priority line"
if sb journalctl -u piamd --no-pager -o cat -p notice | grep "graph loaded" >/dev/null; then fail "info line logged above its priority"; fi
# The daemon sees the database directory read-only.
mainpid=$(sb systemctl show -p MainPID --value piamd.service)
if sb nsenter -t "$mainpid" -m touch /var/lib/piam/piam.db 2>/dev/null; then fail "the daemon can write the database"; fi

# Reload: RELOADING=1 ... READY=1, and still serving.
sb piamctl import --db /var/lib/piam/piam.db - <<<'{"users":[{"id":"carl.claims","org":"hq-claims","name":"Carl Reloaded"}]}' >/dev/null
rev=$(sb piamctl status --db /var/lib/piam/piam.db --json | sed -n 's/.*"revision" : \([0-9]*\).*/\1/p')
# ExecReload= is `piamctl reload`: systemctl reload returns once piamd serves the new graph.
sb systemctl reload piamd.service || fail "systemctl reload"
[ "$(sb systemctl is-active piamd.service)" = active ] || fail "not active after reload"
sb journalctl -u piamd --no-pager -o cat | grep "cause=sighup" >/dev/null || fail "no SIGHUP reload logged"
# No --min-revision: the reload itself must have brought the revision.
got=$(sb piamctl status --socket /run/piam/piamd.sock --json | grep -o '"revision" *: *[0-9]*' | head -1 | grep -o '[0-9]*$')
[ "$got" -ge "$rev" ] || fail "after systemctl reload piamd serves revision $got, not $rev"
sb piamctl check --socket /run/piam/piamd.sock carl.claims read claim:CLM-00001 || fail "check after reload"
echo "reload: ok (revision $rev)"

# Usage: piamd writes /var/lib/piam-usage/usage.db (its second state directory, the only one it
# may write), and piamctl reports carl.claims's checks from it.
usage_seen() {
  local out
  out=$(sb piamctl usage user carl.claims --db /var/lib/piam/piam.db --usage /var/lib/piam-usage --json 2>&1) || return 1
  case "$out" in *'"last_activity" : "'*) return 0 ;; *) return 1 ;; esac
}
for _ in $(seq 1 100); do usage_seen && break; sleep 0.1; done
usage_seen || fail "no usage recorded in /var/lib/piam-usage: $(sb ls -la /var/lib/private/piam-usage 2>&1; sb piamctl usage user carl.claims --db /var/lib/piam/piam.db --usage /var/lib/piam-usage --json 2>&1)"
echo "usage: recorded in /var/lib/piam-usage"

# A reload that fails: the database unreadable to piamd's user. systemctl reload fails, the unit
# stays active, piamd keeps serving its last good graph; once it is readable again it recovers.
mode=$(sb stat -c %a /var/lib/piam/piam.db)
sb chmod 000 /var/lib/piam/piam.db
if sb systemctl reload piamd.service 2>/dev/null; then fail "systemctl reload succeeded on a broken database"; fi
[ "$(sb systemctl is-active piamd.service)" = active ] || fail "not active after a failed reload"
sb journalctl -u piamd --no-pager -o cat | grep "piamctl: reload failed" >/dev/null || fail "piamctl reload did not say why the reload failed"
sb piamctl check --socket /run/piam/piamd.sock carl.claims read claim:CLM-00001 || fail "not serving after a failed reload"
sb chmod "$mode" /var/lib/piam/piam.db
sb systemctl reload piamd.service || fail "systemctl reload after the database was mended"
state=$(sb piamctl status --socket /run/piam/piamd.sock --json | grep -o '"state" *: *"[a-z]*"' | head -1 | grep -o '[a-z]*"$' | tr -d '"')
[ "$state" = serving ] || fail "state $state after the database was mended"
echo "failed reload: systemctl reload failed, still serving; mended: serving again"

# Watchdog: a stopped process sends no WATCHDOG=1; systemd kills and restarts it.
pid=$(sb systemctl show -p MainPID --value piamd.service)
sb kill -STOP "$pid"
for _ in $(seq 1 150); do
    n=$(sb systemctl show -p NRestarts --value piamd.service)
    [ "$n" -ge 1 ] && [ "$(sb systemctl is-active piamd.service)" = active ] && break
    sleep 0.2
done
[ "$n" -ge 1 ] || fail "watchdog did not restart piamd (NRestarts=$n)"
newpid=$(sb systemctl show -p MainPID --value piamd.service)
[ "$newpid" != "$pid" ] || fail "same pid after restart"
for _ in $(seq 1 50); do
    sb piamctl check --socket /run/piam/piamd.sock carl.claims read claim:CLM-00001 >/dev/null 2>&1 && break
    sleep 0.2
done
sb piamctl check --socket /run/piam/piamd.sock carl.claims read claim:CLM-00001 || fail "not serving after the watchdog restart"
echo "watchdog: restarted (NRestarts=$n), serving again"

sb systemctl stop piamd.service
[ "$(sb systemctl is-active piamd.service)" != active ] || fail "still active after stop"
echo "PASS"
