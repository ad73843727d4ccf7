#!/usr/bin/env python3
"""Load on `docpipe serve`: N job creates (default 10,000) from C concurrent clients
(default 64) on loopback, with a share of requests repeating an earlier Idempotency-Key
(same body) and a few reusing one with another body. One try per request. Checks:

- every answer is 202, 409, 429 or 503, in the JSON envelope;
- 0 lost: every 202's job exists and reaches a final status;
- 0 duplicates: one job per key, every repeat answered with the same job, no job stored
  for a refused request;
- the server's RSS (VmRSS) settles back under --rss-limit-mib once the load is over.

While the creates run (and the pipeline is busy with their jobs), --get-clients readers
fetch one job over and over: the figures give sustained creations/s and the GET latency
(p50, p99) under that load.

Prints the answer counts and the RSS before, at peak and after; exits 1 on any violation.
Usage: bench/load.py --bin target/release/docpipe [-n 10000] [-c 64]"""

import argparse
import json
import os
import random
import shutil
import sys
import tempfile
import threading
import time
from collections import Counter

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import servelib  # noqa: E402


def tiny_pdf(text):
    """A one-page PDF with one line of text (a valid document, well under a kilobyte)."""
    content = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length " + str(len(content)).encode() + b" >>\nstream\n" + content
        + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for n, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{n} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    for off in offsets:
        out += f"{off:010d} 00000 n \n".encode()
    out += (f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n"
            ).encode()
    return bytes(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bin", required=True, help="the docpipe binary")
    ap.add_argument("-n", "--requests", type=int, default=10_000)
    ap.add_argument("-c", "--clients", type=int, default=64)
    ap.add_argument("--dup-rate", type=float, default=0.1,
                    help="share of requests repeating an earlier key with the same body")
    ap.add_argument("--conflict-rate", type=float, default=0.005,
                    help="share of requests reusing a key with another body")
    ap.add_argument("--rss-limit-mib", type=float, default=200)
    ap.add_argument("--settle-secs", type=float, default=5,
                    help="idle time after the last job finished before the RSS is read")
    ap.add_argument("--uploads", type=int, default=20,
                    help="uploads each claimed by 4 concurrent creates")
    ap.add_argument("--get-clients", type=int, default=2,
                    help="readers timing GET /api/v1/jobs/{id} while the creates run")
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--deadline", type=float, default=1800)
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()

    seed = args.seed if args.seed is not None else random.randrange(1 << 32)
    rng = random.Random(seed)
    binary = os.path.abspath(args.bin)
    work = tempfile.mkdtemp(prefix="docpipe-load-")
    home = os.path.join(work, "home")
    os.makedirs(home)
    started = time.monotonic()
    deadline = started + args.deadline
    print(f"load: {args.requests} creates, {args.clients} clients, seed {seed}, data in {work}",
          flush=True)

    api_key = servelib.create_key(binary, home, "load")
    server = servelib.Server(binary, home, {"DOCPIPE_LOG": "warn"}, work)
    server.start()
    pid = server.pid()
    violations = servelib.Violations()

    # Requests: distinct keys, with repeats of earlier keys and a few conflicts mixed in.
    n_dup = int(args.requests * args.dup_rate)
    n_conflict = int(args.requests * args.conflict_rate)
    n_keys = max(1, args.requests - n_dup - n_conflict)
    requests = [("first", i) for i in range(n_keys)]
    for kind, count in (("repeat", n_dup), ("conflict", n_conflict)):
        for _ in range(count):
            i = rng.randrange(n_keys)
            requests.insert(rng.randrange(i + 1, len(requests) + 1), (kind, i))
    pdf = tiny_pdf("Invoice 1 Total 10.00 EUR")

    def body(kind, i):
        name = f"conflict-{i}.pdf" if kind == "conflict" else f"load-{i}.pdf"
        return servelib.document_body(pdf, name)

    lock = threading.Lock()
    answers = Counter()
    by_request = {}
    key_jobs = {}
    answered_keys = set()
    next_req = [0]
    rss = {"before": servelib.rss_kib(pid), "peak": 0}
    sampling = threading.Event()
    sampling.set()

    def sample():
        while sampling.is_set():
            v = servelib.rss_kib(pid)
            if v:
                rss["peak"] = max(rss["peak"], v)
            time.sleep(0.05)

    def client():
        c = servelib.Client(server, timeout=60)
        while time.monotonic() < deadline:
            with lock:
                if next_req[0] >= len(requests):
                    break
                r = next_req[0]
                next_req[0] += 1
            kind, i = requests[r]
            if kind == "conflict":
                # Only after the key's own request was answered: otherwise the two race and
                # either may rightly win.
                for _ in range(600):
                    with lock:
                        if i in answered_keys:
                            break
                    time.sleep(0.05)
            rid = f"k{i}-r{r}"
            headers = {"x-api-key": api_key, "content-type": "application/json",
                       "idempotency-key": f"load-{seed}-{i}", "x-request-id": rid}
            try:
                status, _, raw = c.request("POST", "/api/v1/jobs", body(kind, i), headers)
            except Exception as e:  # noqa: BLE001
                with lock:
                    answers["no answer"] += 1
                    by_request[rid] = (kind, i, None)
                violations.add("no answer", f"{rid}: {e!r}")
                continue
            ok, v = servelib.envelope_ok(status, raw)
            code = (v or {}).get("error", {}).get("code") if status >= 300 and ok else None
            with lock:
                answers[f"{status} {code or ''}".strip()] += 1
                by_request[rid] = (kind, i, status)
                if kind == "first":
                    answered_keys.add(i)
            if status not in (202, 409, 429, 503):
                violations.add("answer outside 202/409/429/503", f"{rid}: {status} {raw[:160]!r}")
            if not ok:
                violations.add("answer without the envelope", f"{rid}: {status} {raw[:160]!r}")
                continue
            if status == 202:
                with lock:
                    if kind == "conflict":
                        # Wrong only when the key's own body was accepted before.
                        if i in key_jobs:
                            violations.add("conflicting body accepted", rid)
                        continue
                    key_jobs.setdefault(i, set()).add(v["data"]["job_id"])
            if status == 409 and kind != "conflict":
                with lock:
                    accepted = i in key_jobs
                # Wrong unless a conflicting body took the key first (its own was refused).
                if accepted:
                    violations.add("409 for a repeat with the same body", rid)
        c.close()

    # Uploads claimed by several creates at once: one job per upload at most.
    upload_claims = {}

    def claim_uploads(n_uploads, claimers):
        c = servelib.Client(server)
        ids = []
        for u in range(n_uploads):
            s, _, raw = c.request("POST", "/api/v1/uploads",
                                  json.dumps({"filename": f"upload-{u}.pdf"}).encode(),
                                  {"x-api-key": api_key, "content-type": "application/json"})
            ok, v = servelib.envelope_ok(s, raw)
            if s != 201 or not ok:
                violations.add("upload not created", f"{s} {raw[:160]!r}")
                continue
            link = v["data"]
            target = link["url"].split("://", 1)[1]
            target = target[target.index("/"):]
            s, _, raw = c.request(link.get("method", "PUT"), target, pdf,
                                  {"content-type": "application/pdf"})
            if s >= 300:
                violations.add("upload not stored", f"{s} {raw[:160]!r}")
                continue
            ids.append(link["upload_id"])
        c.close()

        def claim(u, n):
            cc = servelib.Client(server)
            rid = f"u{u}-c{n}"
            s, _, raw = cc.request(
                "POST", "/api/v1/jobs", json.dumps({"upload_id": ids[u]}).encode(),
                {"x-api-key": api_key, "content-type": "application/json",
                 "idempotency-key": f"claim-{seed}-{u}-{n}", "x-request-id": rid})
            cc.close()
            ok, v = servelib.envelope_ok(s, raw)
            code = (v or {}).get("error", {}).get("code") if s >= 300 and ok else None
            with lock:
                answers[f"{s} {code or ''}".strip() + " (upload claims)"] += 1
                by_request[rid] = ("claim", f"u{u}", s)
                if s == 202 and ok:
                    upload_claims.setdefault(u, set()).add(v["data"]["job_id"])
            if not ok:
                violations.add("answer without the envelope", f"{rid}: {s} {raw[:160]!r}")

        ts = [threading.Thread(target=claim, args=(u, n))
              for u in range(len(ids)) for n in range(claimers)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        for u, jobs_of in upload_claims.items():
            if len(jobs_of) > 1:
                violations.add("upload claimed twice", f"upload {ids[u]}: {len(jobs_of)} jobs")

    # One job to read while the load runs (created before it, so it exists throughout).
    c0 = servelib.Client(server)
    s, _, raw = c0.request("POST", "/api/v1/jobs", servelib.document_body(pdf, "probe.pdf"),
                           {"x-api-key": api_key, "content-type": "application/json",
                            "x-request-id": "probe"})
    c0.close()
    ok, v = servelib.envelope_ok(s, raw)
    probe_job = v["data"]["job_id"] if s == 202 and ok else None
    by_request["probe"] = ("probe", 0, s)
    get_ms = []
    getting = threading.Event()
    getting.set()

    def reader():
        c = servelib.Client(server, timeout=60)
        while getting.is_set() and probe_job:
            t = time.monotonic()
            st, _, _ = c.request("GET", f"/api/v1/jobs/{probe_job}",
                                 headers={"x-api-key": api_key})
            ms = (time.monotonic() - t) * 1000
            with lock:
                get_ms.append(ms)
            if st != 200:
                violations.add("GET of a job under load", f"{st}")
        c.close()

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    t0 = time.monotonic()
    readers = [threading.Thread(target=reader) for _ in range(args.get_clients)]
    threads = [threading.Thread(target=client) for _ in range(args.clients)]
    for t in threads + readers:
        t.start()
    for t in threads:
        t.join()
    load_secs = time.monotonic() - t0
    getting.clear()
    for t in readers:
        t.join()
    claim_uploads(args.uploads, 4)
    print(f"{len(by_request)} answers in {load_secs:.1f} s "
          f"({len(by_request) / max(load_secs, 1e-9):.0f} requests/s)", flush=True)

    # Let the accepted jobs finish, then the server idle, then read its RSS.
    poll = servelib.Client(server)
    settled = False
    while time.monotonic() < deadline:
        n = 0
        for status in servelib.NON_FINAL:
            s, _, raw = poll.request("GET", f"/api/v1/jobs?status={status}&limit=100",
                                     headers={"x-api-key": api_key})
            ok, v = servelib.envelope_ok(s, raw)
            n += len(v["data"]["jobs"]) if s == 200 and ok else 1
        if n == 0:
            settled = True
            break
        time.sleep(0.2)
    poll.close()
    drained_secs = time.monotonic() - t0
    time.sleep(args.settle_secs)
    sampling.clear()
    sampler.join()
    rss["after"] = servelib.rss_kib(pid)
    stop_code = server.stop()
    if not settled:
        violations.add("jobs not final", f"after {args.deadline} s")

    store = servelib.read_store(os.path.join(home, "docpipe.db"))
    jobs = store["jobs"]
    # 0 lost: every 202's job exists (and is final: check_jobs).
    for i, ids in key_jobs.items():
        if len(ids) > 1:
            violations.add("duplicate: one key answered several jobs", f"key {i}: {sorted(ids)}")
        for jid in ids:
            if jid not in jobs:
                violations.add("lost: 202 without a job", f"key {i}: {jid}")
    per_key = Counter()
    per_upload = Counter()
    for jid, job in jobs.items():
        rid = job["data"].get("correlation_id") or ""
        fate = by_request.get(rid)
        if fate is None:
            violations.add("job from no request", f"{jid} ({rid!r})")
            continue
        kind, i, status = fate
        if kind == "probe":
            continue
        if kind == "claim":
            per_upload[i] += 1
        else:
            per_key[i] += 1
        if status != 202:
            violations.add("job stored for a refused request", f"{jid}: {rid} answered {status}")
    for i, n in per_key.items():
        if n > 1:
            violations.add("duplicate: one key, several jobs stored", f"key {i}: {n}")
    for u, n in per_upload.items():
        if n > 1:
            violations.add("upload claimed twice", f"upload {u}: {n} jobs stored")
    # The statuses themselves: every job final, histories valid (dedupe may make a job's
    # verdict needs_review; failures here are not the document's fault).
    figures = servelib.check_jobs(store, {}, violations, expect_success=True)
    for inc, code in server.unexpected_exits:
        violations.add("server died on its own", f"exit {code}")
    if stop_code not in (0, None):
        violations.add("server did not stop cleanly", f"exit {stop_code}")
    after_mib = (rss["after"] or 0) / 1024
    if after_mib > args.rss_limit_mib:
        violations.add("RSS did not settle",
                       f"{after_mib:.0f} MiB after the load (limit {args.rss_limit_mib:.0f})")

    print(f"\n== figures (seed {seed})")
    print(f"requests: {len(requests)} ({n_keys} keys, {n_dup} repeats, {n_conflict} conflicts), "
          f"{args.clients} clients, {load_secs:.1f} s, "
          f"{len(requests) / max(load_secs, 1e-9):.0f} requests/s")
    for k, v in sorted(answers.items()):
        print(f"  answer {k}: {v}")
    accepted = sum(v for k, v in answers.items() if k.startswith("202"))
    print(f"sustained creations: {accepted / max(load_secs, 1e-9):.0f} jobs/s accepted (202)")
    if get_ms:
        ordered = sorted(get_ms)

        def pct(p):
            return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]
        print(f"GET /api/v1/jobs/{{id}} under load: {len(ordered)} requests, "
              f"{len(ordered) / max(load_secs, 1e-9):.0f}/s, p50 {pct(50):.1f} ms, "
              f"p99 {pct(99):.1f} ms, max {ordered[-1]:.1f} ms")
    print(f"jobs stored: {len(jobs)}, keys answered 202: {len(key_jobs)}; all final after "
          f"{drained_secs:.1f} s")
    for k, v in sorted(figures.items()):
        print(f"  {k}: {v}")
    print(f"server RSS: before {(rss['before'] or 0) / 1024:.1f} MiB, peak "
          f"{rss['peak'] / 1024:.1f} MiB, after {after_mib:.1f} MiB "
          f"(settled {args.settle_secs:.0f} s; limit {args.rss_limit_mib:.0f} MiB)")
    n = violations.count()
    if n:
        violations.report()
        print(f"\nload: {n} violation(s); data kept in {work}")
        return 1
    print("\nload: no violation")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    else:
        print(f"data kept in {work}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
