"""What scripts/aws-smoke.sh reads out of AWS's and docpipe's answers (stdlib only).

  python3 aws_smoke.py output NAME FILE        a stack output (describe-stacks JSON)
  python3 aws_smoke.py job-id FILE             the job id of a POST /api/v1/jobs answer
  python3 aws_smoke.py status FILE             a job's status (GET /api/v1/jobs/{id})
  python3 aws_smoke.py final FILE              exit 0 when that status is final
  python3 aws_smoke.py check-job FILE          a finished job: completed or needs_review,
                                               a priced cost; prints "status pages usd"
  python3 aws_smoke.py check-result FILE       a result: an invoice with fields, or rooms
  python3 aws_smoke.py sum FILE...             the total of the jobs' cost_usd.total_usd

Every answer of the API is the envelope {"status": "success", "data": ...}; an error
envelope (or anything else) exits 1 with its code and message.
"""

import json
import sys
from decimal import Decimal

FINAL = {"completed", "needs_review", "failed", "cancelled"}


def fail(msg):
    print("aws-smoke: " + msg, file=sys.stderr)
    sys.exit(1)


def load(path):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        fail("%s: not JSON (%s)" % (path, e))


def data(path):
    body = load(path)
    if not isinstance(body, dict) or body.get("status") != "success":
        err = body.get("error", {}) if isinstance(body, dict) else {}
        fail("%s: the API answered %s: %s" % (path, err.get("code", "no envelope"), err.get("message", body)))
    return body.get("data")


def output(name, path):
    stacks = load(path).get("Stacks") or []
    if not stacks:
        fail("%s: no stack" % path)
    status = stacks[0].get("StackStatus", "")
    if not status.endswith("_COMPLETE") or "ROLLBACK" in status:
        fail("%s: stack is %s" % (path, status))
    for o in stacks[0].get("Outputs") or []:
        if o.get("OutputKey") == name:
            return o.get("OutputValue")
    fail("%s: no output %s" % (path, name))


def check_job(path):
    job = data(path)
    status = job.get("status")
    if status not in ("completed", "needs_review"):
        err = job.get("error") or {}
        fail("job %s is %s: %s %s" % (job.get("job_id"), status, err.get("code", ""), err.get("message", "")))
    cost = job.get("cost_usd") or {}
    if cost.get("host") != "aws":
        fail("job %s: cost not priced for AWS: %r" % (job.get("job_id"), cost.get("host")))
    total = Decimal(str(cost.get("total_usd", "0")))
    if total <= 0:
        fail("job %s: no cost" % job.get("job_id"))
    items = {l.get("item", "") for l in cost.get("lines", [])}
    if not any(i.startswith("Textract") for i in items):
        fail("job %s: no Textract pages in its cost" % job.get("job_id"))
    return "%s %d %s" % (status, job.get("pages", 0), total)


def check_result(path):
    result = data(path)
    if isinstance(result, dict) and isinstance(result.get("rooms"), list):
        return "rooms %d" % len(result["rooms"])
    fields = result.get("fields") if isinstance(result, dict) else None
    if not fields:
        fail("%s: a result without fields" % path)
    number = (fields.get("invoice_number") or {}).get("value")
    gross = (fields.get("total_gross") or fields.get("gross_total") or {}).get("value")
    return "invoice %s gross %s" % (number, gross)


def main(argv):
    if len(argv) < 2:
        fail(__doc__)
    cmd, args = argv[0], argv[1:]
    if cmd == "output" and len(args) == 2:
        print(output(args[0], args[1]))
    elif cmd == "job-id":
        print(data(args[0])["job_id"])
    elif cmd == "status":
        print(data(args[0])["status"])
    elif cmd == "final":
        sys.exit(0 if data(args[0])["status"] in FINAL else 3)
    elif cmd == "check-job":
        print(check_job(args[0]))
    elif cmd == "check-result":
        print(check_result(args[0]))
    elif cmd == "sum":
        print(sum((Decimal(str(data(p)["cost_usd"]["total_usd"])) for p in args), Decimal(0)))
    else:
        fail("unknown command %s" % cmd)


if __name__ == "__main__":
    main(sys.argv[1:])
