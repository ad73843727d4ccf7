"""Shared by bench/chaos.py and bench/load.py: a `docpipe serve` process on 127.0.0.1 that
can be killed and restarted on the same data folder, a keep-alive HTTP client, and the
checks of the store's invariants, read from the SQLite database (read-only) once the server
is stopped. Standard library only."""

import base64
import http.client
import json
import os
import signal
import sqlite3
import subprocess
import threading
import time
from collections import Counter, defaultdict
from datetime import datetime, timezone

FINAL = {"completed", "needs_review", "failed", "cancelled"}
NON_FINAL = ["queued", "ingesting", "ocr", "extracting", "verifying"]
# The job status table (crates/core/src/job.rs): what may follow what.
NEXT = {
    "queued": {"ingesting"},
    "ingesting": {"ocr", "extracting", "completed", "needs_review"},
    "ocr": {"extracting"},
    "extracting": {"verifying"},
    "verifying": {"completed", "needs_review"},
}


def clean_env(extra):
    """The environment for a docpipe process: no inherited DOCPIPE_* settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCPIPE_")}
    env.update(extra)
    return env


def create_key(binary, home, name, rate_limit=1_000_000_000):
    out = subprocess.run(
        [binary, "--home", home, "keys", "create", name, "--rate-limit", str(rate_limit)],
        capture_output=True, text=True, timeout=60, env=clean_env({}), cwd=home,
    )
    if out.returncode != 0:
        raise RuntimeError(f"keys create failed: {out.stderr.strip()}")
    return out.stdout.strip()


def rss_kib(pid):
    """VmRSS of a process in KiB, or None once it is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


class Server:
    """`docpipe --home HOME serve --bind 127.0.0.1:0`, restartable on the same home. Every
    incarnation logs to its own file. An exit that was not asked for is recorded."""

    def __init__(self, binary, home, env, logdir):
        self.binary = binary
        self.home = home
        self.env = clean_env(env)
        self.logdir = logdir
        self.proc = None
        self.url = None
        self.incarnation = 0
        self.lock = threading.Lock()
        self.up = threading.Event()
        self.unexpected_exits = []
        self.logs = []
        self.max_restarts = 20

    def start(self, timeout=120):
        with self.lock:
            self.incarnation += 1
            log_path = os.path.join(self.logdir, f"serve-{self.incarnation}.log")
            self.logs.append(log_path)
            log = open(log_path, "wb")
            proc = subprocess.Popen(
                [self.binary, "--home", self.home, "serve", "--bind", "127.0.0.1:0"],
                stdout=subprocess.PIPE, stderr=log, env=self.env, cwd=self.logdir,
            )
            log.close()
            deadline = time.monotonic() + timeout
            line = b""
            # The first stdout line names the port; it comes after recovery.
            while not line and time.monotonic() < deadline:
                line = proc.stdout.readline()
                if not line and proc.poll() is not None:
                    break
            text = line.decode(errors="replace").strip()
            if not text.startswith("docpipe listening on "):
                proc.kill()
                proc.wait()
                raise RuntimeError(
                    f"docpipe serve did not start (exit {proc.returncode}, first line {text!r}); "
                    f"see {log_path}")
            self.proc = proc
            self.url = text[len("docpipe listening on "):]
            threading.Thread(target=self._drain, args=(proc,), daemon=True).start()
            threading.Thread(target=self._watch, args=(proc, self.incarnation), daemon=True).start()
            self.up.set()
            return self.url

    def _drain(self, proc):
        for _ in proc.stdout:
            pass

    def _watch(self, proc, incarnation):
        code = proc.wait()
        with self.lock:
            expected = getattr(proc, "_docpipe_expected", False)
            if expected:
                return
            self.unexpected_exits.append((incarnation, code))
            self.up.clear()
        # A crash is recorded; start again so the run (and its checks) can go on.
        if len(self.unexpected_exits) <= self.max_restarts:
            time.sleep(0.2)
            self.restart()

    def restart(self, tries=10):
        """Starts again; a start that fails (a crash while opening, say) is recorded and
        tried again, a bounded number of times."""
        for n in range(tries):
            try:
                return self.start()
            except RuntimeError as e:
                with self.lock:
                    self.unexpected_exits.append((self.incarnation, f"start failed: {e}"))
                time.sleep(0.2 * (n + 1))
        raise RuntimeError(f"docpipe serve did not start in {tries} tries")

    def pid(self):
        with self.lock:
            return self.proc.pid if self.proc else None

    def kill(self):
        """SIGKILL: no chance to clean up. False when the server had already died on its
        own (its watcher restarts it; the caller should not start a second one)."""
        with self.lock:
            proc = self.proc
            if proc is None or proc.poll() is not None:
                return False
            self.up.clear()
            proc._docpipe_expected = True
            proc.send_signal(signal.SIGKILL)
        proc.wait()
        return True

    def stop(self, timeout=120):
        """SIGTERM and wait for the drain; SIGKILL if it hangs. Returns the exit code."""
        with self.lock:
            self.up.clear()
            proc = self.proc
            if proc is None or proc.poll() is not None:
                return proc.returncode if proc else None
            proc._docpipe_expected = True
            proc.send_signal(signal.SIGTERM)
        try:
            return proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            return "hung on SIGTERM; killed"


class Client:
    """One keep-alive HTTP/1.1 connection to the current server (reconnects on failure)."""

    def __init__(self, server, timeout=30):
        self.server = server
        self.timeout = timeout
        self.conn = None
        self.url = None

    def _connect(self):
        url = self.server.url
        hostport = url.split("://", 1)[1]
        host, port = hostport.rsplit(":", 1)
        self.conn = http.client.HTTPConnection(host, int(port), timeout=self.timeout)
        self.url = url

    def request(self, method, path, body=None, headers=None):
        """(status, headers dict, body bytes); raises OSError / HTTPException when the
        server is unreachable or the connection dies mid-request."""
        if self.conn is None or self.url != self.server.url:
            self.close()
            self._connect()
        try:
            self.conn.request(method, path, body=body, headers=headers or {})
            resp = self.conn.getresponse()
            data = resp.read()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data
        except (OSError, http.client.HTTPException):
            self.close()
            raise

    def close(self):
        if self.conn is not None:
            try:
                self.conn.close()
            except OSError:
                pass
        self.conn = None


def envelope_ok(status, body):
    """Whether an answer is the documented JSON envelope; the parsed body or None."""
    try:
        v = json.loads(body)
    except ValueError:
        return False, None
    if not isinstance(v, dict) or not isinstance(v.get("meta"), dict):
        return False, v
    if not v["meta"].get("request_id"):
        return False, v
    if 200 <= status < 300:
        return v.get("status") == "success" and "data" in v, v
    err = v.get("error")
    return (v.get("status") == "error" and isinstance(err, dict)
            and isinstance(err.get("code"), str) and isinstance(err.get("message"), str)), v


def document_body(pdf_bytes, filename):
    return json.dumps({
        "document": {
            "content_base64": base64.b64encode(pdf_bytes).decode(),
            "filename": filename,
            "kind": "invoice",
        }
    }).encode()


def parse_ts(s):
    """RFC 3339 with any number of fraction digits, as an aware datetime."""
    s = s.strip()
    if s.endswith("Z"):
        s = s[:-1] + "+00:00"
    main, _, rest = s.partition(".")
    if rest:
        digits = ""
        i = 0
        while i < len(rest) and rest[i].isdigit():
            digits += rest[i]
            i += 1
        s = f"{main}.{(digits + '000000')[:6]}{rest[i:]}"
    dt = datetime.fromisoformat(s)
    return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)


def read_store(db_path):
    """Everything the checks need, from the database opened read-only."""
    db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=30)
    try:
        jobs = {}
        for jid, status, data in db.execute("SELECT id, status, data FROM jobs"):
            jobs[jid] = {"status": status, "data": json.loads(data)}
        history = defaultdict(list)
        for jid, status, at in db.execute(
                "SELECT job_id, status, at FROM job_history ORDER BY job_id, seq"):
            history[jid].append((status, at))
        executions = {}
        for name, jid, status, error, hist in db.execute(
                "SELECT name, job_id, status, error, history FROM executions"):
            executions[name] = {"job_id": jid, "status": status, "error": error,
                                "history": json.loads(hist) if hist else []}
        idem = {}
        for owner, key, job_id in db.execute("SELECT owner, key, job_id FROM idempotency"):
            idem[(owner, key)] = job_id
        unfinished_journal = [r[0] for r in db.execute(
            "SELECT name FROM asl_journal_executions WHERE finished = 0")]
    finally:
        db.close()
    return {"jobs": jobs, "history": history, "executions": executions, "idempotency": idem,
            "unfinished_journal": unfinished_journal}


def stage_of(resource):
    return {
        "${IngestFunctionArn}": "ingest", "${OcrFunctionArn}": "ocr",
        "${ExtractFunctionArn}": "extract", "${VerifyFunctionArn}": "verify",
        "${FinalizeFunctionArn}": "finalize", "${RecordFailureFunctionArn}": "record_failure",
    }.get(resource, resource)


def execution_facts(history):
    """Per execution history: successful stage calls by stage, and stage failures that
    say the job was already final (a stage ran after a final status)."""
    ok = Counter()
    after_final = []
    retries = 0
    last = None
    for e in history:
        t = e.get("type")
        if t == "LambdaFunctionScheduled":
            last = stage_of(e.get("lambdaFunctionScheduledEventDetails", {}).get("resource", ""))
        elif t == "LambdaFunctionSucceeded" and last:
            ok[last] += 1
        elif t == "LambdaFunctionFailed":
            d = e.get("lambdaFunctionFailedEventDetails", {})
            cause = str(d.get("cause", ""))
            if d.get("error") == "DocPipe.Transient":
                retries += 1
            if "JOB_ALREADY_COMPLETED" in cause or "INVALID_TRANSITION" in cause:
                after_final.append((last, cause[:160]))
    return ok, after_final, retries


def log_facts(log_paths):
    """Stage log lines per job (time, stage, message), and ERROR lines, from the servers'
    JSON logs."""
    by_job = defaultdict(list)
    errors = []
    for path in log_paths:
        try:
            f = open(path, errors="replace")
        except OSError:
            continue
        with f:
            for line in f:
                line = line.strip()
                if not line.startswith("{"):
                    continue
                try:
                    v = json.loads(line)
                except ValueError:
                    continue
                fields = v.get("fields", {})
                if v.get("level") == "ERROR":
                    errors.append(f"{os.path.basename(path)}: {fields.get('message')} "
                                  f"{ {k: x for k, x in fields.items() if k != 'message'} }")
                stage = fields.get("stage")
                job = fields.get("job_id")
                if stage and job and v.get("timestamp"):
                    by_job[job].append((parse_ts(v["timestamp"]), stage, fields.get("message", "")))
    return by_job, errors


class Violations:
    def __init__(self):
        self.items = defaultdict(list)

    def add(self, kind, detail):
        self.items[kind].append(detail)

    def count(self):
        return sum(len(v) for v in self.items.values())

    def report(self, limit=10):
        for kind, details in sorted(self.items.items()):
            print(f"VIOLATION {kind}: {len(details)}")
            for d in details[:limit]:
                print(f"    {d}")


def check_jobs(store, logs_by_job, violations, expect_success=True):
    """Invariants of every job in the store: a final status, a status history that follows
    the table and stops at the first final status, an execution consistent with the
    status, no stage after the final status, at most one Finalize."""
    jobs = store["jobs"]
    figures = Counter()
    for jid, job in jobs.items():
        status = job["status"]
        figures[f"jobs {status}"] += 1
        if status not in FINAL:
            violations.add("job not final", f"{jid} is {status}")
        elif expect_success and status not in ("completed", "needs_review"):
            err = job["data"].get("error") or {}
            violations.add("job failed although its document is valid",
                           f"{jid}: {err.get('code')}: {str(err.get('message'))[:120]}")
        hist = store["history"].get(jid, [])
        seq = [s for s, _ in hist]
        if not seq or seq[0] != "queued":
            violations.add("status history", f"{jid} starts {seq[:1]}")
        finals = [i for i, s in enumerate(seq) if s in FINAL]
        if finals and finals[0] != len(seq) - 1:
            violations.add("status after a final status", f"{jid}: {seq}")
        for a, b in zip(seq, seq[1:]):
            if a in FINAL or (b not in ("failed", "cancelled") and b not in NEXT.get(a, set())):
                violations.add("status history", f"{jid}: {a} -> {b} in {seq}")
                break
        if seq and seq[-1] != status:
            violations.add("status history", f"{jid}: history ends {seq[-1]}, job is {status}")
        final_at = parse_ts(hist[finals[0]][1]) if finals else None

        ex = store["executions"].get(jid)
        if ex is None:
            if status in ("completed", "needs_review"):
                violations.add("finished job without an execution", jid)
        else:
            figures[f"executions {ex['status']}"] += 1
            ok, after_final, retries = execution_facts(ex["history"])
            figures["transient retries in histories"] += retries
            if status in ("completed", "needs_review") and ex["status"] != "SUCCEEDED":
                violations.add("execution inconsistent with job",
                               f"{jid} {status} but execution {ex['status']} {ex['error']}")
            if status == "failed" and ex["status"] == "SUCCEEDED":
                violations.add("execution inconsistent with job", f"{jid} failed, execution SUCCEEDED")
            if status != "cancelled" and ex["error"] == "DocPipe.Cancelled":
                violations.add("execution inconsistent with job",
                               f"{jid} {status}, execution ended as cancelled")
            if ex["status"] == "RUNNING":
                violations.add("execution left running", jid)
            if ok["finalize"] > 1:
                violations.add("second Finalize", f"{jid}: {ok['finalize']} in one history")
            for stage, cause in after_final:
                violations.add("stage ran after a final status", f"{jid}: {stage}: {cause}")

        # The servers' own log lines: stages report when they end.
        lines = sorted(logs_by_job.get(jid, []))
        finishes = [t for t, st, msg in lines if st == "finalize" and msg == "job finished"]
        if len(finishes) > 1:
            violations.add("second Finalize", f"{jid}: 'job finished' logged {len(finishes)} times")
        if final_at is not None:
            closing = {"completed": "finalize", "needs_review": "finalize",
                       "failed": "record_failure"}.get(status)
            spared = False
            for t, st, msg in lines:
                if t <= final_at:
                    continue
                if st == closing and not spared:
                    spared = True  # the stage that set the final status logs after it
                    continue
                violations.add("stage ran after a final status",
                               f"{jid}: {st} '{msg}' at {t.isoformat()} after {status} at "
                               f"{final_at.isoformat()}")
    for name, ex in store["executions"].items():
        if ex["job_id"] and ex["job_id"] not in jobs:
            violations.add("execution without a job", name)
    for name in store["unfinished_journal"]:
        violations.add("journal left unfinished", name)
    return figures


def open_to_others(home, limit=10):
    """Files and folders in the data folder that group or others may read or enter."""
    found = []
    for root, dirs, files in os.walk(home):
        for name in [*dirs, *files]:
            path = os.path.join(root, name)
            try:
                mode = os.lstat(path).st_mode
            except OSError:
                continue
            if mode & 0o077:
                found.append(f"{os.path.relpath(path, home)} {oct(mode & 0o777)}")
    return found[:limit], len(found)
