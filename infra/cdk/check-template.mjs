// Asserts on the template `cdk synth` wrote (used by check.sh):
//   node check-template.mjs <cdk.out dir> <stack name> <statemachine/pipeline.asl.json>
// Exits non-zero with one line per failed assertion; prints a one-line summary on success.
import fs from 'node:fs';
import path from 'node:path';

const [outDir, stackName, aslPath] = process.argv.slice(2);
if (!outDir || !stackName || !aslPath) {
  console.error('usage: node check-template.mjs <cdk.out> <stack> <pipeline.asl.json>');
  process.exit(2);
}
const env = stackName.replace(/^docpipe-/, '');
const template = JSON.parse(fs.readFileSync(path.join(outDir, `${stackName}.template.json`), 'utf8'));
const assets = JSON.parse(fs.readFileSync(path.join(outDir, `${stackName}.assets.json`), 'utf8'));
const resources = template.Resources ?? {};
const failures = [];
const check = (ok, msg) => {
  if (!ok) failures.push(msg);
};
const ofType = (type) => Object.entries(resources).filter(([, r]) => r.Type === type);
const eq = (a, b) => JSON.stringify(a) === JSON.stringify(b);

// ---------------------------------------------------------------- functions
// name -> [memory MB, timeout s], as in infra/template.yaml.
const EXPECTED_FUNCTIONS = {
  ingest: [1024, 120],
  ocr: [1024, 600],
  extract: [512, 300],
  verify: [512, 60],
  finalize: [512, 60],
  'record-failure': [512, 60],
  api: [512, 29],
  'publish-events': [512, 60],
  'deliver-webhooks': [512, 60],
  intake: [512, 60],
  reconcile: [512, 60],
};
const functions = ofType('AWS::Lambda::Function');
check(functions.length === 11, `expected 11 Lambda functions, found ${functions.length}`);
const fnLogicalIds = new Set(functions.map(([id]) => id));
const seenNames = new Set();
for (const [id, { Properties: p }] of functions) {
  const fname = typeof p.FunctionName === 'string' ? p.FunctionName : JSON.stringify(p.FunctionName);
  seenNames.add(fname);
  check(eq(p.Architectures, ['arm64']), `${id}: Architectures ${JSON.stringify(p.Architectures)}, expected [arm64]`);
  check(p.Runtime === 'provided.al2023', `${id}: Runtime ${p.Runtime}, expected provided.al2023`);
  check(p.Handler === 'bootstrap', `${id}: Handler ${p.Handler}, expected bootstrap`);
  const bin = fname.replace(`docpipe-${env}-`, '');
  const want = EXPECTED_FUNCTIONS[bin];
  check(want !== undefined, `${id}: unexpected FunctionName ${fname}`);
  if (want) {
    check(p.MemorySize === want[0], `${id}: MemorySize ${p.MemorySize}, expected ${want[0]}`);
    check(p.Timeout === want[1], `${id}: Timeout ${p.Timeout}, expected ${want[1]}`);
  }
  const vars = p.Environment?.Variables ?? {};
  for (const v of ['DOCPIPE_ENV', 'DOCPIPE_JOBS_TABLE', 'DOCPIPE_DOCUMENTS_BUCKET', 'DOCPIPE_RESULTS_BUCKET', 'DOCPIPE_LOG']) {
    check(v in vars, `${id}: environment variable ${v} missing`);
  }
  if (bin === 'api') {
    for (const v of ['DOCPIPE_STATE_MACHINE_ARN', 'DOCPIPE_API_KEYS_TABLE', 'DOCPIPE_IDEMPOTENCY_TABLE', 'DOCPIPE_PREVIEW_CACHE_TABLE', 'DOCPIPE_WEBHOOKS_TABLE', 'DOCPIPE_WEBHOOK_QUEUE_URL']) {
      check(v in vars, `${id}: environment variable ${v} missing`);
    }
  }
  check(p.LoggingConfig?.LogGroup !== undefined, `${id}: no LoggingConfig.LogGroup`);
}
for (const bin of Object.keys(EXPECTED_FUNCTIONS)) {
  check(seenNames.has(`docpipe-${env}-${bin}`), `no function docpipe-${env}-${bin}`);
}

// ---------------------------------------------------------------- state machine
const machines = ofType('AWS::StepFunctions::StateMachine');
check(machines.length === 1, `expected 1 state machine, found ${machines.length}`);
let stateCount = 0;
if (machines.length === 1) {
  const [smId, { Properties: sm }] = machines[0];
  // The definition is an asset (DefinitionBody.fromFile): find its file in cdk.out.
  const key = sm.DefinitionS3Location?.Key;
  const assetHash = key ? key.replace(/\.json$/, '') : undefined;
  const assetFile = assetHash ? assets.files?.[assetHash]?.source?.path : undefined;
  check(assetFile !== undefined, `${smId}: definition is not a file asset (DefinitionS3Location ${JSON.stringify(sm.DefinitionS3Location)})`);
  if (assetFile) {
    const shipped = fs.readFileSync(path.join(outDir, assetFile), 'utf8');
    const original = fs.readFileSync(aslPath, 'utf8');
    check(shipped === original, `${smId}: shipped definition differs from ${aslPath}`);

    const subs = sm.DefinitionSubstitutions ?? {};
    for (const [k, v] of Object.entries(subs)) {
      const target = v?.['Fn::GetAtt'];
      check(Array.isArray(target) && fnLogicalIds.has(target[0]) && target[1] === 'Arn', `${smId}: substitution ${k} is not a function's Arn: ${JSON.stringify(v)}`);
    }
    // Substitute as CloudFormation will (a stand-in ARN per key) and look for leftovers.
    let resolved = shipped;
    for (const k of Object.keys(subs)) {
      resolved = resolved.split('${' + k + '}').join(`arn:aws:lambda:eu-west-1:123456789012:function:${k}`);
    }
    const leftovers = [...new Set([...resolved.matchAll(/\$\{([A-Za-z0-9_]+)\}/g)].map((m) => m[0]))];
    check(leftovers.length === 0, `${smId}: placeholders without a substitution: ${leftovers.join(', ')}`);

    const wantStates = new Set();
    const collect = (states) => {
      for (const [n, s] of Object.entries(states ?? {})) {
        wantStates.add(n);
        for (const b of s.Branches ?? []) collect(b.States);
        collect(s.Iterator?.States);
        collect(s.ItemProcessor?.States);
      }
    };
    collect(JSON.parse(original).States);
    stateCount = wantStates.size;
    let def;
    try {
      def = JSON.parse(resolved);
    } catch (e) {
      check(false, `${smId}: definition after substitution is not JSON: ${e.message}`);
    }
    if (def) {
      const haveStates = new Set();
      const collectHave = (states) => {
        for (const [n, s] of Object.entries(states ?? {})) {
          haveStates.add(n);
          for (const b of s.Branches ?? []) collectHave(b.States);
          collectHave(s.Iterator?.States);
          collectHave(s.ItemProcessor?.States);
          if (s.Type === 'Task') {
            check(/^arn:aws:lambda:/.test(s.Resource), `${smId}: Task ${n} resource ${s.Resource} is not a Lambda ARN after substitution`);
          }
        }
      };
      collectHave(def.States);
      const missing = [...wantStates].filter((n) => !haveStates.has(n));
      check(missing.length === 0, `${smId}: states missing: ${missing.join(', ')}`);
    }
  }
  check(sm.LoggingConfiguration?.Level === 'ALL', `${smId}: logging level ${sm.LoggingConfiguration?.Level}, expected ALL`);
  check(sm.LoggingConfiguration?.IncludeExecutionData === true, `${smId}: IncludeExecutionData not true`);
  check(sm.StateMachineName === `docpipe-${env}-pipeline`, `${smId}: name ${sm.StateMachineName}`);
}

// ---------------------------------------------------------------- tables
const tables = ofType('AWS::DynamoDB::Table');
check(tables.length === 5, `expected 5 DynamoDB tables, found ${tables.length}`);
for (const [id, r] of tables) {
  const p = r.Properties;
  check(p.BillingMode === 'PAY_PER_REQUEST', `${id}: BillingMode ${p.BillingMode}`);
  check(p.PointInTimeRecoverySpecification?.PointInTimeRecoveryEnabled === true, `${id}: PITR off`);
  check(p.SSESpecification?.SSEEnabled === true, `${id}: SSE off`);
  check(r.DeletionPolicy === 'Retain', `${id}: DeletionPolicy ${r.DeletionPolicy}, expected Retain`);
}
const tableByName = Object.fromEntries(tables.map(([, r]) => [r.Properties.TableName, r.Properties]));
const gsis = (t) => (tableByName[t]?.GlobalSecondaryIndexes ?? []).map((g) => g.IndexName).sort();
check(eq(gsis(`docpipe-${env}-jobs`), ['by_created', 'by_owner']), `jobs table GSIs ${gsis(`docpipe-${env}-jobs`)}`);
check(eq(gsis(`docpipe-${env}-api-keys`), ['by_hash']), `api-keys table GSIs ${gsis(`docpipe-${env}-api-keys`)}`);
for (const t of ['jobs', 'idempotency', 'preview-cache', 'webhooks']) {
  const ttl = tableByName[`docpipe-${env}-${t}`]?.TimeToLiveSpecification;
  check(ttl?.AttributeName === 'expires_at' && ttl?.Enabled === true, `${t} table: TTL ${JSON.stringify(ttl)}`);
}
check(tableByName[`docpipe-${env}-jobs`]?.StreamSpecification?.StreamViewType === 'NEW_AND_OLD_IMAGES', 'jobs table: no stream of new and old images');
const webhookKeys = (tableByName[`docpipe-${env}-webhooks`]?.KeySchema ?? []).map((k) => k.AttributeName);
check(eq(webhookKeys, ['owner', 'webhook_id']), `webhooks table keys ${JSON.stringify(webhookKeys)}`);

// ---------------------------------------------------------------- buckets
const buckets = ofType('AWS::S3::Bucket');
check(buckets.length === 2, `expected 2 S3 buckets, found ${buckets.length}`);
for (const [id, r] of buckets) {
  const p = r.Properties;
  check(p.BucketEncryption?.ServerSideEncryptionConfiguration?.[0]?.ServerSideEncryptionByDefault?.SSEAlgorithm === 'AES256', `${id}: no SSE-S3`);
  const pab = p.PublicAccessBlockConfiguration ?? {};
  check(pab.BlockPublicAcls && pab.BlockPublicPolicy && pab.IgnorePublicAcls && pab.RestrictPublicBuckets, `${id}: public access not blocked`);
  check((p.LifecycleConfiguration?.Rules ?? []).some((x) => x.ExpirationInDays === 30 && x.Status === 'Enabled'), `${id}: no 30-day expiry`);
  check(r.DeletionPolicy === 'Retain', `${id}: DeletionPolicy ${r.DeletionPolicy}, expected Retain`);
  const tls = ofType('AWS::S3::BucketPolicy').some(([, bp]) =>
    bp.Properties.Bucket?.Ref === id &&
    bp.Properties.PolicyDocument.Statement.some((s) => s.Effect === 'Deny' && s.Condition?.Bool?.['aws:SecureTransport'] === 'false'),
  );
  check(tls, `${id}: no TLS-only bucket policy`);
}

// ---------------------------------------------------------------- events in and out
const queues = Object.fromEntries(ofType('AWS::SQS::Queue').map(([id, r]) => [id, r.Properties]));
for (const [q, dlq] of [['WebhookQueue', 'WebhookDeadLetterQueue'], ['IntakeQueue', 'IntakeDeadLetterQueue']]) {
  check(queues[q] !== undefined && queues[dlq] !== undefined, `queues ${q} and ${dlq} missing`);
  check(JSON.stringify(queues[q]?.RedrivePolicy?.deadLetterTargetArn) === JSON.stringify({ 'Fn::GetAtt': [dlq, 'Arn'] }), `${q}: no redrive to ${dlq}`);
}
check(ofType('AWS::Events::EventBus').some(([id, r]) => id === 'EventBus' && r.Properties.Name === `docpipe-${env}`), 'no EventBus');
const rules = ofType('AWS::Events::Rule').map(([, r]) => r.Properties);
check(
  rules.some((r) => eq(r.EventPattern?.source, ['docpipe']) && (r.Targets ?? []).some((x) => eq(x.Arn, { 'Fn::GetAtt': ['WebhookQueue', 'Arn'] }))),
  'no rule from the bus to the webhook queue',
);
check(
  rules.some((r) => eq(r.EventPattern?.source, ['aws.states']) && eq(r.EventPattern?.detail?.status, ['TIMED_OUT', 'ABORTED', 'FAILED'])),
  'no rule for executions that ended early',
);
const documents = buckets.find(([id]) => id === 'DocumentsBucket')?.[1].Properties;
const drop = documents?.NotificationConfiguration?.QueueConfigurations?.[0];
check(drop?.Event === 's3:ObjectCreated:*' && eq(drop?.Queue, { 'Fn::GetAtt': ['IntakeQueue', 'Arn'] }) && drop?.Filter?.S3Key?.Rules?.[0]?.Value === 'incoming/', `documents bucket: drop notification ${JSON.stringify(drop)}`);
check((documents?.LifecycleConfiguration?.Rules ?? []).some((x) => x.Prefix === 'incoming/' && x.Status === 'Enabled'), 'documents bucket: no incoming/ expiry');
const mappings = ofType('AWS::Lambda::EventSourceMapping').map(([, r]) => r.Properties);
check(mappings.length === 3, `expected 3 event source mappings, found ${mappings.length}`);

// ---------------------------------------------------------------- logs, API, settings, alarms, outputs
const logGroups = ofType('AWS::Logs::LogGroup');
check(logGroups.length === 13, `expected 13 log groups, found ${logGroups.length}`);
for (const [id, r] of logGroups) check(r.Properties.RetentionInDays === 30, `${id}: retention ${r.Properties.RetentionInDays}, expected 30`);

const stages = ofType('AWS::ApiGatewayV2::Stage');
check(stages.length === 1, `expected 1 API stage, found ${stages.length}`);
for (const [id, r] of stages) {
  const p = r.Properties;
  check(p.StageName === '$default' && p.AutoDeploy === true, `${id}: not the auto-deployed $default stage`);
  check(typeof p.DefaultRouteSettings?.ThrottlingRateLimit === 'number' && typeof p.DefaultRouteSettings?.ThrottlingBurstLimit === 'number', `${id}: no throttling`);
  check(p.AccessLogSettings?.DestinationArn !== undefined, `${id}: no access log`);
}
const apis = ofType('AWS::ApiGatewayV2::Api');
check(apis.length === 1 && apis[0][1].Properties.CorsConfiguration !== undefined, 'HTTP API missing or without CORS');
check(ofType('AWS::ApiGatewayV2::Route').some(([, r]) => r.Properties.RouteKey === 'ANY /{proxy+}'), 'no ANY /{proxy+} route');

const params = ofType('AWS::SSM::Parameter');
check(params.some(([, r]) => r.Properties.Name === `/docpipe/${env}/bedrock_model_id`), `no /docpipe/${env}/bedrock_model_id parameter`);

const topics = ofType('AWS::SNS::Topic');
check(topics.length === 1, `expected 1 SNS topic, found ${topics.length}`);
const alarms = ofType('AWS::CloudWatch::Alarm');
const alarmNames = alarms.map(([, r]) => r.Properties.AlarmName).sort();
const wantAlarms = ['api-5xx', 'events-behind', 'executions-aborted', 'executions-failed', 'executions-timed-out', 'intake-dead-letters', 'jobs-reconciled', 'lambda-errors', 'lambda-throttles', 'webhook-dead-letters'].map((a) => `docpipe-${env}-${a}`);
check(eq(alarmNames, wantAlarms), `alarms ${JSON.stringify(alarmNames)}, expected ${JSON.stringify(wantAlarms)}`);
for (const [id, r] of alarms) {
  check((r.Properties.AlarmActions ?? []).length === 1 && topics.length === 1 && r.Properties.AlarmActions[0].Ref === topics[0][0], `${id}: does not notify the alarm topic`);
}
for (const [id, r] of alarms.filter(([, r]) => r.Properties.Metrics)) {
  const ids = r.Properties.Metrics.filter((m) => m.MetricStat).length;
  check(ids === 7, `${id}: sums ${ids} functions, expected 7`);
}

const dashboards = ofType('AWS::CloudWatch::Dashboard');
check(dashboards.length === 1 && dashboards[0][0] === 'Dashboard', `expected one Dashboard, found ${dashboards.map(([id]) => id)}`);
const secrets = ofType('AWS::SecretsManager::Secret').map(([id]) => id).sort();
check(eq(secrets, ['UploadSigningSecret', 'WebhookSigningSecret']), `secrets ${JSON.stringify(secrets)}`);
for (const [id, { Properties: p }] of functions) {
  check(p.TracingConfig?.Mode === 'Active', `${id}: X-Ray tracing not Active`);
}
for (const [id, r] of ofType('AWS::StepFunctions::StateMachine')) {
  check(r.Properties.TracingConfiguration?.Enabled === true, `${id}: X-Ray tracing off`);
}
for (const o of ['ApiUrl', 'StateMachineArn', 'DocumentsBucketName', 'ResultsBucketName', 'JobsTableName', 'ApiKeysTableName', 'AlarmTopicArn', 'DashboardName', 'EventBusName', 'IntakeQueueUrl']) {
  check(template.Outputs?.[o] !== undefined, `output ${o} missing`);
}

if (failures.length) {
  for (const f of failures) console.error(`FAIL ${f}`);
  console.error(`cdk check: ${failures.length} assertion(s) failed on ${stackName}`);
  process.exit(1);
}
console.log(
  `cdk check: ${stackName} ok: ${functions.length} functions (arm64, provided.al2023), state machine with ${stateCount} states ` +
    `and ${Object.keys(machines[0][1].Properties.DefinitionSubstitutions).length} substitutions, ${tables.length} tables, ` +
    `${buckets.length} buckets, ${logGroups.length} log groups (30 d), ${alarms.length} alarms, ${Object.keys(resources).length} resources`,
);
