// The docpipe stack, mirroring infra/template.yaml (SAM) resource for resource: one Lambda per
// pipeline stage plus the API Lambda, the Step Functions state machine from the shared
// statemachine/pipeline.asl.json, DynamoDB tables, S3 buckets, the Bedrock model parameter, log
// groups and alarms. The named resources keep the SAM template's logical ids, so the two
// synthesized templates read alike.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Aws, CfnOutput, CfnResource, Duration, RemovalPolicy, Stack, type StackProps } from 'aws-cdk-lib';
import * as apigw from 'aws-cdk-lib/aws-apigatewayv2';
import { HttpLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import { AccessLogFormat } from 'aws-cdk-lib/aws-apigateway';
import * as cw from 'aws-cdk-lib/aws-cloudwatch';
import { SnsAction } from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subs from 'aws-cdk-lib/aws-sns-subscriptions';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import * as ssm from 'aws-cdk-lib/aws-ssm';
import type { Construct, IConstruct } from 'constructs';

export const DOCPIPE_ENVS = ['dev', 'prod'] as const;
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
    const documentsBucket = new s3.Bucket(this, 'DocumentsBucket', {
      ...bucketDefaults,
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
      description: 'Read by the functions at cold start (docpipe-aws ParameterStore).',
    });
    samId(modelParam, 'BedrockModelIdParameter');

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
    });
    samId(stateMachine, 'PipelineStateMachine');
    // lambda:InvokeFunction on each function and its versions, like SAM's LambdaInvokePolicy.
    for (const fn of invoked) fn.grantInvoke(stateMachine);

    // ------------------------------------------------------------------ API
    const apiFn = makeFunction(
      { id: 'Api', binary: 'api', description: "The docpipe HTTP API (docpipe-api's router under lambda_http).", timeoutSecs: 29 },
      {
        DOCPIPE_STATE_MACHINE_ARN: stateMachine.stateMachineArn,
        DOCPIPE_API_KEYS_TABLE: apiKeysTable.tableName,
        DOCPIPE_IDEMPOTENCY_TABLE: idempotencyTable.tableName,
        DOCPIPE_PREVIEW_CACHE_TABLE: previewCacheTable.tableName,
      },
    );
    allow(apiFn, ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:Query'], [
      jobsTable.tableArn,
      `${jobsTable.tableArn}/index/*`,
    ]);
    allow(apiFn, ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:Query', 'dynamodb:Scan'], [
      apiKeysTable.tableArn,
      `${apiKeysTable.tableArn}/index/*`,
    ]);
    allow(apiFn, ['dynamodb:GetItem', 'dynamodb:PutItem'], [idempotencyTable.tableArn, previewCacheTable.tableArn]);
    allow(apiFn, ['s3:GetObject', 's3:PutObject', 's3:DeleteObject'], [documentsBucket.arnForObjects('*')]);
    allow(apiFn, ['s3:GetObject'], [resultsBucket.arnForObjects('*')]);
    allow(apiFn, ['states:StartExecution', 'states:DescribeStateMachine'], [stateMachine.stateMachineArn]);
    allow(apiFn, ['states:StopExecution', 'states:DescribeExecution'], [
      `arn:${Aws.PARTITION}:states:${Aws.REGION}:${Aws.ACCOUNT_ID}:execution:${name('pipeline')}:*`,
    ]);
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

    const failedExecutions = new cw.Alarm(this, 'FailedExecutionsAlarm', {
      ...alarmCommon,
      alarmName: name('failed-executions'),
      alarmDescription: 'A pipeline execution failed, timed out or was aborted.',
      metric: new cw.Metric({
        namespace: 'AWS/States',
        metricName: 'ExecutionsFailed',
        dimensionsMap: { StateMachineArn: stateMachine.stateMachineArn },
        statistic: cw.Stats.SUM,
        period,
      }),
      threshold: 1,
    });

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
    const api5xx = new cw.Alarm(this, 'ApiThrottledAlarm', {
      ...alarmCommon,
      alarmName: name('api-throttled'),
      alarmDescription: 'The HTTP API answered server errors (5xx).',
      metric: new cw.Metric({
        namespace: 'AWS/ApiGateway',
        metricName: '5xx',
        dimensionsMap: { ApiId: httpApi.apiId },
        statistic: cw.Stats.SUM,
        period,
      }),
      threshold: 5,
    });
    for (const [alarm, logicalId] of [
      [failedExecutions, 'FailedExecutionsAlarm'],
      [lambdaErrors, 'LambdaErrorsAlarm'],
      [lambdaThrottles, 'LambdaThrottlesAlarm'],
      [api5xx, 'ApiThrottledAlarm'],
    ] as const) {
      alarm.addAlarmAction(alarmAction);
      samId(alarm, logicalId);
    }

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
  }
}
