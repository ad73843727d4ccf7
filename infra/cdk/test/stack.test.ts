// Synth-time guards of the stack (run by check.sh: `tsx --test test/`).
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, test } from 'node:test';
import * as cdk from 'aws-cdk-lib';
import { DocpipeStack, aslPlaceholders, type DocpipeStackProps } from '../lib/docpipe-stack';

const REPO_ASL = path.resolve(__dirname, '..', '..', '..', 'statemachine', 'pipeline.asl.json');
const BINARIES = ['ingest', 'ocr', 'extract', 'verify', 'finalize', 'record-failure', 'api', 'publish-events', 'deliver-webhooks', 'intake', 'reconcile'];

const tempDirs: string[] = [];
after(() => tempDirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));
function tempDir(prefix: string): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  tempDirs.push(d);
  return d;
}

function fixture(binaries = BINARIES): { lambdaDir: string; dir: string } {
  const dir = tempDir('docpipe-cdk-test-');
  const lambdaDir = path.join(dir, 'lambda');
  for (const b of binaries) {
    fs.mkdirSync(path.join(lambdaDir, b), { recursive: true });
    // synth-only stand-in, never deployed
    fs.writeFileSync(path.join(lambdaDir, b, 'bootstrap'), '#!/bin/sh\nexit 1\n', { mode: 0o755 });
  }
  return { lambdaDir, dir };
}

function synth(overrides: Partial<DocpipeStackProps>): void {
  const app = new cdk.App({ outdir: tempDir('docpipe-cdk-out-') });
  new DocpipeStack(app, 'docpipe-dev', {
    docpipeEnv: 'dev',
    lambdaDir: fixture().lambdaDir,
    aslPath: REPO_ASL,
    bedrockModelId: 'anthropic.claude-3-haiku-20240307-v1:0',
    corsOrigins: ['*'],
    apiThrottleRate: 50,
    apiThrottleBurst: 100,
    ...overrides,
  });
  app.synth();
}

test('placeholders: identifiers only, in order, the prose ${...} is not one', () => {
  assert.deepEqual(aslPlaceholders('{"Comment":"${...}","A":"${XFunctionArn}","B":"${YFunctionArn}","C":"${XFunctionArn}"}'), [
    'XFunctionArn',
    'YFunctionArn',
  ]);
});

test('the repository definition synthesizes', () => {
  synth({});
});

test('a placeholder with no function fails the synth', () => {
  const { dir } = fixture([]);
  const asl = JSON.parse(fs.readFileSync(REPO_ASL, 'utf8'));
  asl.States.Ingest.Resource = '${ClassifyFunctionArn}';
  const bad = path.join(dir, 'pipeline.asl.json');
  fs.writeFileSync(bad, JSON.stringify(asl));
  assert.throws(() => synth({ aslPath: bad }), /placeholder \$\{ClassifyFunctionArn\} has no function/);
});

test('a missing bootstrap fails the synth with the build hint', () => {
  const { lambdaDir } = fixture(BINARIES.filter((b) => b !== 'ocr'));
  assert.throws(() => synth({ lambdaDir }), /ocr\/bootstrap is missing: build the functions first/);
});
