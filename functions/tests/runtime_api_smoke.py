"""Drives built docpipe Lambda binaries through a minimal Lambda Runtime API, against moto.

Usage: python runtime_api_smoke.py TARGET_DIR   (run with the moto venv's python: it has
boto3). Starts moto (crates/aws/tests/support/moto_server.py) and a Runtime API on
127.0.0.1, runs `ingest` on three events (a good upload, a bad upload, a missing job),
`api` on GET /health, and the events-in-and-out functions on the payloads their event
sources hand them (`intake` on an SQS batch with a drop and a malformed message,
`publish-events` on a jobs-stream batch, `deliver-webhooks` on an SQS batch, `reconcile` on
a TIMED_OUT execution), checks each answer (a stage error must arrive with the DocPipe.*
name as errorType) and prints each binary's init time (spawn to first /next) and peak RSS.
"""

import json
import os
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import boto3

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
MOTO = os.path.join(ROOT, "crates/aws/tests/support/moto_server.py")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Runtime:
    """The Lambda Runtime API: hands out queued events, collects answers."""

    def __init__(self, events):
        self.events = list(events)
        self.answers = {}
        self.first_next = None
        self.done = threading.Event()
        rt = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                if self.path.endswith("/runtime/invocation/next"):
                    if rt.first_next is None:
                        rt.first_next = time.monotonic()
                    while not rt.events:
                        rt.done.set()
                        time.sleep(0.05)
                    rid, body = rt.events.pop(0)
                    data = json.dumps(body).encode()
                    self.send_response(200)
                    self.send_header("Lambda-Runtime-Aws-Request-Id", rid)
                    self.send_header("Lambda-Runtime-Deadline-Ms", str(int(time.time() * 1000) + 60000))
                    self.send_header("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:us-east-1:123456789012:function:smoke")
                    self.send_header("Lambda-Runtime-Trace-Id", "Root=1-00000000-000000000000000000000000")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)

            def do_POST(self):
                n = int(self.headers.get("Content-Length", 0))
                body = self.rfile.read(n)
                parts = self.path.split("/")
                rid, kind = parts[-2], parts[-1]
                rt.answers[rid] = (kind, json.loads(body or b"null"))
                self.send_response(202)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def address(self):
        return "127.0.0.1:%d" % self.server.server_address[1]


def create_tables(ddb, env):
    """The tables as infra/template.yaml declares them (keys and indexes)."""
    def table(name, key, attrs=(), indexes=()):
        spec = dict(TableName="docpipe-%s-%s" % (env, name), BillingMode="PAY_PER_REQUEST",
                    AttributeDefinitions=[{"AttributeName": a, "AttributeType": "S"} for a in (key,) + tuple(attrs)],
                    KeySchema=[{"AttributeName": key, "KeyType": "HASH"}])
        if indexes:
            spec["GlobalSecondaryIndexes"] = [
                {"IndexName": n, "Projection": {"ProjectionType": "ALL"},
                 "KeySchema": [{"AttributeName": h, "KeyType": "HASH"}] + ([{"AttributeName": r, "KeyType": "RANGE"}] if r else [])}
                for n, h, r in indexes]
        ddb.create_table(**spec)
    table("jobs", "job_id", ("owner", "list_pk", "created_key"),
          (("by_owner", "owner", "created_key"), ("by_created", "list_pk", "created_key")))
    table("api-keys", "name", ("key_hash",), (("by_hash", "key_hash", None),))
    table("idempotency", "owner_key")
    table("preview-cache", "blueprint_hash")


def run(binary, env, events):
    rt = Runtime(events)
    env = dict(env, AWS_LAMBDA_RUNTIME_API=rt.address)
    start = time.monotonic()
    proc = subprocess.Popen([binary], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        want = len(events)
        deadline = time.monotonic() + 60
        while len(rt.answers) < want and time.monotonic() < deadline:
            if proc.poll() is not None:
                raise SystemExit("%s exited: %s" % (binary, proc.stderr.read().decode()[-2000:]))
            time.sleep(0.02)
        with open("/proc/%d/status" % proc.pid) as f:
            hwm = [l for l in f if l.startswith("VmHWM")][0].split()[1]
        init_ms = (rt.first_next - start) * 1000 if rt.first_next else float("nan")
        return rt.answers, init_ms, int(hwm) // 1024
    finally:
        proc.kill()
        proc.wait()
        rt.server.shutdown()


def main():
    target = sys.argv[1]
    port = free_port()
    url = "http://127.0.0.1:%d" % port
    moto = subprocess.Popen([sys.executable, MOTO, "-H", "127.0.0.1", "-p", str(port)],
                            env=dict(os.environ, MOTO_PORT=str(port)),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(300):
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        kw = dict(endpoint_url=url, region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing")
        ddb, s3, sfn = boto3.client("dynamodb", **kw), boto3.client("s3", **kw), boto3.client("stepfunctions", **kw)
        create_tables(ddb, "smoke")
        for b in ("docpipe-smoke-documents", "docpipe-smoke-results"):
            s3.create_bucket(Bucket=b)
        machine = sfn.create_state_machine(
            name="docpipe-smoke-pipeline", roleArn="arn:aws:iam::123456789012:role/smoke",
            definition=json.dumps({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}))["stateMachineArn"]
        now = "2026-03-01T12:00:00.000000Z"

        def job(jid, body):
            key = "uploads/%s/inv.pdf" % jid
            s3.put_object(Bucket="docpipe-smoke-documents", Key=key, Body=body)
            data = {"id": jid, "status": "queued", "kind": "invoice", "filename": "inv.pdf", "media_type": None,
                    "size_bytes": None, "content_sha256": None,
                    "keys": {"upload": key, "document": None, "ocr": None, "extraction": None, "result": None},
                    "owner": None, "correlation_id": None, "created_at": now, "updated_at": now, "error": None,
                    "cost": {"pages": 0, "stage_ms": {}, "ocr_pages": 0}}
            ddb.put_item(TableName="docpipe-smoke-jobs", Item={
                "job_id": {"S": jid}, "status": {"S": "queued"}, "kind": {"S": "invoice"}, "version": {"N": "1"},
                "list_pk": {"S": "job"}, "created_key": {"S": now + "#" + jid}, "updated_at": {"S": now},
                "data": {"S": json.dumps(data)},
                "history": {"L": [{"M": {"status": {"S": "queued"}, "at": {"S": now}}}]}})

        good, bad, missing = "job_20260301120000_good", "job_20260301120000_bad", "job_20260301120000_none"
        job(good, b"%PDF-1.4\n% smoke\n")
        job(bad, b"GIF89a not a document")
        env = dict(PATH=os.environ.get("PATH", ""), DOCPIPE_ENV="smoke", DOCPIPE_AWS_ENDPOINT_URL=url,
                   DOCPIPE_STATE_MACHINE_ARN=machine, AWS_REGION="us-east-1",
                   AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", DOCPIPE_LOG="warn",
                   AWS_LAMBDA_FUNCTION_NAME="smoke", AWS_LAMBDA_FUNCTION_MEMORY_SIZE="512",
                   AWS_LAMBDA_FUNCTION_VERSION="$LATEST", AWS_LAMBDA_LOG_STREAM_NAME="s", AWS_LAMBDA_LOG_GROUP_NAME="g")
        answers, init_ms, rss = run(os.path.join(target, "ingest"), env, [
            ("r1", {"job_id": good, "correlation_id": "c1"}),
            ("r2", {"job_id": bad, "correlation_id": "c2"}),
            ("r3", {"job_id": missing, "correlation_id": "c3"}),
        ])
        assert answers["r1"][0] == "response" and answers["r1"][1]["media_type"] == "application/pdf", answers["r1"]
        assert answers["r2"] == ("error", answers["r2"][1]) and answers["r2"][1]["errorType"] == "DocPipe.InvalidDocument", answers["r2"]
        assert answers["r2"][1]["errorMessage"].startswith("INVALID_FILE_FORMAT: "), answers["r2"]
        assert answers["r3"][1]["errorType"] == "DocPipe.Internal", answers["r3"]
        print("ingest: init %.0f ms, peak RSS %d MiB, answers %s" % (init_ms, rss, {k: (v[0], v[1].get("errorType") if isinstance(v[1], dict) else None) for k, v in answers.items()}))
        health = {"version": "2.0", "routeKey": "$default", "rawPath": "/health", "rawQueryString": "",
                  "headers": {"host": "api.example"},
                  "requestContext": {"http": {"method": "GET", "path": "/health", "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "smoke"},
                                     "requestId": "r", "routeKey": "$default", "stage": "$default", "accountId": "123456789012",
                                     "apiId": "api", "domainName": "api.example", "domainPrefix": "api", "time": "01/Mar/2026:12:00:00 +0000", "timeEpoch": 0},
                  "isBase64Encoded": False}
        answers, init_ms, rss = run(os.path.join(target, "api"), env, [("h1", health)])
        kind, resp = answers["h1"]
        assert kind == "response" and resp["statusCode"] == 200, answers
        print("api: init %.0f ms, peak RSS %d MiB, GET /health -> %d %s" % (init_ms, rss, resp["statusCode"], resp.get("body", "")[:120]))

        # Events in and out: each main takes what its event source hands it.
        sqs, events = boto3.client("sqs", **kw), boto3.client("events", **kw)
        ddb.create_table(TableName="docpipe-smoke-webhooks", BillingMode="PAY_PER_REQUEST",
                         AttributeDefinitions=[{"AttributeName": a, "AttributeType": "S"} for a in ("owner", "webhook_id")],
                         KeySchema=[{"AttributeName": "owner", "KeyType": "HASH"}, {"AttributeName": "webhook_id", "KeyType": "RANGE"}])
        dlq = sqs.create_queue(QueueName="docpipe-smoke-intake-dlq")["QueueUrl"]
        ddb.put_item(TableName="docpipe-smoke-api-keys", Item={
            "name": {"S": "acme"}, "key_hash": {"S": "0" * 64}, "active": {"BOOL": True},
            "rate_limit_per_minute": {"N": "60"}, "created_at": {"S": "2026-03-01T12:00:00Z"}, "request_count": {"N": "0"}})
        s3.put_object(Bucket="docpipe-smoke-documents", Key="incoming/acme/drop.pdf", Body=b"%PDF-1.4\n% drop\n")
        notification = {"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put", "s3": {
            "bucket": {"name": "docpipe-smoke-documents"}, "object": {"key": "incoming/acme/drop.pdf", "size": 17, "eTag": "e1"}}}]}

        def sqs_record(mid, body):
            return {"messageId": mid, "receiptHandle": mid, "body": body,
                    "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": str(int(time.time() * 1000))},
                    "messageAttributes": {}, "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:docpipe-smoke-intake"}
        events_env = dict(env, DOCPIPE_INTAKE_DEAD_LETTER_URL=dlq, DOCPIPE_WEBHOOK_DEAD_LETTER_URL=dlq,
                          DOCPIPE_EVENT_BUS="docpipe-smoke")
        answers, init_ms, rss = run(os.path.join(target, "intake"), events_env, [
            ("i1", {"Records": [sqs_record("m1", json.dumps(notification)), sqs_record("m2", "not json")]})])
        assert answers["i1"] == ("response", {"batchItemFailures": []}), answers
        jobs = ddb.scan(TableName="docpipe-smoke-jobs")["Items"]
        dropped = [j for j in jobs if j.get("owner", {}).get("S") == "acme"]
        assert len(dropped) == 1 and "incoming/acme/drop.pdf" in dropped[0]["data"]["S"], jobs
        dead = sqs.receive_message(QueueUrl=dlq, MessageAttributeNames=["All"]).get("Messages", [])
        assert len(dead) == 1 and "not JSON" in dead[0]["MessageAttributes"]["reason"]["StringValue"], dead
        print("intake: init %.0f ms, peak RSS %d MiB, a drop started, a malformed message dead-lettered" % (init_ms, rss))

        events.create_event_bus(Name="docpipe-smoke")
        item = ddb.get_item(TableName="docpipe-smoke-jobs", Key={"job_id": dropped[0]["job_id"]})["Item"]
        answers, init_ms, rss = run(os.path.join(target, "publish-events"), events_env, [
            ("p1", {"Records": [{"eventName": "INSERT", "dynamodb": {"NewImage": item}}]})])
        assert answers["p1"] == ("response", {"published": 1}), answers
        print("publish-events: init %.0f ms, peak RSS %d MiB, 1 event put" % (init_ms, rss))

        envelope = {"source": "docpipe", "detail-type": "job.status.v1", "detail": {
            "specversion": "1.0", "id": good + ".2", "source": "urn:docpipe:aws", "type": "job.status.v1",
            "time": now, "subject": good, "datacontenttype": "application/json",
            "dataschema": "https://docpipe.dev/schemas/job.status.v1.schema.json",
            "data": {"job_id": good, "status": "ingesting", "previous_status": "queued", "kind": "invoice",
                     "error_code": None, "result_link": None}}}
        answers, init_ms, rss = run(os.path.join(target, "deliver-webhooks"), events_env, [
            ("d1", {"Records": [sqs_record("w1", json.dumps(envelope))]})])
        assert answers["d1"] == ("response", {"batchItemFailures": []}), answers
        print("deliver-webhooks: init %.0f ms, peak RSS %d MiB, an owner-less job's event done with" % (init_ms, rss))

        ended = {"source": "aws.states", "detail-type": "Step Functions Execution Status Change", "detail": {
            "executionArn": machine.replace(":stateMachine:", ":execution:") + ":" + good,
            "stateMachineArn": machine, "name": good, "status": "TIMED_OUT", "error": None, "cause": None}}
        answers, init_ms, rss = run(os.path.join(target, "reconcile"), events_env, [("c1", ended)])
        assert answers["c1"] == ("response", {"job_id": good, "failed": "EXECUTION_TIMED_OUT"}), answers
        print("reconcile: init %.0f ms, peak RSS %d MiB, the timed-out job failed" % (init_ms, rss))
        print("runtime API smoke: ok")
    finally:
        moto.terminate()
        moto.wait()


if __name__ == "__main__":
    main()
