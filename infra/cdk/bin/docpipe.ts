#!/usr/bin/env node
// docpipe as a CDK app: the same stack as infra/template.yaml (SAM).
//
//   npx cdk synth -c env=dev                    # stack docpipe-dev
//   npx cdk deploy -c env=prod                  # stack docpipe-prod
//
// Context (all optional; `-c key=value`):
//   env             dev | prod (default dev); part of every resource name
//   lambdaDir       folder with one sub-folder per binary holding `bootstrap`
//                   (default: <repo>/target/lambda, or $CARGO_TARGET_DIR/lambda: what
//                   `cargo lambda build --release --arm64` makes;
//                   a relative path is taken from the current directory)
//   bedrockModelId  Bedrock model for extraction (stored in Parameter Store)
//   corsOrigins     comma-separated origins allowed to call the API from a browser (default *)
//   apiThrottleRate / apiThrottleBurst   default-stage throttling (dev 50/100, prod 100/200 as in samconfig.toml)
//   alarmEmail      address subscribed to the alarm topic (default: none)
import * as path from 'node:path';
import * as cdk from 'aws-cdk-lib';
import { DocpipeStack, DOCPIPE_ENVS, type DocpipeEnv } from '../lib/docpipe-stack';

const REPO_ROOT = path.resolve(__dirname, '..', '..', '..');

const app = new cdk.App();

function ctx(key: string): string | undefined {
  const v = app.node.tryGetContext(key);
  if (v === undefined || v === null || v === '') return undefined;
  return String(v);
}

function num(key: string, fallback: number): number {
  const raw = ctx(key);
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`context ${key}=${raw}: expected a positive number`);
  return n;
}

const env = (ctx('env') ?? 'dev') as DocpipeEnv;
if (!DOCPIPE_ENVS.includes(env)) {
  throw new Error(`context env=${env}: expected one of ${DOCPIPE_ENVS.join(', ')}`);
}

const lambdaDirRaw = ctx('lambdaDir');
// cargo lambda writes to $CARGO_TARGET_DIR/lambda when that is set (as .ci/run does).
const targetDir = process.env.CARGO_TARGET_DIR ? path.resolve(REPO_ROOT, process.env.CARGO_TARGET_DIR) : path.join(REPO_ROOT, 'target');
const lambdaDir = lambdaDirRaw ? path.resolve(process.cwd(), lambdaDirRaw) : path.join(targetDir, 'lambda');

new DocpipeStack(app, `docpipe-${env}`, {
  description:
    'docpipe on AWS: an HTTP API, one Lambda per pipeline stage, the Step Functions state machine ' +
    'from statemachine/pipeline.asl.json, DynamoDB tables, S3 buckets and alarms (CDK edition of infra/template.yaml).',
  docpipeEnv: env,
  lambdaDir,
  aslPath: path.join(REPO_ROOT, 'statemachine', 'pipeline.asl.json'),
  bedrockModelId: ctx('bedrockModelId') ?? 'anthropic.claude-3-haiku-20240307-v1:0',
  corsOrigins: (ctx('corsOrigins') ?? '*').split(',').map((s) => s.trim()).filter((s) => s !== ''),
  apiThrottleRate: num('apiThrottleRate', env === 'prod' ? 100 : 50),
  apiThrottleBurst: num('apiThrottleBurst', env === 'prod' ? 200 : 100),
  alarmEmail: ctx('alarmEmail'),
  // Environment-agnostic, like the SAM template: account and region come from the deploy credentials.
});
