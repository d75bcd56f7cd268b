#!/usr/bin/env python3
"""What-if on a large graph: how long piam-admind takes to answer a change that affects N people.

    Benchmarks/what_if.py [--bin .build/release] [--users 1000000] [--people 10000]
                          [--repeat 5] [--db FILE] [--keep] [--json OUT]

What it does, on loopback in a temporary directory (removed afterwards unless --keep):
  1. writes a generated graph (`piamctl demo --orgs N/100 --users N --resources N/10`), or
     copies --db FILE (the copy is what the daemon opens; nothing is written to it anyway);
  2. picks active partner roots, in id order, until their subtrees hold at least --people
     active users (sqlite3 over the copy);
  3. starts `piam-admind --db DB --listen 127.0.0.1:PORT --trusted-header X-Forwarded-User`
     and waits for GET /admin/v1/me;
  4. as the host administrator, POST /admin/v1/what-if, --repeat times each, with two changes
     to those partners: `org.suspend` of every root (everyone loses everything) and `org-grant`
     of `claims-viewer` with include_suborgs on every root (gains where not already held);
     time from the request's first byte to the whole answer read (the answer lists every
     person with every permission gained or lost: megabytes of JSON, included);
  5. checks: every answer 200 with would_commit true and the people it names at least the
     people counted for suspend; the database's revision and audit row count unchanged (a
     what-if writes nothing);
  6. once, `piamctl apply FILE --what-if --json --db DB` for the suspend change: the same
     answer from a process that loads the whole graph first (wall time, for comparison).

Needs: a release build of piamctl and piam-admind (`swift build -c release --product
piam-admind`, then `--product piamctl`), Python 3 (stdlib only), ~1-2 GB in /tmp at 1M users.
The client is Python's http.client; its JSON decoding is not in the timings (the body is read
as bytes, then decoded after the clock stops).
"""
import argparse, http.client, json, os, shutil, socket, sqlite3, statistics, subprocess, sys, tempfile, time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HEADER = "X-Forwarded-User"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def counts(db):
    c = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        rev = c.execute("SELECT seq FROM sqlite_sequence WHERE name = 'journal'").fetchone()
        return (rev[0] if rev else 0), c.execute("SELECT count(*) FROM audit").fetchone()[0]
    finally:
        c.close()


def pick(db, people):
    """(host admin, [partner roots], active users below them)."""
    c = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    admin = c.execute("SELECT a.user FROM assignments a JOIN users u ON u.id = a.user "
                      "WHERE a.role = 'host-admin' AND u.status = 'active' ORDER BY a.id LIMIT 1").fetchone()
    if not admin:
        sys.exit("no active host administrator in the database")
    orgs = {r[0]: (r[1], r[2]) for r in c.execute("SELECT id, parent, kind FROM orgs")}
    root_of = {}
    for o in orgs:
        r = o
        while r in orgs and orgs[r][1] == "partner" and orgs.get(orgs[r][0], (None, ""))[1] == "partner":
            r = orgs[r][0]
        root_of[o] = r if orgs[r][1] == "partner" else None
    per_root = {}
    for org, n in c.execute("SELECT org, count(*) FROM users WHERE status = 'active' GROUP BY org"):
        r = root_of.get(org)
        if r:
            per_root[r] = per_root.get(r, 0) + n
    active = [r[0] for r in c.execute("SELECT id FROM orgs WHERE kind = 'partner' AND status = 'active' "
                                      "AND parent IN (SELECT id FROM orgs WHERE kind = 'host') ORDER BY id")]
    roots, total = [], 0
    for r in active:
        if total >= people:
            break
        roots.append(r)
        total += per_root.get(r, 0)
    c.close()
    if total < people:
        sys.exit(f"only {total} active partner users in the graph, {people} wanted")
    return admin[0], roots, total


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default=os.path.join(REPO, ".build/release"))
    ap.add_argument("--users", type=int, default=1_000_000, help="users of the generated graph")
    ap.add_argument("--people", type=int, default=10_000, help="active people the change must reach")
    ap.add_argument("--repeat", type=int, default=5, help="what-if requests per change")
    ap.add_argument("--db", help="copy this graph instead of generating one")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    ap.add_argument("--json", help="write the figures as JSON here")
    a = ap.parse_args()
    piamctl, admind = os.path.join(a.bin, "piamctl"), os.path.join(a.bin, "piam-admind")
    for b in (piamctl, admind):
        if not os.access(b, os.X_OK):
            sys.exit(f"{b} is missing: swift build -c release --product piam-admind; swift build -c release --product piamctl")
    d = tempfile.mkdtemp(prefix="piam-what-if-bench-")
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
        admin, roots, reach = pick(db, a.people)
        print(f"actor {admin}; {len(roots)} partner roots with {reach} active people", file=sys.stderr)
        changes = {
            "suspend": [{"op": "org.suspend", "org": r} for r in roots],
            "org-grant": [{"op": "org-grant", "org": r, "role": "claims-viewer", "include_suborgs": True} for r in roots],
        }
        rev0, audit0 = counts(db)

        port = free_port()
        t0 = time.perf_counter()
        proc = subprocess.Popen([admind, "--db", db, "--listen", f"127.0.0.1:{port}", "--trusted-header", HEADER,
                                 "--log-level", "notice"], stdout=log, stderr=log)
        while True:
            if proc.poll() is not None:
                sys.exit(f"piam-admind exited ({proc.returncode}): see {log.name}")
            try:
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                c.request("GET", "/admin/v1/me", headers={HEADER: admin})
                if c.getresponse().status == 200:
                    c.close()
                    break
            except OSError:
                pass
            time.sleep(0.01)
        ready = time.perf_counter() - t0
        print(f"piam-admind ready in {ready:.2f} s", file=sys.stderr)

        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        figures = {}
        for name, ops in changes.items():
            times, answer = [], None
            body = json.dumps(ops).encode()
            for _ in range(a.repeat):
                t1 = time.perf_counter()
                conn.request("POST", "/admin/v1/what-if", body=body, headers={HEADER: admin, "Content-Type": "application/json"})
                r = conn.getresponse()
                payload = r.read()
                times.append(time.perf_counter() - t1)
                if r.status != 200:
                    sys.exit(f"{name}: what-if answered {r.status}: {payload[:300]!r}")
                answer = json.loads(payload)
                if not answer["would_commit"]:
                    sys.exit(f"{name}: would not commit: {answer['results']}")
            people = answer["people"]
            figures[name] = {
                "operations": len(ops), "considered": answer["considered"], "people_changed": len(people),
                "gained": sum(len(p["gained"]) for p in people), "lost": sum(len(p["lost"]) for p in people),
                "server_s": answer["seconds"], "bytes": len(payload),
                "min_s": min(times), "median_s": statistics.median(times), "max_s": max(times),
            }
            print(f"{name}: {figures[name]}", file=sys.stderr)
        conn.close()
        if figures["suspend"]["people_changed"] < reach:
            sys.exit(f"suspend: {figures['suspend']['people_changed']} people changed, {reach} expected at least")
        if counts(db) != (rev0, audit0):
            sys.exit(f"the database changed: revision/audit {counts(db)} after {rev0, audit0}")

        f = os.path.join(d, "suspend.json")
        with open(f, "w") as out:
            json.dump([dict(o, **{"as": admin}) for o in changes["suspend"]], out)
        t2 = time.perf_counter()
        p = subprocess.run([piamctl, "apply", f, "--what-if", "--json", "--db", db], capture_output=True)
        cli = time.perf_counter() - t2
        if p.returncode != 0:
            sys.exit(f"piamctl apply --what-if failed ({p.returncode}): {p.stderr[:300]!r}")
        cli_people = len(json.loads(p.stdout)["people"])
        if cli_people != figures["suspend"]["people_changed"]:
            sys.exit(f"piamctl found {cli_people} people, piam-admind {figures['suspend']['people_changed']}")

        print(f"\nWhat-if on a graph of {users} users ({len(roots)} partners, {reach} active people below them; "
              f"piam-admind, {a.repeat} requests each)")
        print("| change | people considered | people changed | gained | lost | answer (min / median / max) | in the service | JSON |")
        print("| --- | --- | --- | --- | --- | --- | --- | --- |")
        for name, x in figures.items():
            print(f"| {name} ×{x['operations']} | {x['considered']} | {x['people_changed']} | {x['gained']} | {x['lost']} | "
                  f"{x['min_s'] * 1000:.0f} / {x['median_s'] * 1000:.0f} / {x['max_s'] * 1000:.0f} ms | "
                  f"{x['server_s'] * 1000:.0f} ms | {x['bytes'] / 1e6:.1f} MB |")
        print(f"\npiamctl apply --what-if (loads the graph itself): {cli:.2f} s; nothing written (revision {rev0}, "
              f"{audit0} audit rows before and after)")
        if a.json:
            with open(a.json, "w") as out:
                json.dump({"users": users, "roots": len(roots), "reach": reach, "ready_s": ready, "figures": figures,
                           "piamctl_s": cli}, out, indent=2)
    finally:
        if proc and proc.poll() is None:
            proc.terminate()
            proc.wait()
        log.close()
        if a.keep:
            print(f"kept {d}", file=sys.stderr)
        else:
            shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
