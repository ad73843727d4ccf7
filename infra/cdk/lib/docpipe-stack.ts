// The docpipe stack, mirroring infra/template.yaml (SAM) resource for resource: one Lambda per
// pipeline stage plus the API Lambda, the Step Functions state machine from the shared
// statemachine/pipeline.asl.json, DynamoDB tables, S3 buckets, the Bedrock model parameter, log
// groups and alarms; events in and out (the event bus and its publisher, webhook delivery from
// SQS, S3 drop and queue intake, the execution reconciler). The named resources keep the SAM template's logical ids, so the two
// synthesized templates read alike.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Aws, CfnOutput, CfnResource, Duration, Fn, RemovalPolicy, Stack, type StackProps } from 'aws-cdk-lib';
import * as apigw from 'aws-cdk-lib/aws-apigatewayv2';
import { HttpLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import { AccessLogFormat } from 'aws-cdk-lib/aws-apigateway';
import * as cw from 'aws-cdk-lib/aws-cloudwatch';
import { SnsAction } from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { DynamoEventSource, SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import * as subs from 'aws-cdk-lib/aws-sns-subscriptions';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import * as ssm from 'aws-cdk-lib/aws-ssm';
import type { Construct, IConstruct } from 'constructs';

export const DOCPIPE_ENVS = ['dev', 'prod', 'smoke'] as const;
export type DocpipeEnv = (typeof DOCPIPE_ENVS)[number];

export interface DocpipeStackProps extends StackProps {
  readonly docpipeEnv: DocpipeEnv;
  /** Folder with one sub-folder per binary (`<lambdaDir>/<binary>/bootstrap`). */
  readonly lambdaDir: string;
  /** statemachine/pipeline.asl.json */
  readonly aslPath: string;
  readonly bedrockModelId: string;
  readonly corsOrigins: string[];
  readonly apiThrottleRate: number;
  readonly apiThrottleBurst: number;
  readonly alarmEmail?: string;
}

/** A pipeline stage: `id` names the construct and the ASL placeholder `${<id>FunctionArn}`. */
interface StageSpec {
  readonly id: string;
  readonly binary: string;
  readonly description: string;
  readonly memorySize?: number;
  readonly timeoutSecs?: number;
}

// Same order, descriptions, memory and timeouts as template.yaml (Globals: 512 MB, 60 s).
const STAGES: readonly StageSpec[] = [
  { id: 'Ingest', binary: 'ingest', description: 'Checks format and size, hashes and stores the document.', memorySize: 1024, timeoutSecs: 120 },
  { id: 'Ocr', binary: 'ocr', description: 'Textract into the document model.', memorySize: 1024, timeoutSecs: 600 },
  { id: 'Extract', binary: 'extract', description: 'Bedrock Converse with the invoice schema as a tool.', timeoutSecs: 300 },
  { id: 'Verify', binary: 'verify', description: 'Required fields, arithmetic, dates, confidence.' },
  { id: 'Finalize', binary: 'finalize', description: 'Writes the result, sets the final status, records costs.' },
  { id: 'RecordFailure', binary: 'record-failure', description: "Marks the job failed with the caught error's code." },
];

const DEFAULT_MEMORY_MB = 512;
const DEFAULT_TIMEOUT_SECS = 60;
const RETENTION = logs.RetentionDays.ONE_MONTH;

/**
 * `${Name}` placeholders of an ASL file, in order of first appearance. Only identifier-like
 * names count: the definition's Comment mentions `${...}` in prose, which is no placeholder
 * (and neither SAM nor CloudFormation substitutes it).
 */
export function aslPlaceholders(definition: string): string[] {
  const seen = new Set<string>();
  for (const m of definition.matchAll(/\$\{([A-Za-z0-9_]+)\}/g)) seen.add(m[1]);
  return [...seen];
}

/** Give a construct's CloudFormation resource the logical id it has in template.yaml. */
function samId(construct: IConstruct, logicalId: string): void {
  (construct.node.defaultChild as CfnResource).overrideLogicalId(logicalId);
}

export class DocpipeStack extends Stack {
  constructor(scope: Construct, id: string, props: DocpipeStackProps) {
    super(scope, id, props);
    const env = props.docpipeEnv;
    const name = (suffix: string) => `docpipe-${env}-${suffix}`;
    const ssmPathArn = `arn:${Aws.PARTITION}:ssm:${Aws.REGION}:${Aws.ACCOUNT_ID}:parameter/docpipe/${env}`;

    // ------------------------------------------------------------------ tables
    const tableDefaults = {
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      encryption: dynamodb.TableEncryption.AWS_MANAGED, // SSESpecification.SSEEnabled: true
      removalPolicy: RemovalPolicy.RETAIN,
    };
    const S = dynamodb.AttributeType.STRING;

    const jobsTable = new dynamodb.Table(this, 'JobsTable', {
      ...tableDefaults,
      tableName: name('jobs'),
      partitionKey: { name: 'job_id', type: S },
      timeToLiveAttribute: 'expires_at',
      // The outbox of status events (PublishEventsFunction).
      stream: dynamodb.StreamViewType.NEW_AND_OLD_IMAGES,
    });
    jobsTable.addGlobalSecondaryIndex({
      indexName: 'by_owner',
      partitionKey: { name: 'owner', type: S },
      sortKey: { name: 'created_key', type: S },
      projectionType: dynamodb.ProjectionType.ALL,
    });
    jobsTable.addGlobalSecondaryIndex({
      indexName: 'by_created',
      partitionKey: { name: 'list_pk', type: S },
      sortKey: { name: 'created_key', type: S },
      projectionType: dynamodb.ProjectionType.ALL,
    });
    samId(jobsTable, 'JobsTable');

    const apiKeysTable = new dynamodb.Table(this, 'ApiKeysTable', {
      ...tableDefaults,
      tableName: name('api-keys'),
      partitionKey: { name: 'name', type: S },
    });
    apiKeysTable.addGlobalSecondaryIndex({
      indexName: 'by_hash',
      partitionKey: { name: 'key_hash', type: S },
      projectionType: dynamodb.ProjectionType.ALL,
    });
    samId(apiKeysTable, 'ApiKeysTable');

    const idempotencyTable = new dynamodb.Table(this, 'IdempotencyTable', {
      ...tableDefaults,
      tableName: name('idempotency'),
      partitionKey: { name: 'owner_key', type: S },
      timeToLiveAttribute: 'expires_at',
    });
    samId(idempotencyTable, 'IdempotencyTable');

    const previewCacheTable = new dynamodb.Table(this, 'PreviewCacheTable', {
      ...tableDefaults,
      tableName: name('preview-cache'),
      partitionKey: { name: 'blueprint_hash', type: S },
      timeToLiveAttribute: 'expires_at',
    });
    samId(previewCacheTable, 'PreviewCacheTable');

    const webhooksTable = new dynamodb.Table(this, 'WebhooksTable', {
      ...tableDefaults,
      tableName: name('webhooks'),
      partitionKey: { name: 'owner', type: S },
      sortKey: { name: 'webhook_id', type: S },
      // Failure lists ({webhook_id}#dead#{event_id}) expire as final jobs do.
      timeToLiveAttribute: 'expires_at',
    });
    samId(webhooksTable, 'WebhooksTable');

    // ------------------------------------------------------------------ buckets
    // Bucket names are global across all AWS accounts: the account id keeps them unique.
    const bucketDefaults: s3.BucketProps = {
      encryption: s3.BucketEncryption.S3_MANAGED, // SSE AES256
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      enforceSSL: true, // bucket policy denying s3:* without aws:SecureTransport
      lifecycleRules: [
        { id: 'expire-after-30-days', expiration: Duration.days(30), abortIncompleteMultipartUploadAfter: Duration.days(1) },
      ],
      removalPolicy: RemovalPolicy.RETAIN,
    };
    // The core's retention (docpipe-core retention.rs): documents 30 days; drops, intake
    // documents and presigned uploads never taken, as long as a dead-lettered message that names
    // them is kept (14 days).
    const documentsBucket = new s3.Bucket(this, 'DocumentsBucket', {
      ...bucketDefaults,
      lifecycleRules: [
        ...(bucketDefaults.lifecycleRules ?? []),
        { id: 'incoming-expire-after-14-days', prefix: 'incoming/', expiration: Duration.days(14) },
        { id: 'intake-expire-after-14-days', prefix: 'intake/', expiration: Duration.days(14) },
      ],
      bucketName: `docpipe-${env}-documents-${Aws.ACCOUNT_ID}`,
      // Browsers PUT to presigned upload URLs directly.
      cors: [{ allowedMethods: [s3.HttpMethods.PUT], allowedOrigins: props.corsOrigins, allowedHeaders: ['*'], maxAge: 600 }],
    });
    samId(documentsBucket, 'DocumentsBucket');
    const resultsBucket = new s3.Bucket(this, 'ResultsBucket', {
      ...bucketDefaults,
      bucketName: `docpipe-${env}-results-${Aws.ACCOUNT_ID}`,
    });
    samId(resultsBucket, 'ResultsBucket');

    // ------------------------------------------------------------------ settings
    const modelParam = new ssm.StringParameter(this, 'BedrockModelIdParameter', {
      parameterName: `/docpipe/${env}/bedrock_model_id`,
      stringValue: props.bedrockModelId,
      description: 'Read by the functions at cold start and again every 5 minutes (docpipe-aws ParameterStore).',
    });
    samId(modelParam, 'BedrockModelIdParameter');

    // Signing secrets, read by the API through a 5-minute cache (docpipe-aws SecretCache).
    const signingSecret = (id: string, suffix: string, description: string) => {
      const secret = new secretsmanager.Secret(this, id, {
        secretName: `docpipe/${env}/${suffix}`,
        description,
        generateSecretString: { passwordLength: 48, excludePunctuation: true },
      });
      samId(secret, id);
      return secret;
    };
    const uploadSecret = signingSecret('UploadSigningSecret', 'upload-signing', 'HMAC key that signs upload links and their metadata.');
    const webhookSecret = signingSecret('WebhookSigningSecret', 'webhook-signing', 'HMAC key that signs webhook deliveries (header docpipe-signature).');

    // ------------------------------------------------------------------ queues, event bus
    const queue = (id: string, suffix: string, props: sqs.QueueProps = {}) => {
      const q = new sqs.Queue(this, id, { queueName: name(suffix), encryption: sqs.QueueEncryption.SQS_MANAGED, ...props });
      samId(q, id);
      return q;
    };
    const fourteenDays = Duration.days(14);
    const webhookDeadLetterQueue = queue('WebhookDeadLetterQueue', 'webhooks-dlq', { retentionPeriod: fourteenDays });
    // Retries run for a day from the first send (the core's policy), then dead-letter.
    const webhookQueue = queue('WebhookQueue', 'webhooks', {
      visibilityTimeout: Duration.seconds(360),
      retentionPeriod: Duration.days(2),
      deadLetterQueue: { queue: webhookDeadLetterQueue, maxReceiveCount: 60 },
    });
    const intakeDeadLetterQueue = queue('IntakeDeadLetterQueue', 'intake-dlq', { retentionPeriod: fourteenDays });
    const intakeQueue = queue('IntakeQueue', 'intake', {
      visibilityTimeout: Duration.seconds(360),
      deadLetterQueue: { queue: intakeDeadLetterQueue, maxReceiveCount: 5 },
    });
    // The bucket's notifications name the queue: the bucket's ARN is spelled out (a reference
    // would make a cycle), and S3 checks it may send when the notification is set.
    const intakeQueuePolicy = new sqs.CfnQueuePolicy(this, 'IntakeQueuePolicy', {
      queues: [intakeQueue.queueUrl],
      policyDocument: new iam.PolicyDocument({
        statements: [
          new iam.PolicyStatement({
            effect: iam.Effect.ALLOW,
            principals: [new iam.ServicePrincipal('s3.amazonaws.com')],
            actions: ['sqs:SendMessage'],
            resources: [intakeQueue.queueArn],
            conditions: {
              ArnLike: { 'aws:SourceArn': `arn:${Aws.PARTITION}:s3:::docpipe-${env}-documents-${Aws.ACCOUNT_ID}` },
              StringEquals: { 'aws:SourceAccount': Aws.ACCOUNT_ID },
            },
          }),
        ],
      }),
    });
    intakeQueuePolicy.overrideLogicalId('IntakeQueuePolicy');
    const cfnDocuments = documentsBucket.node.defaultChild as s3.CfnBucket;
    // Drops under incoming/{tenant}/ start jobs (IntakeFunction).
    cfnDocuments.notificationConfiguration = {
      queueConfigurations: [
        {
          event: 's3:ObjectCreated:*',
          queue: intakeQueue.queueArn,
          filter: { s3Key: { rules: [{ name: 'prefix', value: 'incoming/' }] } },
        },
      ],
    };
    cfnDocuments.addDependency(intakeQueuePolicy);

    const eventBus = new events.EventBus(this, 'EventBus', { eventBusName: `docpipe-${env}` });
    samId(eventBus, 'EventBus');
    const jobStatusRule = new events.Rule(this, 'JobStatusToWebhooksRule', {
      ruleName: name('job-status-to-webhooks'),
      description: 'Every job.status.v1 event to the webhook queue.',
      eventBus,
      eventPattern: { source: ['docpipe'], detailType: ['job.status.v1'] },
      targets: [new targets.SqsQueue(webhookQueue)], // adds the queue policy for this rule
    });
    samId(jobStatusRule, 'JobStatusToWebhooksRule');

    // ------------------------------------------------------------------ functions
    const commonEnv: Record<string, string> = {
      DOCPIPE_ENV: env,
      DOCPIPE_JOBS_TABLE: jobsTable.tableName,
      DOCPIPE_PREVIEW_CACHE_TABLE: previewCacheTable.tableName,
      DOCPIPE_DOCUMENTS_BUCKET: documentsBucket.bucketName,
      DOCPIPE_RESULTS_BUCKET: resultsBucket.bucketName,
      DOCPIPE_LOG: 'info',
    };

    const makeFunction = (spec: StageSpec, extraEnv: Record<string, string> = {}): lambda.Function => {
      const assetDir = path.join(props.lambdaDir, spec.binary);
      if (!fs.existsSync(path.join(assetDir, 'bootstrap'))) {
        throw new Error(
          `${assetDir}/bootstrap is missing: build the functions first ` +
            `(from the repo root: cargo lambda build --release --arm64), or pass -c lambdaDir=PATH ` +
            `to a folder holding <binary>/bootstrap for ${spec.binary}.`,
        );
      }
      const logGroup = new logs.LogGroup(this, `${spec.id}LogGroup`, {
        logGroupName: `/aws/lambda/${name(spec.binary)}`,
        retention: RETENTION,
        removalPolicy: RemovalPolicy.DESTROY,
      });
      samId(logGroup, `${spec.id}LogGroup`);
      const fn = new lambda.Function(this, `${spec.id}Function`, {
        functionName: name(spec.binary),
        description: spec.description,
        runtime: lambda.Runtime.PROVIDED_AL2023,
        architecture: lambda.Architecture.ARM_64,
        handler: 'bootstrap',
        code: lambda.Code.fromAsset(assetDir),
        memorySize: spec.memorySize ?? DEFAULT_MEMORY_MB,
        timeout: Duration.seconds(spec.timeoutSecs ?? DEFAULT_TIMEOUT_SECS),
        environment: { ...commonEnv, ...extraEnv },
        logGroup,
        // X-Ray (CDK adds the write permissions to the role, as SAM does).
        tracing: lambda.Tracing.ACTIVE,
      });
      samId(fn, `${spec.id}Function`);
      return fn;
    };

    const allow = (fn: lambda.Function, actions: string[], resources: string[]) =>
      fn.addToRolePolicy(new iam.PolicyStatement({ effect: iam.Effect.ALLOW, actions, resources }));
    const jobsRw = (fn: lambda.Function) => allow(fn, ['dynamodb:GetItem', 'dynamodb:UpdateItem'], [jobsTable.tableArn]);
    const settingsRead = (fn: lambda.Function) => allow(fn, ['ssm:GetParametersByPath'], [ssmPathArn]);

    const stageFns = new Map<string, lambda.Function>();
    for (const spec of STAGES) stageFns.set(spec.id, makeFunction(spec));
    const stage = (id: string) => stageFns.get(id)!;

    // Least privilege, statement for statement as in template.yaml.
    {
      const fn = stage('Ingest');
      jobsRw(fn);
      allow(fn, ['s3:GetObject', 's3:PutObject', 's3:DeleteObject'], [documentsBucket.arnForObjects('*')]);
      // Content-hash dedupe: look the document up, check the earlier result exists.
      allow(fn, ['dynamodb:GetItem'], [previewCacheTable.tableArn]);
      allow(fn, ['s3:GetObject'], [resultsBucket.arnForObjects('results/*')]);
      // Without ListBucket S3 answers 403 for a missing key, not the 404 of "absent".
      allow(fn, ['s3:ListBucket'], [documentsBucket.bucketArn, resultsBucket.bucketArn]);
      settingsRead(fn);
    }
    {
      const fn = stage('Ocr');
      jobsRw(fn);
      allow(fn, ['s3:GetObject'], [
        documentsBucket.arnForObjects('documents/*'),
        documentsBucket.arnForObjects('blueprints/*'),
        documentsBucket.arnForObjects('textract/*'),
      ]);
      allow(fn, ['s3:PutObject', 's3:DeleteObject'], [documentsBucket.arnForObjects('textract/*')]);
      allow(fn, ['s3:PutObject'], [resultsBucket.arnForObjects('ocr/*')]);
      // Textract has no resource-level permissions.
      allow(fn, ['textract:DetectDocumentText', 'textract:StartDocumentTextDetection', 'textract:GetDocumentTextDetection'], ['*']);
      settingsRead(fn);
    }
    {
      const fn = stage('Extract');
      jobsRw(fn);
      allow(fn, ['s3:GetObject'], [
        documentsBucket.arnForObjects('documents/*'),
        documentsBucket.arnForObjects('blueprints/*'),
        resultsBucket.arnForObjects('ocr/*'),
      ]);
      allow(fn, ['s3:PutObject'], [resultsBucket.arnForObjects('results/*')]);
      // Converse is authorised as InvokeModel on the model (or its inference profile).
      allow(fn, ['bedrock:InvokeModel'], [
        `arn:${Aws.PARTITION}:bedrock:*::foundation-model/*`,
        `arn:${Aws.PARTITION}:bedrock:${Aws.REGION}:${Aws.ACCOUNT_ID}:inference-profile/*`,
      ]);
      settingsRead(fn);
    }
    for (const id of ['Verify', 'Finalize']) {
      const fn = stage(id);
      jobsRw(fn);
      allow(fn, ['s3:GetObject', 's3:PutObject'], [resultsBucket.arnForObjects('results/*')]);
      settingsRead(fn);
    }
    // Content-hash dedupe: finalize offers the finished result to later duplicates.
    allow(stage('Finalize'), ['dynamodb:PutItem'], [previewCacheTable.tableArn]);
    {
      const fn = stage('RecordFailure');
      jobsRw(fn);
      settingsRead(fn);
    }
    // A job that asks for it loses its document and text once final (the result stays).
    for (const id of ['Finalize', 'RecordFailure']) {
      allow(stage(id), ['s3:DeleteObject'], [documentsBucket.arnForObjects('*'), resultsBucket.arnForObjects('ocr/*')]);
    }

    // ------------------------------------------------------------------ state machine
    // The SAME definition file as SAM; its `${XFunctionArn}` placeholders become
    // DefinitionSubstitutions. The list is read from the file, so a new Task whose placeholder
    // names no function fails the synth instead of deploying a broken machine.
    const definition = fs.readFileSync(props.aslPath, 'utf8');
    JSON.parse(definition); // fail early on a malformed file
    const placeholders = aslPlaceholders(definition);
    if (placeholders.length === 0) throw new Error(`${props.aslPath}: no \${...FunctionArn} placeholders found`);
    const definitionSubstitutions: Record<string, string> = {};
    const invoked: lambda.Function[] = [];
    for (const ph of placeholders) {
      const m = /^(.+)FunctionArn$/.exec(ph);
      const fn = m ? stageFns.get(m[1]) : undefined;
      if (!fn) {
        throw new Error(
          `${props.aslPath}: placeholder \${${ph}} has no function in the CDK stack ` +
            `(known: ${[...stageFns.keys()].map((k) => `\${${k}FunctionArn}`).join(', ')}); ` +
            `add the stage to STAGES in lib/docpipe-stack.ts (and to template.yaml).`,
        );
      }
      definitionSubstitutions[ph] = fn.functionArn;
      invoked.push(fn);
    }

    const stateMachineLogGroup = new logs.LogGroup(this, 'StateMachineLogGroup', {
      logGroupName: `/aws/vendedlogs/states/${name('pipeline')}`,
      retention: RETENTION,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    samId(stateMachineLogGroup, 'StateMachineLogGroup');

    // CDK adds the vended-log-delivery statement (logs:*LogDelivery etc. on "*") to the role.
    const stateMachine = new sfn.StateMachine(this, 'PipelineStateMachine', {
      stateMachineName: name('pipeline'),
      stateMachineType: sfn.StateMachineType.STANDARD,
      definitionBody: sfn.DefinitionBody.fromFile(props.aslPath),
      definitionSubstitutions,
      logs: { destination: stateMachineLogGroup, level: sfn.LogLevel.ALL, includeExecutionData: true },
      tracingEnabled: true, // X-Ray; CDK adds the xray:* statement to the role
    });
    samId(stateMachine, 'PipelineStateMachine');
    // lambda:InvokeFunction on each function and its versions, like SAM's LambdaInvokePolicy.
    for (const fn of invoked) fn.grantInvoke(stateMachine);

    // ------------------------------------------------------------------ events in and out
    // Status events: jobs table stream -> PublishEvents -> EventBus -> rule -> WebhookQueue ->
    // DeliverWebhooks. Roles as in template.yaml (docpipe-aws permissions::needs); the event
    // sources add the stream and queue reads, as SAM's event sources do.
    const publishFn = makeFunction(
      { id: 'PublishEvents', binary: 'publish-events', description: 'Puts every job status change on the event bus as a job.status.v1 CloudEvent.' },
      { DOCPIPE_EVENT_BUS: eventBus.eventBusName },
    );
    publishFn.addEventSource(
      new DynamoEventSource(jobsTable, {
        startingPosition: lambda.StartingPosition.TRIM_HORIZON,
        batchSize: 100,
        maxBatchingWindow: Duration.seconds(1),
        filters: [lambda.FilterCriteria.filter({ eventName: lambda.FilterRule.or('INSERT', 'MODIFY') })],
      }),
    );
    allow(publishFn, ['events:PutEvents'], [eventBus.eventBusArn]);
    settingsRead(publishFn);

    const deliverFn = makeFunction(
      { id: 'DeliverWebhooks', binary: 'deliver-webhooks', description: "Delivers job.status.v1 events to the job owner's webhooks, signed (Standard Webhooks)." },
      { DOCPIPE_WEBHOOKS_TABLE: webhooksTable.tableName, DOCPIPE_WEBHOOK_DEAD_LETTER_URL: webhookDeadLetterQueue.queueUrl },
    );
    deliverFn.addEventSource(new SqsEventSource(webhookQueue, { batchSize: 10, reportBatchItemFailures: true }));
    allow(deliverFn, ['dynamodb:GetItem'], [jobsTable.tableArn]);
    allow(deliverFn, ['dynamodb:Query', 'dynamodb:PutItem'], [webhooksTable.tableArn]);
    allow(deliverFn, ['sqs:ChangeMessageVisibility'], [webhookQueue.queueArn]);
    allow(deliverFn, ['sqs:SendMessage'], [webhookDeadLetterQueue.queueArn]);
    settingsRead(deliverFn);

    const intakeFn = makeFunction(
      { id: 'Intake', binary: 'intake', description: 'Makes a job of each dropped document or intake message and starts its execution.' },
      {
        DOCPIPE_STATE_MACHINE_ARN: stateMachine.stateMachineArn,
        DOCPIPE_IDEMPOTENCY_TABLE: idempotencyTable.tableName,
        DOCPIPE_INTAKE_DEAD_LETTER_URL: intakeDeadLetterQueue.queueUrl,
        DOCPIPE_API_KEYS_TABLE: apiKeysTable.tableName,
      },
    );
    intakeFn.addEventSource(new SqsEventSource(intakeQueue, { batchSize: 10, reportBatchItemFailures: true }));
    allow(intakeFn, ['dynamodb:GetItem'], [apiKeysTable.tableArn]);
    allow(intakeFn, ['dynamodb:GetItem', 'dynamodb:PutItem'], [idempotencyTable.tableArn]);
    allow(intakeFn, ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem'], [jobsTable.tableArn]);
    allow(intakeFn, ['s3:GetObject'], [documentsBucket.arnForObjects('intake/*')]);
    allow(intakeFn, ['s3:ListBucket'], [documentsBucket.bucketArn]);
    allow(intakeFn, ['states:StartExecution'], [stateMachine.stateMachineArn]);
    allow(intakeFn, ['sqs:SendMessage'], [intakeDeadLetterQueue.queueArn]);
    settingsRead(intakeFn);

    // Executions that ended early (timed out, aborted, failed) while their job was not final.
    const reconcileFn = makeFunction({
      id: 'Reconcile',
      binary: 'reconcile',
      description: 'Fails the job of an execution that timed out, was aborted or failed, unless it is final.',
    });
    // SAM names an EventBridgeRule event's rule {Function}{Event}.
    const executionEnded = new events.Rule(this, 'ReconcileFunctionExecutionEnded', {
      eventPattern: {
        source: ['aws.states'],
        detailType: ['Step Functions Execution Status Change'],
        detail: { status: ['TIMED_OUT', 'ABORTED', 'FAILED'], stateMachineArn: [stateMachine.stateMachineArn] },
      },
      targets: [new targets.LambdaFunction(reconcileFn, { retryAttempts: 185, maxEventAge: Duration.hours(24) })],
    });
    samId(executionEnded, 'ReconcileFunctionExecutionEnded');
    jobsRw(reconcileFn);
    settingsRead(reconcileFn);

    // ------------------------------------------------------------------ API
    const apiFn = makeFunction(
      { id: 'Api', binary: 'api', description: "The docpipe HTTP API (docpipe-api's router under lambda_http).", timeoutSecs: 29 },
      {
        DOCPIPE_STATE_MACHINE_ARN: stateMachine.stateMachineArn,
        DOCPIPE_API_KEYS_TABLE: apiKeysTable.tableName,
        DOCPIPE_IDEMPOTENCY_TABLE: idempotencyTable.tableName,
        DOCPIPE_PREVIEW_CACHE_TABLE: previewCacheTable.tableName,
        DOCPIPE_UPLOAD_SIGNING_SECRET: uploadSecret.secretArn,
        DOCPIPE_WEBHOOK_SECRET: webhookSecret.secretArn,
        DOCPIPE_WEBHOOKS_TABLE: webhooksTable.tableName,
        DOCPIPE_WEBHOOK_QUEUE_URL: webhookQueue.queueUrl,
      },
    );
    // What the API's code path calls (docpipe-aws permissions::needs(Api)), as in template.yaml.
    allow(apiFn, ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem'], [jobsTable.tableArn]);
    allow(apiFn, ['dynamodb:Query'], [`${jobsTable.tableArn}/index/*`, `${apiKeysTable.tableArn}/index/*`]);
    allow(apiFn, ['dynamodb:GetItem', 'dynamodb:UpdateItem', 'dynamodb:Scan'], [apiKeysTable.tableArn]);
    allow(apiFn, ['dynamodb:GetItem', 'dynamodb:PutItem'], [idempotencyTable.tableArn]);
    allow(apiFn, ['dynamodb:GetItem'], [previewCacheTable.tableArn]);
    allow(apiFn, ['s3:GetObject', 's3:PutObject', 's3:DeleteObject'], [documentsBucket.arnForObjects('*')]);
    allow(apiFn, ['s3:GetObject'], [resultsBucket.arnForObjects('*')]);
    // Health's HeadBucket; and a missing key answers 404, not 403.
    allow(apiFn, ['s3:ListBucket'], [documentsBucket.bucketArn, resultsBucket.bucketArn]);
    allow(apiFn, ['states:StartExecution', 'states:DescribeStateMachine'], [stateMachine.stateMachineArn]);
    allow(apiFn, ['states:StopExecution', 'states:DescribeExecution', 'states:GetExecutionHistory'], [
      `arn:${Aws.PARTITION}:states:${Aws.REGION}:${Aws.ACCOUNT_ID}:execution:${name('pipeline')}:*`,
    ]);
    allow(apiFn, ['secretsmanager:GetSecretValue'], [uploadSecret.secretArn, webhookSecret.secretArn]);
    // Webhooks: subscriptions and failure lists; a replay goes to the webhook queue.
    allow(apiFn, ['dynamodb:PutItem', 'dynamodb:GetItem', 'dynamodb:Query', 'dynamodb:DeleteItem'], [webhooksTable.tableArn]);
    allow(apiFn, ['sqs:SendMessage'], [webhookQueue.queueArn]);
    settingsRead(apiFn);

    const apiAccessLogGroup = new logs.LogGroup(this, 'ApiAccessLogGroup', {
      logGroupName: `/aws/apigateway/${name('api-access')}`,
      retention: RETENTION,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    samId(apiAccessLogGroup, 'ApiAccessLogGroup');

    const httpApi = new apigw.HttpApi(this, 'HttpApi', {
      apiName: `docpipe-${env}`, // SAM names an unnamed HttpApi after the stack
      createDefaultStage: false, // made below, with throttling and access logs
      corsPreflight: {
        allowOrigins: props.corsOrigins,
        allowMethods: [
          apigw.CorsHttpMethod.GET,
          apigw.CorsHttpMethod.POST,
          apigw.CorsHttpMethod.PUT,
          apigw.CorsHttpMethod.DELETE,
          apigw.CorsHttpMethod.OPTIONS,
        ],
        allowHeaders: ['authorization', 'content-type', 'x-api-key', 'idempotency-key', 'x-request-id'],
        exposeHeaders: ['x-request-id', 'retry-after'],
        maxAge: Duration.seconds(600),
      },
    });
    samId(httpApi, 'HttpApi');
    new apigw.HttpStage(this, 'HttpApiDefaultStage', {
      httpApi,
      stageName: '$default',
      autoDeploy: true,
      throttle: { rateLimit: props.apiThrottleRate, burstLimit: props.apiThrottleBurst },
      accessLogSettings: {
        destination: new apigw.LogGroupLogDestination(apiAccessLogGroup),
        format: AccessLogFormat.custom(
          '{"requestId":"$context.requestId","ip":"$context.identity.sourceIp","method":"$context.httpMethod",' +
            '"path":"$context.path","status":"$context.status","latency":"$context.responseLatency",' +
            '"integrationError":"$context.integrationErrorMessage"}',
        ),
      },
    });
    httpApi.addRoutes({
      path: '/{proxy+}',
      methods: [apigw.HttpMethod.ANY],
      integration: new HttpLambdaIntegration('ApiIntegration', apiFn), // payload format 2.0, as SAM
    });

    // ------------------------------------------------------------------ alarms
    const alarmTopic = new sns.Topic(this, 'AlarmTopic', {
      topicName: name('alarms'),
      masterKey: kms.Alias.fromAliasName(this, 'SnsManagedKey', 'alias/aws/sns'),
    });
    samId(alarmTopic, 'AlarmTopic');
    if (props.alarmEmail) alarmTopic.addSubscription(new subs.EmailSubscription(props.alarmEmail));
    const alarmAction = new SnsAction(alarmTopic);

    const period = Duration.minutes(5);
    const alarmCommon = {
      evaluationPeriods: 1,
      comparisonOperator: cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      treatMissingData: cw.TreatMissingData.NOT_BREACHING,
    };

    const executionsAlarm = (id: string, suffix: string, metricName: string, description: string, threshold: number) =>
      new cw.Alarm(this, id, {
        ...alarmCommon,
        alarmName: name(suffix),
        alarmDescription: description,
        metric: new cw.Metric({
          namespace: 'AWS/States',
          metricName,
          dimensionsMap: { StateMachineArn: stateMachine.stateMachineArn },
          statistic: cw.Stats.SUM,
          period,
        }),
        threshold,
      });
    const executionsFailed = executionsAlarm('ExecutionsFailedAlarm', 'executions-failed', 'ExecutionsFailed',
      'A pipeline execution failed (a job failed in a way the definition did not catch).', 1);
    const executionsTimedOut = executionsAlarm('ExecutionsTimedOutAlarm', 'executions-timed-out', 'ExecutionsTimedOut',
      'A pipeline execution timed out.', 1);
    const executionsAborted = executionsAlarm('ExecutionsAbortedAlarm', 'executions-aborted', 'ExecutionsAborted',
      'Ten or more pipeline executions were aborted in 5 minutes (cancelling a job aborts its execution; a burst means something else stops them).', 10);

    // Metric ids as in template.yaml: ingest, ocr, ..., recordfailure, api.
    const allFns: [string, lambda.Function][] = [
      ...STAGES.map((s): [string, lambda.Function] => [s.id.toLowerCase(), stage(s.id)]),
      ['api', apiFn],
    ];
    const sumOverFunctions = (metricName: 'Errors' | 'Throttles', label: string) =>
      new cw.MathExpression({
        expression: 'SUM(METRICS())',
        label,
        period,
        usingMetrics: Object.fromEntries(
          allFns.map(([mid, fn]) => [mid, fn.metric(metricName, { statistic: cw.Stats.SUM, period })]),
        ),
      });

    const lambdaErrors = new cw.Alarm(this, 'LambdaErrorsAlarm', {
      ...alarmCommon,
      alarmName: name('lambda-errors'),
      alarmDescription: 'Any docpipe function returned errors (stage errors included).',
      metric: sumOverFunctions('Errors', 'Errors of all docpipe functions'),
      threshold: 1,
    });
    const lambdaThrottles = new cw.Alarm(this, 'LambdaThrottlesAlarm', {
      ...alarmCommon,
      alarmName: name('lambda-throttles'),
      alarmDescription: 'A docpipe function was throttled (concurrency limit reached).',
      metric: sumOverFunctions('Throttles', 'Throttles of all docpipe functions'),
      threshold: 1,
    });
    const api5xx = new cw.Alarm(this, 'Api5xxAlarm', {
      ...alarmCommon,
      alarmName: name('api-5xx'),
      alarmDescription: 'The HTTP API answered five or more server errors (5xx) in 5 minutes.',
      metric: new cw.Metric({
        namespace: 'AWS/ApiGateway',
        metricName: '5xx',
        dimensionsMap: { ApiId: httpApi.apiId },
        statistic: cw.Stats.SUM,
        period,
      }),
      threshold: 5,
    });
    const deadLetters = (id: string, suffix: string, q: sqs.Queue, description: string) =>
      new cw.Alarm(this, id, {
        ...alarmCommon,
        alarmName: name(suffix),
        alarmDescription: description,
        metric: q.metricApproximateNumberOfMessagesVisible({ statistic: cw.Stats.MAXIMUM, period }),
        threshold: 1,
      });
    const intakeDead = deadLetters('IntakeDeadLettersAlarm', 'intake-dead-letters', intakeDeadLetterQueue,
      'Intake messages were refused (each holds its reason in the reason attribute) or kept failing.');
    const webhookDead = deadLetters('WebhookDeadLettersAlarm', 'webhook-dead-letters', webhookDeadLetterQueue,
      "Webhook queue messages could not be read or kept failing (each holds why in the reason attribute); deliveries that failed for a day are on their webhook's failure list.");
    const jobsReconciled = new cw.Alarm(this, 'JobsReconciledAlarm', {
      ...alarmCommon,
      alarmName: name('jobs-reconciled'),
      alarmDescription:
        'Jobs were failed because their execution timed out, was aborted or failed before the job was final (EXECUTION_TIMED_OUT, EXECUTION_ABORTED, EXECUTION_FAILED).',
      metric: new cw.Metric({ namespace: 'docpipe', metricName: 'JobsReconciled', dimensionsMap: { env }, statistic: cw.Stats.SUM, period }),
      threshold: 1,
    });
    // The publisher retries a batch until it is put: events fall behind rather than get lost.
    const eventsBehind = new cw.Alarm(this, 'EventsBehindAlarm', {
      ...alarmCommon,
      alarmName: name('events-behind'),
      alarmDescription: 'Job status events are more than 5 minutes behind the jobs table (the publisher cannot put them on the bus).',
      metric: publishFn.metric('IteratorAge', { statistic: cw.Stats.MAXIMUM, period }),
      threshold: 300000,
    });
    for (const [alarm, logicalId] of [
      [eventsBehind, 'EventsBehindAlarm'],
      [intakeDead, 'IntakeDeadLettersAlarm'],
      [webhookDead, 'WebhookDeadLettersAlarm'],
      [jobsReconciled, 'JobsReconciledAlarm'],
      [executionsFailed, 'ExecutionsFailedAlarm'],
      [executionsTimedOut, 'ExecutionsTimedOutAlarm'],
      [executionsAborted, 'ExecutionsAbortedAlarm'],
      [lambdaErrors, 'LambdaErrorsAlarm'],
      [lambdaThrottles, 'LambdaThrottlesAlarm'],
      [api5xx, 'Api5xxAlarm'],
    ] as const) {
      alarm.addAlarmAction(alarmAction);
      samId(alarm, logicalId);
    }

    // ------------------------------------------------------------------ dashboard
    // The same widgets as template.yaml's Dashboard (the functions' EMF metrics in namespace
    // docpipe, dimensions env+stage and env+status; executions; API 5xx).
    const stages5 = ['ingest', 'ocr', 'extract', 'verify', 'finalize'];
    const byStage = (metric: string) => stages5.map((st, i) => (i === 0 ? ['docpipe', metric, 'env', env, 'stage', st] : ['...', st]));
    const widget = (x: number, y: number, title: string, stat: string, period: number, metrics: unknown[]) => ({
      type: 'metric', x, y, width: 12, height: 6,
      properties: { title, region: '${AWS::Region}', stat, period, metrics },
    });
    const dashboardBody = JSON.stringify({
      widgets: [
        widget(0, 0, 'Executions', 'Sum', 300, [
          ['AWS/States', 'ExecutionsStarted', 'StateMachineArn', '${PipelineStateMachine}'],
          ...['ExecutionsSucceeded', 'ExecutionsFailed', 'ExecutionsTimedOut', 'ExecutionsAborted'].map((m) => ['.', m, '.', '.']),
        ]),
        widget(12, 0, 'Documents by final status', 'Sum', 300, [
          ['docpipe', 'Documents', 'env', env, 'status', 'completed'], ['...', 'needs_review'], ['...', 'failed'],
        ]),
        widget(0, 6, 'Stage duration p90 (ms)', 'p90', 300, byStage('StageDuration')),
        widget(12, 6, 'Cost (USD, from pricing.toml) and pages', 'Sum', 3600, [
          ['docpipe', 'JobCostUsd', 'env', env, 'status', 'completed'], ['...', 'needs_review'], ['...', 'failed'],
          ['docpipe', 'TextractPages', 'env', env, 'stage', 'ocr', { yAxis: 'right' }],
        ]),
        widget(0, 12, 'Bedrock tokens', 'Sum', 300, [
          ['docpipe', 'BedrockInputTokens', 'env', env, 'stage', 'extract'],
          ['.', 'BedrockOutputTokens', '.', '.', '.', '.'],
        ]),
        widget(12, 12, 'Stage errors, API 5xx', 'Sum', 300, [
          ...byStage('StageErrors'),
          ['AWS/ApiGateway', '5xx', 'ApiId', '${HttpApi}'],
        ]),
      ],
    });
    const dashboard = new cw.CfnDashboard(this, 'Dashboard', {
      dashboardName: `docpipe-${env}`,
      dashboardBody: Fn.sub(dashboardBody, { PipelineStateMachine: stateMachine.stateMachineArn, HttpApi: httpApi.apiId }),
    });
    dashboard.overrideLogicalId('Dashboard');

    // ------------------------------------------------------------------ outputs
    new CfnOutput(this, 'ApiUrl', {
      description: 'Base URL of the HTTP API (GET {ApiUrl}health).',
      value: `https://${httpApi.apiId}.execute-api.${Aws.REGION}.${Aws.URL_SUFFIX}/`,
    });
    new CfnOutput(this, 'StateMachineArn', { description: 'The pipeline state machine.', value: stateMachine.stateMachineArn });
    new CfnOutput(this, 'DocumentsBucketName', { value: documentsBucket.bucketName });
    new CfnOutput(this, 'ResultsBucketName', { value: resultsBucket.bucketName });
    new CfnOutput(this, 'JobsTableName', { value: jobsTable.tableName });
    new CfnOutput(this, 'ApiKeysTableName', { value: apiKeysTable.tableName });
    new CfnOutput(this, 'AlarmTopicArn', { value: alarmTopic.topicArn });
    new CfnOutput(this, 'DashboardName', { value: dashboard.ref });
    new CfnOutput(this, 'EventBusName', { description: 'The bus job.status.v1 events are put on (source docpipe).', value: eventBus.eventBusName });
    new CfnOutput(this, 'IntakeQueueUrl', {
      description: 'Where intake.v1 messages are sent (message attribute tenant names the API key).',
      value: intakeQueue.queueUrl,
    });
  }
}
