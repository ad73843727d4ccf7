"""Cold start of each docpipe Lambda bootstrap against a local Lambda Runtime API.

Usage: python lambda_init.py DIR [--runs N] [--check]   (the moto venv's python: boto3)
DIR holds the bootstraps, as DIR/<name>/bootstrap (cargo lambda's layout) or DIR/<name>
(cargo build's). Starts moto on 127.0.0.1 with the deployment's tables and buckets, then
starts each function N times: init = spawn to its first GET /runtime/invocation/next
(settings, Parameter Store, every SDK client), RSS = peak resident memory (VmHWM) after
it answered one event. Prints one line per function with the median and worst of the runs
and the size; --check exits 1 when a stage function misses init < 25 ms or RSS < 30 MiB.
"""

import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "functions", "tests"))

import boto3  # noqa: E402
import runtime_api_smoke as smoke  # noqa: E402

STAGES = ["ingest", "ocr", "extract", "verify", "finalize", "record-failure"]
INIT_TARGET_MS = 25
RSS_TARGET_MIB = 30


def bootstrap(root, name):
    for path in (os.path.join(root, name, "bootstrap"), os.path.join(root, name)):
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    return None


def main():
    args = sys.argv[1:]
    if not args:
        raise SystemExit(__doc__)
    root = args[0]
    runs = int(args[args.index("--runs") + 1]) if "--runs" in args else 5
    check = "--check" in args
    port = smoke.free_port()
    url = "http://127.0.0.1:%d" % port
    moto = subprocess.Popen([sys.executable, smoke.MOTO, "-H", "127.0.0.1", "-p", str(port)],
                            env=dict(os.environ, MOTO_PORT=str(port)),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    misses = []
    try:
        for _ in range(300):
            try:
                smoke.socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        kw = dict(endpoint_url=url, region_name="us-east-1", aws_access_key_id="testing",
                  aws_secret_access_key="testing")
        smoke.create_tables(boto3.client("dynamodb", **kw), "bench")
        s3 = boto3.client("s3", **kw)
        for b in ("docpipe-bench-documents", "docpipe-bench-results"):
            s3.create_bucket(Bucket=b)
        boto3.client("ssm", **kw).put_parameter(
            Name="/docpipe/bench/bedrock_model_id", Value="anthropic.claude-3-haiku-20240307-v1:0",
            Type="String")
        machine = boto3.client("stepfunctions", **kw).create_state_machine(
            name="docpipe-bench-pipeline", roleArn="arn:aws:iam::123456789012:role/bench",
            definition='{"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}}')["stateMachineArn"]
        env = dict(PATH=os.environ.get("PATH", ""), DOCPIPE_ENV="bench", DOCPIPE_AWS_ENDPOINT_URL=url,
                   DOCPIPE_STATE_MACHINE_ARN=machine, AWS_REGION="us-east-1",
                   AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", DOCPIPE_LOG="warn",
                   AWS_LAMBDA_FUNCTION_NAME="bench", AWS_LAMBDA_FUNCTION_MEMORY_SIZE="512",
                   AWS_LAMBDA_FUNCTION_VERSION="$LATEST", AWS_LAMBDA_LOG_STREAM_NAME="s",
                   AWS_LAMBDA_LOG_GROUP_NAME="g")
        # One event each: a job that does not exist (the stage reads its job, answers with
        # the error), and GET /health for the API.
        missing = {"job_id": "job_20260301120000_none", "correlation_id": "bench"}
        health = {"version": "2.0", "routeKey": "$default", "rawPath": "/health", "rawQueryString": "",
                  "headers": {"host": "api.example"},
                  "requestContext": {"http": {"method": "GET", "path": "/health", "protocol": "HTTP/1.1",
                                              "sourceIp": "127.0.0.1", "userAgent": "bench"},
                                     "requestId": "r", "routeKey": "$default", "stage": "$default",
                                     "accountId": "123456789012", "apiId": "api", "domainName": "api.example",
                                     "domainPrefix": "api", "time": "01/Mar/2026:12:00:00 +0000", "timeEpoch": 0},
                  "isBase64Encoded": False}
        print("%-15s %9s %10s %10s %9s %9s" % ("function", "size KiB", "init p50", "init max", "RSS p50", "RSS max"))
        for name in STAGES + ["api"]:
            path = bootstrap(root, name)
            if path is None:
                print("%-15s missing in %s" % (name, root))
                misses.append(name)
                continue
            inits, rsss = [], []
            for i in range(runs):
                event = health if name == "api" else missing
                answers, init_ms, rss = smoke.run(path, env, [("e%d" % i, event)])
                assert answers, name
                inits.append(init_ms)
                rsss.append(rss)
            size = os.path.getsize(path) // 1024
            print("%-15s %9d %7.1f ms %7.1f ms %5d MiB %5d MiB" % (
                name, size, statistics.median(inits), max(inits), statistics.median(rsss), max(rsss)))
            if name in STAGES and (statistics.median(inits) >= INIT_TARGET_MS or max(rsss) >= RSS_TARGET_MIB):
                misses.append(name)
        print("targets for stage functions: init < %d ms, RSS < %d MiB: %s" % (
            INIT_TARGET_MS, RSS_TARGET_MIB, "met" if not misses else "missed by " + ", ".join(misses)))
    finally:
        moto.terminate()
        moto.wait()
    if check and misses:
        sys.exit(1)


if __name__ == "__main__":
    main()
