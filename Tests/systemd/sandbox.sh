#!/bin/bash
# Boots a real systemd (PID 1 of new PID + mount namespaces) on a throwaway overlay of /, so
# nothing it writes reaches the host. Technique: ../shared/notes/systemd-sandbox.md.
#
#   sandbox.sh start WORKDIR     boots it; prints the systemd pid; waits until it is running
#   sandbox.sh run WORKDIR CMD…  runs CMD inside (nsenter)
#   sandbox.sh stop WORKDIR      kills that systemd (SIGKILL ends everything in its namespace)
set -euo pipefail
cmd=$1; work=$2; shift 2
case "$cmd" in
start)
    mkdir -p "$work"
    cat > "$work/boot.sh" <<'BOOT'
#!/bin/bash
set -e
mount --make-rprivate /
B=$(mktemp -d /mnt/piam-sdbox.XXXXXX)
mount -t tmpfs tmpfs $B
mkdir -p $B/upper $B/work $B/root
mount -t overlay overlay -o lowerdir=/,upperdir=$B/upper,workdir=$B/work $B/root
mount -t proc proc $B/root/proc
mount --rbind /sys $B/root/sys
mount --rbind /dev $B/root/dev
mount -t tmpfs tmpfs $B/root/run
mount -t tmpfs tmpfs $B/root/tmp
cd $B/root
exec chroot . /usr/lib/systemd/systemd --system --log-target=kmsg --unit=multi-user.target
BOOT
    chmod +x "$work/boot.sh"
    mkdir -p /mnt
    setsid unshare -m -p -f "$work/boot.sh" </dev/null >"$work/boot.log" 2>&1 &
    upid=$!
    for _ in $(seq 1 100); do
        sd=$(pgrep -P "$upid" || true)
        if [ -n "$sd" ] && [ "$(readlink /proc/$sd/exe 2>/dev/null)" = /usr/lib/systemd/systemd ]; then break; fi
        sleep 0.1
    done
    [ -n "${sd:-}" ] || { echo "systemd did not start: $(cat "$work/boot.log")" >&2; exit 1; }
    echo "$sd" > "$work/pid"
    for i in $(seq 1 300); do
        state=$(nsenter -t "$sd" -m -p -r -w systemctl is-system-running 2>/dev/null || true)
        case "$state" in running|degraded) echo "$sd"; exit 0;; esac
        # Still "starting" after 20 s: some unrelated boot job is slow (seen on a loaded CI
        # machine). The manager is up and takes jobs; say which jobs wait, and go on.
        if [ "$state" = starting ] && [ "$i" -ge 100 ]; then
            echo "note: systemd still starting; pending jobs:" >&2
            nsenter -t "$sd" -m -p -r -w systemctl list-jobs --no-pager >&2 || true
            echo "$sd"
            exit 0
        fi
        sleep 0.2
    done
    echo "systemd did not reach running (state: $state)" >&2
    exit 1
    ;;
run)
    exec nsenter -t "$(cat "$work/pid")" -m -p -r -w "$@"
    ;;
stop)
    [ -f "$work/pid" ] && kill -KILL "$(cat "$work/pid")" 2>/dev/null || true
    ;;
esac
