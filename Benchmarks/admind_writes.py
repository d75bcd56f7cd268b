#!/usr/bin/env python3
"""Administrative writes through piam-admind against today's piamctl path, in one run.

    Benchmarks/admind_writes.py [--bin .build/release] [--users 1000000] [--baseline 6]
                                [--single 600] [--clients 8] [--seconds 10] [--db FILE]
                                [--keep] [--json OUT]

What it does, on loopback in a temporary directory (removed afterwards unless --keep):
  1. writes a generated graph (`piamctl demo --orgs N/100 --users N --resources N/10`), or
     copies --db FILE (a graph written earlier; the copy is what gets written to);
  2. baseline: --baseline single administrative writes with today's `piamctl` path
     (`piamctl user suspend U --as ADMIN --db DB`, then `user reactivate U`, alternating, on
     distinct users), one process each: wall time and peak RSS (wait4's ru_maxrss);
  3. starts `piam-admind --db DB --listen 127.0.0.1:PORT --trusted-header X-Forwarded-User`:
     time from exec to the first 200 on GET /admin/v1/me, VmRSS and VmHWM from /proc;
  4. single writes end to end over one keep-alive HTTP/1.1 connection, one at a time
     (--single of them): pairs on distinct users, `POST users/U/suspend` then
     `POST users/U/reactivate`, and `POST users/V/grants {"role","scope"}` then
     `DELETE users/V/grants/ROLE?scope=S`; each write's time from the request's first byte
     sent to its response read: p50, p99;
  5. sustained: --clients threads, each with its own keep-alive connection and its own users
     (the same cycle of four operations), for --seconds: writes/s, p50 and p99 under load;
  6. checks that every write answered 200 (201 for grants) and that the audit log grew by
     exactly the number of writes sent (sqlite3 `SELECT count(*) FROM audit`), prints a table
     with the ratios against the piamctl baseline of the same run, and piam-admind's RSS
     after the load.

The actor is the graph's host administrator (the user holding host-admin: `hq.admin` in a
generated graph, `nina.hq` in the curated demo); targets are active partner users without an
admin role, in orgs whose partner is active, and the granted role (catalog-reader, which
every partner is entitled to) is one they do not hold at their org. Each pair of writes leaves
the graph as it found it, so a run can be repeated on the same --db.

The client is Python (http.client): its own cost per request (~0.1-0.3 ms of CPU on this
2-core machine, shared with the daemon) is inside the figures, which are therefore an upper
bound of what piam-admind itself takes.

Needs: a release build of piamctl and piam-admind (`swift build -c release --product
piam-admind --product piamctl`), Python 3 (stdlib only), ~1-2 GB in /tmp at 1M users.
"""
import argparse, http.client, json, os, shutil, socket, sqlite3, statistics, subprocess, sys, tempfile, threading, time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HEADER = "X-Forwarded-User"
ROLE = "catalog-reader"


def pct(values, p):
    v = sorted(values)
    return v[min(len(v) - 1, int(round(p / 100 * (len(v) - 1))))]


def proc_status_kb(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def cpu_seconds(pid):
    """User + system CPU time of a process so far (utime and stime of /proc/PID/stat)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def audit_count(db):
    c = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        return c.execute("SELECT count(*) FROM audit").fetchone()[0]
    finally:
        c.close()


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def pick_targets(db, n):
    """(host admin, [(user, org)]): n active partner users fit for suspend/reactivate and for a
    grant/revoke of ROLE at their own org."""
    c = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    admin = c.execute("SELECT a.user FROM assignments a JOIN users u ON u.id = a.user "
                      "WHERE a.role = 'host-admin' AND u.status = 'active' ORDER BY a.id LIMIT 1").fetchone()
    if not admin:
        sys.exit("no active host administrator (host-admin holder) in the database")
    orgs = {r[0]: (r[1], r[2], r[3]) for r in c.execute("SELECT id, parent, kind, status FROM orgs")}

    def usable(org):
        # Every org up to the partners container active and of kind partner, and the role
        # entitled to the partner (entitlements sit at partner roots).
        chain = []
        while org in orgs and orgs[org][1] == "partner":
            chain.append(org)
            if orgs[org][2] != "active":
                return False
            org = orgs[org][0]
        return bool(chain)

    entitled = {r[0] for r in c.execute("SELECT org FROM entitlements WHERE role = ?", (ROLE,))}
    out = []
    # Spread over the table: every k-th user by id.
    total = c.execute("SELECT count(*) FROM users").fetchone()[0]
    step = max(1, total // (n * 3))
    rows = c.execute(
        "SELECT u.id, u.org FROM users u WHERE u.status = 'active' AND u.valid_until IS NULL "
        "AND NOT EXISTS (SELECT 1 FROM assignments a WHERE a.user = u.id "
        "  AND (a.role IN ('host-admin', 'partner-admin') OR (a.role = ?1 AND a.scope = u.org)))", (ROLE,))
    for i, (uid, org) in enumerate(rows):
        if i % step:
            continue
        if not usable(org):
            continue
        root = org
        while orgs[orgs[root][0]][1] == "partner":
            root = orgs[root][0]
        if root not in entitled:
            continue
        out.append((uid, org))
        if len(out) == n:
            break
    c.close()
    if len(out) < n:
        sys.exit(f"only {len(out)} usable target users, {n} needed")
    return admin[0], out


def ops_for(user, org):
    """The cycle of four writes on one user: (method, path, body, expected status)."""
    u = f"/admin/v1/users/{user}"
    return [("POST", f"{u}/suspend", None, 200), ("POST", f"{u}/reactivate", None, 200),
            ("POST", f"{u}/grants", {"role": ROLE, "scope": org}, 201),
            ("DELETE", f"{u}/grants/{ROLE}?scope={org}", None, 200)]


class Client:
    """One keep-alive HTTP/1.1 connection to piam-admind, acting as `actor`."""

    def __init__(self, port, actor):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.actor = actor

    def request(self, method, path, body=None):
        headers = {HEADER: self.actor}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        t0 = time.perf_counter()
        self.conn.request(method, path, body=data, headers=headers)
        r = self.conn.getresponse()
        payload = r.read()
        return r.status, time.perf_counter() - t0, payload

    def close(self):
        self.conn.close()


def run_baseline(piamctl, db, admin, targets, count):
    """count piamctl writes (suspend, reactivate alternating on distinct users): [(s, MB)]."""
    out = []
    for i in range(count):
        user, _ = targets[i // 2]
        verb = "suspend" if i % 2 == 0 else "reactivate"
        t0 = time.perf_counter()
        p = subprocess.Popen([piamctl, "user", verb, user, "--as", admin, "--db", db],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        _, status, ru = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t0
        p.returncode = os.waitstatus_to_exitcode(status)
        text = p.stdout.read().decode(errors="replace").strip()
        p.stdout.close()
        if p.returncode != 0:
            sys.exit(f"piamctl user {verb} {user} failed ({p.returncode}): {text}")
        out.append((wall, ru.ru_maxrss / 1024))
        print(f"  piamctl user {verb} {user}: {wall * 1000:.0f} ms, {ru.ru_maxrss / 1024:.0f} MB peak", file=sys.stderr)
    return out


def start_admind(binary, db, port, log):
    t0 = time.perf_counter()
    p = subprocess.Popen([binary, "--db", db, "--listen", f"127.0.0.1:{port}", "--trusted-header", HEADER,
                          "--log-level", "notice"], stdout=log, stderr=log)
    return p, t0


def wait_ready(p, t0, port, actor, log):
    while True:
        if p.poll() is not None:
            sys.exit(f"piam-admind exited ({p.returncode}): see {log.name}")
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            c.request("GET", "/admin/v1/me", headers={HEADER: actor})
            status = c.getresponse().status
            c.close()
            if status == 200:
                return time.perf_counter() - t0
            sys.exit(f"GET /admin/v1/me answered {status}")
        except OSError:
            pass
        if time.perf_counter() - t0 > 600:
            sys.exit("piam-admind did not become ready in 10 minutes")
        time.sleep(0.005)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default=os.path.join(REPO, ".build/release"))
    ap.add_argument("--users", type=int, default=1_000_000, help="users of the generated graph")
    ap.add_argument("--db", help="copy this graph instead of generating one (it is not written to)")
    ap.add_argument("--baseline", type=int, default=6, help="piamctl writes (suspend/reactivate pairs)")
    ap.add_argument("--single", type=int, default=600, help="single writes over HTTP, one at a time")
    ap.add_argument("--clients", type=int, default=8, help="concurrent clients of the sustained run")
    ap.add_argument("--seconds", type=float, default=10, help="length of the sustained run")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory (database, logs)")
    ap.add_argument("--json", help="write the figures as JSON here")
    a = ap.parse_args()
    piamctl, admind = os.path.join(a.bin, "piamctl"), os.path.join(a.bin, "piam-admind")
    for b in (piamctl, admind):
        if not os.access(b, os.X_OK):
            sys.exit(f"{b} is missing: swift build -c release --product piam-admind --product piamctl")
    d = tempfile.mkdtemp(prefix="piam-admind-bench-")
    db = os.path.join(d, "piam.db")
    log = open(os.path.join(d, "piam-admind.log"), "w")
    proc = None
    try:
        t = time.perf_counter()
        if a.db:
            src = sqlite3.connect(f"file:{a.db}?mode=ro", uri=True)
            dst = sqlite3.connect(db)
            src.backup(dst)
            dst.close(), src.close()
            print(f"copied {a.db} in {time.perf_counter() - t:.1f} s", file=sys.stderr)
        else:
            n = a.users
            subprocess.run([piamctl, "demo", "--db", db, "--force", "--orgs", str(max(10, n // 100)), "--users", str(n),
                            "--resources", str(max(10, n // 10))], check=True, stdout=subprocess.DEVNULL)
            print(f"graph of {n} users written in {time.perf_counter() - t:.1f} s: {db}", file=sys.stderr)
        users = sqlite3.connect(f"file:{db}?mode=ro", uri=True).execute("SELECT count(*) FROM users").fetchone()[0]

        pairs_single = (a.single + 1) // 2
        per_client = 64  # users per client in the sustained run, cycled
        need = a.baseline // 2 + 1 + pairs_single + a.clients * per_client
        admin, targets = pick_targets(db, need)
        base_targets, targets = targets[:a.baseline // 2 + 1], targets[a.baseline // 2 + 1:]
        single_targets, targets = targets[:pairs_single], targets[pairs_single:]
        print(f"actor {admin}; {need} target users", file=sys.stderr)

        # 1. Baseline: today's piamctl path.
        audit0 = audit_count(db)
        base = run_baseline(piamctl, db, admin, base_targets, a.baseline)
        if audit_count(db) - audit0 != a.baseline:
            sys.exit(f"piamctl: the audit log grew by {audit_count(db) - audit0}, not {a.baseline}")
        base_wall = [w for w, _ in base]
        base_p50 = statistics.median(base_wall)
        base_rss = max(m for _, m in base)

        # 2. piam-admind: time to ready and memory.
        port = free_port()
        proc, t0 = start_admind(admind, db, port, log)
        ready = wait_ready(proc, t0, port, admin, log)
        load = {"ready_s": ready, "vmrss_mb": proc_status_kb(proc.pid, "VmRSS") / 1024,
                "vmhwm_mb": proc_status_kb(proc.pid, "VmHWM") / 1024}
        print(f"piam-admind ready in {ready:.2f} s, VmRSS {load['vmrss_mb']:.0f} MB, VmHWM {load['vmhwm_mb']:.0f} MB",
              file=sys.stderr)

        audit1 = audit_count(db)
        sent = 0
        bad = []

        # 3. Single writes, one at a time, on one keep-alive connection.
        single = {"suspend": [], "reactivate": [], "grant": [], "revoke": []}
        names = ["suspend", "reactivate", "grant", "revoke"]
        c = Client(port, admin)
        cpu0 = cpu_seconds(proc.pid)
        for i in range(a.single):
            pair = i // 2
            user, org = single_targets[pair]
            kind = (pair % 2) * 2 + i % 2  # pairs alternate: suspend/reactivate, grant/revoke
            method, path, body, want = ops_for(user, org)[kind]
            status, dt, payload = c.request(method, path, body)
            sent += 1
            if status != want:
                bad.append((method, path, status, payload[:300]))
            single[names[kind]].append(dt)
        c.close()
        cpu_single = cpu_seconds(proc.pid) - cpu0
        all_single = [x for v in single.values() for x in v]

        # 4. Sustained: clients concurrent keep-alive connections for --seconds.
        lock = threading.Lock()
        lat_load, counts = [], []
        start = threading.Barrier(a.clients + 1)
        stop_at = [0.0]

        def worker(idx):
            mine = targets[idx * per_client:(idx + 1) * per_client]
            cl = Client(port, admin)
            lat, n, errs = [], 0, []
            start.wait()
            i = 0
            while time.perf_counter() < stop_at[0] or i % 2:  # never stop in the middle of a pair
                pair = i // 2
                user, org = mine[pair % len(mine)]
                kind = ((pair // len(mine)) % 2) * 2 + i % 2
                method, path, body, want = ops_for(user, org)[kind]
                status, dt, payload = cl.request(method, path, body)
                n += 1
                lat.append(dt)
                if status != want:
                    errs.append((method, path, status, payload[:300]))
                i += 1
            cl.close()
            with lock:
                lat_load.extend(lat)
                counts.append(n)
                bad.extend(errs)

        threads = [threading.Thread(target=worker, args=(k,)) for k in range(a.clients)]
        for th in threads:
            th.start()
        t_load = time.perf_counter()
        stop_at[0] = t_load + a.seconds
        cpu0 = cpu_seconds(proc.pid)
        start.wait()
        for th in threads:
            th.join()
        elapsed = time.perf_counter() - t_load
        cpu_load = cpu_seconds(proc.pid) - cpu0
        sent_load = sum(counts)
        sent += sent_load
        load["after_vmrss_mb"] = proc_status_kb(proc.pid, "VmRSS") / 1024
        load["after_vmhwm_mb"] = proc_status_kb(proc.pid, "VmHWM") / 1024

        # 5. Checks.
        grew = audit_count(db) - audit1
        ok = not bad and grew == sent
        figures = {
            "users": users, "actor": admin,
            "baseline_piamctl": {"writes": a.baseline, "wall_ms": [w * 1000 for w in base_wall], "p50_ms": base_p50 * 1000,
                                 "peak_rss_mb": base_rss},
            "admind_load": load,
            "single": {"writes": len(all_single), "p50_ms": pct(all_single, 50) * 1000, "p99_ms": pct(all_single, 99) * 1000,
                       "admind_cpu_ms_per_write": cpu_single * 1000 / len(all_single),
                       "by_operation": {k: {"p50_ms": pct(v, 50) * 1000, "p99_ms": pct(v, 99) * 1000} for k, v in single.items() if v}},
            "sustained": {"clients": a.clients, "seconds": elapsed, "writes": sent_load, "writes_per_s": sent_load / elapsed,
                          "p50_ms": pct(lat_load, 50) * 1000, "p99_ms": pct(lat_load, 99) * 1000,
                          "admind_cpu_ms_per_write": cpu_load * 1000 / sent_load},
            "checks": {"writes_sent": sent, "non_2xx": len(bad), "audit_rows_added": grew, "ok": ok},
        }
        s, l = figures["single"], figures["sustained"]
        piamctl_rate = 1 / base_p50
        rows = [
            ("piamctl write (process), p50", f"{base_p50 * 1000:.0f} ms", "1x", "-"),
            ("piamctl peak RSS per write", f"{base_rss:.0f} MB", "-", "-"),
            ("piam-admind start to ready", f"{ready:.2f} s", "-", "-"),
            ("piam-admind RSS after start", f"{load['vmrss_mb']:.0f} MB (peak {load['vmhwm_mb']:.0f})", "-", "-"),
            ("piam-admind RSS after the load", f"{load['after_vmrss_mb']:.0f} MB (peak {load['after_vmhwm_mb']:.0f})", "-", "-"),
            ("single write over HTTP, p50", f"{s['p50_ms']:.2f} ms", f"{base_p50 * 1000 / s['p50_ms']:.0f}x faster", "<= 5 ms"),
            ("single write over HTTP, p99", f"{s['p99_ms']:.2f} ms", f"{base_p50 * 1000 / s['p99_ms']:.0f}x faster", "<= 25 ms"),
            (f"{a.clients} clients, writes/s", f"{l['writes_per_s']:.0f}/s", f"{l['writes_per_s'] / piamctl_rate:.0f}x piamctl's",
             ">= 200/s"),
            (f"{a.clients} clients, p50 / p99", f"{l['p50_ms']:.1f} / {l['p99_ms']:.1f} ms", "-", "-"),
            ("piam-admind CPU per write", f"{s['admind_cpu_ms_per_write']:.2f} ms alone, {l['admind_cpu_ms_per_write']:.2f} loaded",
             "-", "-"),
        ]
        print(f"\nAdministrative writes on a graph of {users} users (actor {admin}; ratios against piamctl in this run)")
        print(f"{'':34s} {'figure':26s} {'vs piamctl':18s} target")
        for r in rows:
            print(f"{r[0]:34s} {r[1]:26s} {r[2]:18s} {r[3]}")
        for k, v in s["by_operation"].items():
            print(f"  single {k:11s} p50 {v['p50_ms']:6.2f} ms   p99 {v['p99_ms']:6.2f} ms")
        print(f"checks: {sent} writes sent over HTTP, {len(bad)} not 200/201; audit log grew by {grew}: "
              f"{'OK' if ok else 'MISMATCH'}")
        for b in bad[:5]:
            print(f"  {b}")
        if a.json:
            with open(a.json, "w") as f:
                json.dump(figures, f, indent=2)
        if not ok:
            sys.exit(1)
    finally:
        if proc and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
        log.close()
        if a.keep:
            print(f"kept {d}", file=sys.stderr)
        else:
            shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
