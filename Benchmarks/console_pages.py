#!/usr/bin/env python3
"""Server time of the consoles' main pages on a large graph (the 1M-user generated one).

Starts piam-admind on a COPY of the database (loopback, trusted header), writes a few hundred
audited operations through the API so the audit log has rows, then fetches each page N times
on one keep-alive connection and reports p50/p99 of the server's own time (the Server-Timing
header piam-admind sets on every console page) and of the client's round trip.

    python3 Benchmarks/console_pages.py --bin .build/release --db /tmp/piam-bench-1M.db [--n 200]

The 1M-user database is written by Benchmarks/run.sh (or piamctl demo --orgs 10000 --users
1000000 --resources 100000). Prints a Markdown table; JSON to /tmp/piam-console-pages.json.
"""
import argparse
import http.client
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time


def percentile(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=".build/release")
    ap.add_argument("--db", default="/tmp/piam-bench-1M.db")
    ap.add_argument("--n", type=int, default=200)
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="piam-console-pages.")
    db = os.path.join(work, "piam.db")
    shutil.copyfile(args.db, db)
    for ext in ("-wal", "-shm"):
        if os.path.exists(args.db + ext):
            shutil.copyfile(args.db + ext, db + ext)
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    log = open(os.path.join(work, "admind.log"), "w")
    t0 = time.monotonic()
    proc = subprocess.Popen([os.path.join(args.bin, "piam-admind"), "--db", db, "--listen", f"127.0.0.1:{port}",
                             "--trusted-header", "X-Forwarded-User"], stdout=log, stderr=log)
    try:
        while True:
            try:
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                c.request("GET", "/admin/v1/openapi.json")
                if c.getresponse().status == 200:
                    break
            except OSError:
                pass
            if proc.poll() is not None:
                sys.exit("piam-admind exited: " + open(os.path.join(work, "admind.log")).read())
            time.sleep(0.2)
        print(f"piam-admind ready in {time.monotonic() - t0:.1f} s", flush=True)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

        def call(method, path, user, body=None):
            headers = {"X-Forwarded-User": user}
            if body is not None:
                headers["Content-Type"] = "application/json"
            conn.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
            r = conn.getresponse()
            data = r.read()
            return r.status, r.getheader("Server-Timing"), data

        # Audit rows: suspend and reactivate agents of the first partner, as its admin.
        status, _, body = call("GET", "/admin/v1/users?org=p00000-r1b1&limit=200", "u0000001")
        agents = [u["id"] for u in json.loads(body)["items"] if u["id"] != "u0000001"]
        assert agents, body[:300]
        for a in agents:
            call("POST", f"/admin/v1/users/{a}/suspend", "u0000001")
            call("POST", f"/admin/v1/users/{a}/reactivate", "u0000001")
        pages = [
            ("people list (partner admin, its org)", "u0000001", "/console/people"),
            ("people list (business, a region)", "hq.admin", "/console/people?org=p00000-r1"),
            ("people search by id prefix (business)", "hq.admin", "/console/people?q=u05000"),
            ("people search by name prefix (business)", "hq.admin", "/console/people?q=User%2077"),
            ("people search, nothing matches: the name/e-mail scan (business)", "hq.admin", "/console/people?q=nobody-matches"),
            ("person page (partner admin)", "u0000001", f"/console/people/{agents[0]}"),
            ("partner page (business)", "hq.admin", "/console/orgs/p00000"),
            ("partners list (business)", "hq.admin", "/console/partners"),
            ("dashboard (business)", "hq.admin", "/console/dashboard"),
            ("audit page (business)", "hq.admin", "/console/audit"),
            ("audit page (partner admin)", "u0000001", "/console/audit"),
        ]
        rows = []
        for name, user, path in pages:
            server, client = [], []
            status, _, body = call("GET", path, user)
            assert status == 200, f"{path}: {status} {body[:300]!r}"
            n = args.n if "scan" not in name else max(20, args.n // 10)
            for _ in range(n):
                t = time.perf_counter()
                status, timing, _ = call("GET", path, user)
                client.append((time.perf_counter() - t) * 1000)
                assert status == 200 and timing and timing.startswith("app;dur="), (status, timing)
                server.append(float(timing.split("=")[1]))
            rows.append({"page": name, "path": path, "as": user, "n": n,
                         "server_p50_ms": percentile(server, 50), "server_p99_ms": percentile(server, 99),
                         "client_p50_ms": percentile(client, 50), "client_p99_ms": percentile(client, 99)})
            print(f"{name}: server p50 {rows[-1]['server_p50_ms']:.2f} ms, p99 {rows[-1]['server_p99_ms']:.2f} ms", flush=True)
        print()
        print("| page | as | server p50 | server p99 | round trip p50 | n |")
        print("| --- | --- | --- | --- | --- | --- |")
        for r in rows:
            print(f"| {r['page']} (`{r['path']}`) | {r['as']} | {r['server_p50_ms']:.2f} ms | {r['server_p99_ms']:.2f} ms | "
                  f"{r['client_p50_ms']:.2f} ms | {r['n']} |")
        with open("/tmp/piam-console-pages.json", "w") as f:
            json.dump(rows, f, indent=2)
    finally:
        proc.terminate()
        proc.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
