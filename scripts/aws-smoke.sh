#!/usr/bin/env bash
# End-to-end on a real AWS account: deploys a throwaway stack (docpipe-smoke, Env=smoke),
# makes an API key, submits the shipped invoices, waits for each job, checks its status,
# result and cost, prints the cost per job and in total, then deletes the stack and the
# tables and buckets it keeps (DeletionPolicy: Retain).
#   scripts/aws-smoke.sh [--keep] [--region REGION]
# Needs: credentials allowed to deploy the stack (as infra/DEPLOY.md says), Bedrock access
# to the template's default model in the region, sam, cargo-lambda, the AWS CLI, curl,
# openssl, python3. Costs a few cents. What it reads out of the answers is
# scripts/aws_smoke.py, tested on recorded answers by the AWS checks.
set -euo pipefail
cd "$(dirname "$0")/.."

keep=0
region="${AWS_REGION:-${AWS_DEFAULT_REGION:-us-east-1}}"
while [ $# -gt 0 ]; do
  case "$1" in
    --keep) keep=1 ;;
    --region) region="$2"; shift ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
export AWS_REGION="$region" AWS_DEFAULT_REGION="$region" SAM_CLI_TELEMETRY=0
stack=docpipe-smoke
env=smoke
parse() { python3 scripts/aws_smoke.py "$@"; }
work="$(mktemp -d)"

cleanup() {
  if [ "$keep" = 1 ]; then echo "kept stack $stack (delete: aws cloudformation delete-stack --stack-name $stack)"; return; fi
  echo "== deleting $stack"
  aws cloudformation delete-stack --stack-name "$stack" || true
  aws cloudformation wait stack-delete-complete --stack-name "$stack" || true
  account="$(aws sts get-caller-identity --query Account --output text 2>/dev/null || true)"
  for b in "docpipe-$env-documents-$account" "docpipe-$env-results-$account"; do
    aws s3 rb "s3://$b" --force >/dev/null 2>&1 || true
  done
  for t in jobs api-keys idempotency preview-cache; do
    aws dynamodb delete-table --table-name "docpipe-$env-$t" >/dev/null 2>&1 || true
  done
  rm -rf "$work"
}
trap cleanup EXIT

echo "== sam build, sam deploy ($stack in $region)"
(cd infra && sam build --beta-features \
  && sam deploy --stack-name "$stack" --parameter-overrides Env=$env --capabilities CAPABILITY_IAM \
       --resolve-s3 --no-confirm-changeset --no-fail-on-empty-changeset)
aws cloudformation describe-stacks --stack-name "$stack" --output json > "$work/stack.json"
api="$(parse output ApiUrl "$work/stack.json")"
keys_table="$(parse output ApiKeysTableName "$work/stack.json")"
echo "API: $api"

echo "== health"
curl -fsS --max-time 20 "${api}health" > "$work/health.json"
parse status "$work/health.json" >/dev/null

echo "== an API key"
secret="dp_$(openssl rand -base64 32 | tr '+/' '-_' | tr -d '=')"
hash=$(printf %s "$secret" | sha256sum | cut -d' ' -f1)
aws dynamodb put-item --table-name "$keys_table" \
  --condition-expression 'attribute_not_exists(#n)' --expression-attribute-names '{"#n":"name"}' \
  --item '{"name":{"S":"smoke"},"key_hash":{"S":"'"$hash"'"},"active":{"BOOL":true},
           "rate_limit_per_minute":{"N":"600"},"request_count":{"N":"0"},
           "created_at":{"S":"'"$(date -u +%Y-%m-%dT%H:%M:%SZ)"'"}}'

echo "== submitting the shipped invoices"
ids=()
for f in fixtures/invoices/*.pdf; do
  printf '{"document": {"content_base64": "%s", "filename": "%s"}}' "$(base64 -w0 "$f")" "$(basename "$f")" > "$work/body.json"
  curl -sS --max-time 30 -H "x-api-key: $secret" -H 'content-type: application/json' \
    --data-binary "@$work/body.json" "${api}api/v1/jobs" > "$work/create.json"
  id="$(parse job-id "$work/create.json")"
  echo "$(basename "$f") -> $id"
  ids+=("$id")
done

echo "== waiting (at most 10 minutes)"
deadline=$((SECONDS + 600))
for id in "${ids[@]}"; do
  while :; do
    curl -sS --max-time 20 -H "x-api-key: $secret" "${api}api/v1/jobs/$id" > "$work/$id.json"
    if parse final "$work/$id.json"; then break; fi
    [ $SECONDS -lt $deadline ] || { echo "job $id still $(parse status "$work/$id.json")" >&2; exit 1; }
    sleep 5
  done
done

echo "== results and cost"
for id in "${ids[@]}"; do
  line="$(parse check-job "$work/$id.json")"
  curl -sS --max-time 20 -H "x-api-key: $secret" "${api}api/v1/jobs/$id/result" > "$work/$id.result.json"
  echo "$id: $line USD; $(parse check-result "$work/$id.result.json")"
done
files=()
for id in "${ids[@]}"; do files+=("$work/$id.json"); done
echo "total: $(parse sum "${files[@]}") USD for ${#ids[@]} jobs"
echo "aws smoke: ok"
