#!/usr/bin/env python3
"""Chaos run of `docpipe serve`: N jobs created over HTTP with Idempotency-Keys (some
requests repeated, a few reusing a key with another body), SIGKILLs of the server at random
moments and restarts on the same data folder, and a concurrent reader running
`docpipe jobs list` throughout. Then the invariants are checked against the database:

- every 202 has a job, and every repeat of a key answered with the same job;
- one job per Idempotency-Key, none stored for a request that was refused;
- every job reaches a final status (a valid document: completed or needs_review);
- status histories follow the table and stop at the first final status;
- no stage ran after a final status (execution histories and the servers' logs);
- no second Finalize; executions consistent with job statuses; no journal left open;
- the server never died on its own and the reader never failed (nor panicked on a
  closed pipe); nothing in the data folder is open to group or others.

Prints the figures; exits 1 on any violation. Loopback only; every loop is bounded.
Usage: bench/chaos.py --bin target/release/docpipe [-n 1000] [-k 5] [--seed S]"""

import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import servelib  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bin", required=True, help="the docpipe binary")
    ap.add_argument("-n", "--jobs", type=int, default=1000, help="jobs (distinct keys)")
    ap.add_argument("-k", "--kills", type=int, default=5, help="SIGKILLs of the server")
    ap.add_argument("-c", "--clients", type=int, default=8, help="concurrent clients")
    ap.add_argument("--repeat-rate", type=float, default=0.1,
                    help="share of requests that repeat an earlier key with the same body")
    ap.add_argument("--conflict-rate", type=float, default=0.01,
                    help="share of requests that reuse a key with another body (409)")
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--workers", type=int, default=2, help="the server's execution workers")
    ap.add_argument("--fault-probability", type=float, default=0.0,
                    help="also inject transient stage faults (fault_injection)")
    ap.add_argument("--deadline", type=float, default=1800, help="seconds for the whole run")
    ap.add_argument("--keep", action="store_true", help="keep the data folder and logs")
    args = ap.parse_args()

    seed = args.seed if args.seed is not None else random.randrange(1 << 32)
    rng = random.Random(seed)
    binary = os.path.abspath(args.bin)
    work = tempfile.mkdtemp(prefix="docpipe-chaos-")
    home = os.path.join(work, "home")
    os.makedirs(home)
    print(f"chaos: {args.jobs} jobs, {args.kills} kills, {args.clients} clients, seed {seed}, "
          f"data in {work}", flush=True)
    started = time.monotonic()
    deadline = started + args.deadline

    env = {
        "DOCPIPE_LOG": "warn,docpipe_core=info,docpipe_local::faults=info",
        # Every job runs every stage (no content-hash shortcut between identical files).
        "DOCPIPE_DEDUPE_TTL_SECS": "0",
        "DOCPIPE_WORKERS": str(args.workers),
    }
    if args.fault_probability > 0:
        env.update({
            "DOCPIPE_ALLOW_FAULT_INJECTION": "true",
            "DOCPIPE_FAULT_INJECTION_PROBABILITY": str(args.fault_probability),
            "DOCPIPE_FAULT_INJECTION_MODE": "transient",
            "DOCPIPE_FAULT_INJECTION_SEED": str(seed),
        })
    api_key = servelib.create_key(binary, home, "chaos")
    server = servelib.Server(binary, home, env, work)
    server.start()
    violations = servelib.Violations()
    pdf = open(os.path.join(ROOT, "fixtures/invoices/EN16931_Einfach.pdf"), "rb").read()

    # The requests: one per job, then repeats of earlier keys (same body) and a few
    # conflicts (same key, another body), shuffled in among them.
    requests = [("first", i) for i in range(args.jobs)]
    extra = []
    for _ in range(int(args.jobs * args.repeat_rate)):
        extra.append(("repeat", rng.randrange(args.jobs)))
    for _ in range(int(args.jobs * args.conflict_rate)):
        extra.append(("conflict", rng.randrange(args.jobs)))
    for item in extra:
        # After the key's first request, somewhere later in the run.
        requests.insert(rng.randrange(item[1] + 1, len(requests) + 1), item)
    bodies = {}

    def body(kind, i):
        if kind == "conflict":
            return servelib.document_body(pdf, f"conflict-{i}.pdf")
        if i not in bodies:
            bodies[i] = servelib.document_body(pdf, f"chaos-{i}.pdf")
        return bodies[i]

    lock = threading.Lock()
    answers = Counter()
    attempts = {}  # request id -> (kind, key index, answer)
    key_jobs = {}  # key index -> set of job ids answered
    answered = [0]
    next_req = [0]

    def client(cid):
        c = servelib.Client(server)
        while time.monotonic() < deadline:
            with lock:
                if next_req[0] >= len(requests):
                    break
                r = next_req[0]
                next_req[0] += 1
            kind, i = requests[r]
            data = body(kind, i)
            if kind == "conflict":
                # Only once the key's own request was accepted: otherwise the two race and
                # either may rightly win.
                for _ in range(6000):
                    with lock:
                        if i in key_jobs or time.monotonic() > deadline:
                            break
                    time.sleep(0.05)
            for attempt in range(1000):
                if time.monotonic() > deadline:
                    break
                server.up.wait(timeout=60)
                rid = f"k{i}-r{r}-a{attempt}"
                headers = {"x-api-key": api_key, "content-type": "application/json",
                           "idempotency-key": f"chaos-{seed}-{i}", "x-request-id": rid}
                try:
                    status, h, raw = c.request("POST", "/api/v1/jobs", data, headers)
                except Exception:  # noqa: BLE001 - killed server: retry the same request
                    with lock:
                        answers["no answer (server down)"] += 1
                        attempts[rid] = (kind, i, None)
                    time.sleep(0.05 + rng.random() * 0.1)
                    continue
                ok, v = servelib.envelope_ok(status, raw)
                code = (v or {}).get("error", {}).get("code") if status >= 300 and v else None
                with lock:
                    answers[f"{status} {code or ''}".strip()] += 1
                    attempts[rid] = (kind, i, status)
                if not ok:
                    violations.add("answer without the envelope", f"{rid}: {status} {raw[:120]!r}")
                if status == 202:
                    if kind == "conflict":
                        violations.add("conflicting body accepted", f"key {i} ({rid})")
                    jid = ((v or {}).get("data") or {}).get("job_id") if ok else None
                    if jid:
                        with lock:
                            key_jobs.setdefault(i, set()).add(jid)
                    break
                if status == 409 and kind == "conflict":
                    break
                if status in (429, 503):
                    wait = min(float(h.get("retry-after", "1") or 1), 1.0)
                    time.sleep(wait * (0.2 + rng.random() * 0.3))
                    continue
                violations.add("unexpected answer", f"{kind} {rid}: {status} {raw[:200]!r}")
                break
            with lock:
                answered[0] += 1
        c.close()

    # The concurrent reader: `docpipe jobs list` in another process, all the time.
    reader_stop = threading.Event()
    reader = Counter()

    def closed_pipe():
        # A reader that stops reading (`docpipe jobs list | head -1`): EPIPE must end the
        # command quietly, not panic it.
        p = subprocess.Popen([binary, "--home", home, "jobs", "list", "--limit", "100"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             env=servelib.clean_env({}), cwd=work)
        p.stdout.close()
        try:
            _, err = p.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            p.kill()
            p.communicate()
            violations.add("reader failed", "docpipe jobs list hung on a closed pipe")
            return
        reader["closed-pipe runs"] += 1
        text = err.decode(errors="replace")
        if "panicked" in text or p.returncode < 0 or p.returncode == 101:
            violations.add("reader panicked on a closed pipe",
                           f"exit {p.returncode}: {text.strip()[:200]}")

    def read_loop():
        while not reader_stop.is_set() and time.monotonic() < deadline:
            try:
                out = subprocess.run([binary, "--home", home, "jobs", "list", "--limit", "5"],
                                     capture_output=True, text=True, timeout=60,
                                     env=servelib.clean_env({}), cwd=work)
            except subprocess.TimeoutExpired:
                reader["hung"] += 1
                violations.add("reader failed", "docpipe jobs list hung for 60 s")
                continue
            reader["runs"] += 1
            if reader["runs"] % 10 == 0:
                closed_pipe()
            if out.returncode != 0:
                reader["failures"] += 1
                what = (f"killed by signal {-out.returncode}" if out.returncode < 0
                        else f"exit {out.returncode}")
                violations.add("reader failed", f"{what}: {out.stderr.strip()[:200]}")

    # The killer: SIGKILL when the run reaches random points of its creates, the last one
    # while the backlog is processed; restart on the same home right away.
    kill_log = []
    kill_points = sorted(rng.sample(range(max(1, len(requests) // 20), len(requests)),
                                    max(0, min(args.kills - 1, len(requests) - 1))))
    creates_done = threading.Event()
    final_kill_done = threading.Event()

    def kill_now(moment):
        for _ in range(100):
            if server.kill():
                break
            # It had crashed by itself: wait for its watcher's restart, then kill that.
            server.up.wait(timeout=30)
        else:
            violations.add("run did not settle", "no server left to kill")
            return
        kill_log.append(moment)
        time.sleep(rng.random() * 0.2)
        server.restart()

    def killer():
        for point in kill_points:
            while answered[0] < point and not creates_done.is_set():
                if time.monotonic() > deadline:
                    return
                time.sleep(0.01)
            time.sleep(rng.random() * 0.3)
            kill_now(f"after {answered[0]} of {len(requests)} requests answered")

    threads = [threading.Thread(target=client, args=(n,)) for n in range(args.clients)]
    rt = threading.Thread(target=read_loop, daemon=True)
    kt = threading.Thread(target=killer)
    rt.start()
    kt.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    creates_done.set()
    kt.join()
    t_created = time.monotonic() - started
    print(f"creates answered in {t_created:.1f} s", flush=True)

    # Wait for every job to finish, through the API; the last kill lands mid-backlog.
    poll = servelib.Client(server)

    def unfinished():
        n = 0
        for status in servelib.NON_FINAL:
            try:
                s, _, raw = poll.request("GET", f"/api/v1/jobs?status={status}&limit=100",
                                         headers={"x-api-key": api_key})
            except Exception:  # noqa: BLE001
                return None
            if s == 200:
                ok, v = servelib.envelope_ok(s, raw)
                n += len(v["data"]["jobs"]) if ok and "jobs" in v["data"] else 0
            elif s != 429:
                return None
        return n

    kills_left = args.kills - len(kill_log)
    settled_at = None
    while time.monotonic() < deadline:
        server.up.wait(timeout=60)
        n = unfinished()
        if n is None:
            time.sleep(0.2)
            continue
        if n > 0 and kills_left > 0:
            time.sleep(rng.random() * 0.3)
            kill_now(f"with {n}+ jobs unfinished after the creates")
            kills_left -= 1
            continue
        if n == 0 and kills_left > 0:
            # Nothing left to interrupt: kill anyway, so the restart path is exercised.
            kill_now("with no job unfinished")
            kills_left -= 1
            continue
        if n == 0:
            settled_at = time.monotonic()
            break
        time.sleep(0.2)
    poll.close()
    reader_stop.set()
    rt.join(timeout=90)
    stop_code = server.stop()
    if settled_at is None:
        violations.add("run did not settle", f"jobs still unfinished after {args.deadline} s")

    # The checks, on the database once the server is stopped.
    store = servelib.read_store(os.path.join(home, "docpipe.db"))
    logs_by_job, error_lines = servelib.log_facts(server.logs)
    figures = servelib.check_jobs(store, logs_by_job, violations,
                                  expect_success=True)
    jobs = store["jobs"]
    owner = "chaos"
    # Every 202 has a job; every key answered one job, the one its record names.
    for i, ids in sorted(key_jobs.items()):
        if len(ids) > 1:
            violations.add("one key, several jobs answered", f"key {i}: {sorted(ids)}")
        for jid in ids:
            if jid not in jobs:
                violations.add("202 without a job", f"key {i}: {jid}")
        rec = store["idempotency"].get((owner, f"chaos-{seed}-{i}"))
        if rec is None:
            violations.add("202 without an idempotency record", f"key {i}")
        elif rec not in ids:
            violations.add("idempotency record names another job", f"key {i}: {rec} vs {ids}")
    for (o, key), jid in store["idempotency"].items():
        if jid not in jobs:
            violations.add("idempotency record without a job", f"{key} -> {jid}")
    # Jobs per key, through each job's correlation id (the request id that created it).
    per_key = {}
    for jid, job in jobs.items():
        rid = job["data"].get("correlation_id") or ""
        fate = attempts.get(rid)
        if fate is None:
            violations.add("job from no request", f"{jid} (correlation id {rid!r})")
            continue
        kind, i, status = fate
        per_key.setdefault(i, []).append(jid)
        if status is not None and status != 202:
            violations.add("job stored for a refused request",
                           f"{jid}: request {rid} was answered {status}; job is "
                           f"{job['status']}")
    for i, ids in per_key.items():
        if len(ids) > 1:
            violations.add("one key, several jobs stored", f"key {i}: {ids}")
    missing = [i for i in range(args.jobs) if i not in key_jobs]
    if missing:
        violations.add("key never answered 202", f"{len(missing)} keys, e.g. {missing[:5]}")
    for inc, code in server.unexpected_exits:
        violations.add("server died on its own", f"incarnation {inc}: exit {code}")
    if stop_code not in (0, None):
        violations.add("server did not stop cleanly", f"exit {stop_code} on SIGTERM")
    # The data folder holds documents and key hashes: nothing in it open to others.
    shown, n_open = servelib.open_to_others(home)
    for item in shown:
        violations.add("data readable by others", item)
    if n_open > len(shown):
        violations.add("data readable by others", f"... {n_open} in all")
    for line in error_lines:
        if "already exists" in line:
            violations.add("execution started twice", line[:240])

    took = time.monotonic() - started
    print(f"\n== figures (seed {seed}, {took:.1f} s)")
    print(f"requests: {len(requests)} logical ({args.jobs} keys, "
          f"{sum(1 for k, _ in requests if k == 'repeat')} repeats, "
          f"{sum(1 for k, _ in requests if k == 'conflict')} conflicts), "
          f"{len(attempts)} sent")
    for k, v in sorted(answers.items()):
        print(f"  answer {k}: {v}")
    print(f"kills: {len(kill_log)} (SIGKILL), restarts: {server.incarnation - 1} "
          f"({len(server.unexpected_exits)} after a crash of its own)")
    for m in kill_log:
        print(f"  kill {m}")
    print(f"reader: {reader['runs']} runs of `docpipe jobs list`, {reader['failures']} failed; "
          f"{reader['closed-pipe runs']} into a closed pipe")
    print(f"jobs in the store: {len(jobs)}; 202-answered keys: {len(key_jobs)}")
    for k, v in sorted(figures.items()):
        print(f"  {k}: {v}")
    print(f"server ERROR log lines: {len(error_lines)}")
    for line in error_lines[:5]:
        print(f"    {line[:240]}")
    if settled_at is not None:
        print(f"throughput: {len(jobs) / (settled_at - started):.1f} jobs/s end to end")
    n = violations.count()
    if n:
        violations.report()
        print(f"\nchaos: {n} violation(s); data kept in {work}")
        return 1
    print("\nchaos: no violation")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    else:
        print(f"data kept in {work}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
