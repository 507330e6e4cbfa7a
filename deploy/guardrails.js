'use strict';

// CloudFormation generated for every function of serverless.yml, so a new function needs only
// its entry under `functions:` (with its `role:` and `MIMIVIBE_SECRET_ID`) and gets the same
// guardrails as the others:
//
// - its secret (`<secretPrefix>/<function>`, created empty, kept on delete) and a role that may
//   write its own logs and read that one secret, by exact ARN;
// - a published version and a `live` alias; the function URL and its two public permissions
//   are moved onto the alias, so rolling back is pointing `live` at an earlier version (the
//   versions are kept when a deploy replaces them);
// - reserved concurrency from the stage's `reservedConcurrency` param (a per-function value,
//   else its `default`);
// - alarms on its Errors, Throttles and Duration near its timeout;
// - its invocations, errors and p99 duration on the dashboard.
//
// Also the product's alarms (on the EMF metrics shared/observability emits, by the
// service-wide dimension sets it publishes), the dashboard, and the SNS topic every alarm
// notifies (with an e-mail subscription when the stage's `alarmEmail` param is set).
// tests/test_guardrails.py reads the packaged template and checks every metric named here
// against what the code emits.
//
// Loaded by serverless.yml as `${file(deploy/guardrails.js)}`; osls calls the exported function
// while it resolves the configuration (no plugin, still offline).

const crypto = require('crypto');
const fs = require('fs');
const path = require('path');

const NAMESPACE = 'MimiVibe';
const SERVICE = 'mimivibe'; // the `service` dimension (POWERTOOLS_SERVICE_NAME)
const ALIAS = 'live';
const PERIOD = 300;
const WEBHOOK_OUTCOMES = ['applied', 'duplicate', 'ignored', 'rejected', 'failed'];
const RUNBOOKS = 'docs/runbooks.md';

// osls's logical-id naming (lib/plugins/aws/lib/naming.js, getNormalizedResourceName).
const normalized = (name) => {
  const base = name.replace(/-/g, 'Dash').replace(/_/g, 'Underscore');
  return base.charAt(0).toUpperCase() + base.slice(1);
};

const productMetric = (name, dims = {}) => [NAMESPACE, name, 'service', SERVICE,
  ...Object.entries(dims).flat()];

// Product alarms: id, metric, extra dimensions, statistic, threshold (a number or a param name).
const PRODUCT_ALARMS = [
  { id: 'DeadLetters', metric: 'DeadLetters', stat: 'Sum', threshold: 0,
    what: 'a reading job was dead-lettered (its stars were given back)' },
  { id: 'QueueLag', metric: 'QueueLagSeconds', stat: 'Maximum', threshold: 'queueLagAlarmSeconds',
    what: 'the oldest queued reading has waited longer than the threshold' },
  { id: 'WebhookFailures', metric: 'WebhookEvents', dims: { outcome: 'failed' }, stat: 'Sum',
    threshold: 0, what: 'a Stripe webhook event failed to apply (Stripe retries it)' },
  { id: 'ReconciliationDrift', metric: 'ReconciliationDrift', stat: 'Sum', threshold: 0,
    what: 'the reconciliation found Stripe objects the database did not reflect' },
];

const DASHBOARD_ROWS = [
  { title: 'Readings', stat: 'Sum',
    metrics: ['ReadingsCreated', 'ReadingsCompleted', 'ReadingRetries', 'DeadLetters'] },
  { title: 'Queue', stat: 'Maximum',
    metrics: ['QueueDepth', 'QueueLagSeconds', 'RetriesDue', 'DeadLetteredJobs'] },
  { title: 'Stripe webhooks by outcome', stat: 'Sum',
    metrics: WEBHOOK_OUTCOMES.map((outcome) => ['WebhookEvents', { outcome }]) },
  { title: 'Stars', stat: 'Sum', metrics: ['StarsCredited', 'StarsSpent', 'StarsClawedBack'] },
  { title: 'Reconciliation with Stripe', stat: 'Sum',
    metrics: ['ReconciliationDrift', 'ReconciliationApplied'] },
];

const artifactSha256 = (serviceDir, artifact) => {
  const file = path.resolve(serviceDir, artifact);
  if (!fs.existsSync(file)) {
    throw new Error(`${artifact} is missing: build it first (make artifact, or make package)`);
  }
  return crypto.createHash('sha256').update(fs.readFileSync(file)).digest('base64');
};

const alarm = (description, props) => ({
  Type: 'AWS::CloudWatch::Alarm',
  Properties: {
    AlarmDescription: description,
    AlarmActions: [{ Ref: 'AlarmTopic' }],
    OKActions: [{ Ref: 'AlarmTopic' }],
    Period: PERIOD,
    EvaluationPeriods: 1,
    TreatMissingData: 'notBreaching',
    ComparisonOperator: 'GreaterThanThreshold',
    ...props,
  },
});

const functionResources = (name, fn, ctx) => {
  const id = normalized(name);
  const lambda = `${id}LambdaFunction`;
  const timeout = Number(fn.timeout || ctx.provider.timeout || 6);
  const out = {};
  out[`${id}Secret`] = {
    Type: 'AWS::SecretsManager::Secret',
    DeletionPolicy: 'Retain',
    UpdateReplacePolicy: 'Retain',
    Properties: { SecretString: '{}', Name: `${ctx.secretPrefix}/${name}` },
  };
  out[`${id}Role`] = {
    Type: 'AWS::IAM::Role',
    Properties: {
      AssumeRolePolicyDocument: {
        Version: '2012-10-17',
        Statement: [{ Effect: 'Allow', Principal: { Service: 'lambda.amazonaws.com' },
          Action: 'sts:AssumeRole' }],
      },
      Policies: [{
        PolicyName: name,
        PolicyDocument: {
          Version: '2012-10-17',
          Statement: [
            { Effect: 'Allow', Action: ['logs:CreateLogStream', 'logs:PutLogEvents'],
              Resource: { 'Fn::GetAtt': [`${id}LogGroup`, 'Arn'] } },
            { Effect: 'Allow', Action: 'secretsmanager:GetSecretValue',
              Resource: { Ref: `${id}Secret` } },
          ],
        },
      }],
    },
  };
  // A new version whenever the code or this function's configuration changes (the description
  // carries their hash; a changed description replaces the version). Replaced versions are
  // kept: they are what a rollback points the alias at.
  const digest = crypto.createHash('sha256')
    .update(ctx.artifactSha256)
    .update(JSON.stringify({ fn, provider: ctx.provider }))
    .digest('hex').slice(0, 16);
  out[`${id}LiveVersion`] = {
    Type: 'AWS::Lambda::Version',
    DeletionPolicy: 'Retain',
    UpdateReplacePolicy: 'Retain',
    Properties: {
      FunctionName: { Ref: lambda },
      CodeSha256: ctx.artifactSha256,
      Description: `${name} ${digest}`,
    },
  };
  out[`${id}LiveAlias`] = {
    Type: 'AWS::Lambda::Alias',
    Properties: {
      FunctionName: { Ref: lambda },
      FunctionVersion: { 'Fn::GetAtt': [`${id}LiveVersion`, 'Version'] },
      Name: ALIAS,
      Description: 'What the function URL serves; move it to roll back',
    },
  };
  const dims = [{ Name: 'FunctionName', Value: { Ref: lambda } }];
  const lambdaAlarm = (suffix, metric, stat, threshold, what) => {
    out[`${id}${suffix}Alarm`] = alarm(
      `${name}: ${what}. Runbook: ${RUNBOOKS}#function-${suffix.toLowerCase()}`,
      { Namespace: 'AWS/Lambda', MetricName: metric, Dimensions: dims, Statistic: stat,
        Threshold: threshold });
  };
  lambdaAlarm('Errors', 'Errors', 'Sum', ctx.errorsThreshold,
    `more than ${ctx.errorsThreshold} errors in 5 minutes`);
  lambdaAlarm('Throttles', 'Throttles', 'Sum', 0, 'invocations were throttled');
  const near = Math.floor(timeout * 1000 * ctx.durationRatio);
  lambdaAlarm('Duration', 'Duration', 'Maximum', near,
    `an invocation ran longer than ${near} ms of its ${timeout} s timeout`);
  return out;
};

// serverless.yml's own resources for the function URL, extended onto the alias.
const urlExtensions = (name, fn) => {
  if (!fn.url) return {};
  const id = normalized(name);
  // The permissions' Ref to the alias orders them after it; the URL names it by Qualifier only.
  const onAlias = { Properties: { FunctionName: { Ref: `${id}LiveAlias` } } };
  return {
    [`${id}LambdaFunctionUrl`]: { Properties: { Qualifier: ALIAS }, DependsOn: [`${id}LiveAlias`] },
    [`${id}LambdaPermissionFnUrl`]: onAlias,
    [`${id}LambdaPermissionFn`]: onAlias,
  };
};

const dashboard = (names) => {
  const widgets = [];
  let y = 0;
  const add = (title, stat, metrics, width = 8) => {
    widgets.push({
      type: 'metric', x: (widgets.length % 3) * 8, y, width, height: 6,
      properties: { title, region: '${AWS::Region}', stat, period: PERIOD, view: 'timeSeries',
        metrics },
    });
    if (widgets.length % 3 === 0) y += 6;
  };
  for (const row of DASHBOARD_ROWS) {
    add(row.title, row.stat, row.metrics.map((m) => (Array.isArray(m)
      ? productMetric(m[0], m[1]) : productMetric(m))));
  }
  const perFunction = (metric) => names.map(
    (name) => ['AWS/Lambda', metric, 'FunctionName', `\${${normalized(name)}LambdaFunction}`,
      { label: name }]);
  add('Invocations by function', 'Sum', perFunction('Invocations'));
  add('Errors by function', 'Sum', perFunction('Errors'));
  add('p99 duration by function (ms)', 'p99', perFunction('Duration'));
  add('Throttles by function', 'Sum', perFunction('Throttles'));
  return {
    Type: 'AWS::CloudWatch::Dashboard',
    Properties: {
      DashboardName: { 'Fn::Sub': `${SERVICE}-\${AWS::StackName}` },
      DashboardBody: { 'Fn::Sub': JSON.stringify({ widgets }) },
    },
  };
};

module.exports = async ({ resolveConfigurationProperty, resolveVariable }) => {
  const functions = (await resolveConfigurationProperty(['functions'])) || {};
  const provider = (await resolveConfigurationProperty(['provider'])) || {};
  const artifact = await resolveConfigurationProperty(['package', 'artifact']);
  const serviceDir = path.resolve(__dirname, '..');
  const concurrency = await resolveVariable('param:reservedConcurrency');
  const ctx = {
    provider,
    secretPrefix: await resolveVariable('param:secretPrefix'),
    artifactSha256: artifactSha256(serviceDir, artifact),
    errorsThreshold: Number(await resolveVariable('param:functionErrorsAlarm')),
    durationRatio: Number(await resolveVariable('param:durationAlarmRatio')),
  };
  const params = {
    queueLagAlarmSeconds: Number(await resolveVariable('param:queueLagAlarmSeconds')),
  };
  if (!concurrency || !Number.isInteger(Number(concurrency.default))) {
    throw new Error('param reservedConcurrency needs a `default` (and optional per-function values)');
  }

  const Resources = {};
  const extensions = {};
  const names = Object.keys(functions);
  for (const name of names) {
    const fn = functions[name];
    Object.assign(Resources, functionResources(name, fn, ctx));
    Object.assign(extensions, urlExtensions(name, fn));
    extensions[`${normalized(name)}LambdaFunction`] = {
      Properties: { ReservedConcurrentExecutions: Number(concurrency[name] ?? concurrency.default) },
    };
  }
  for (const spec of PRODUCT_ALARMS) {
    const threshold = typeof spec.threshold === 'number' ? spec.threshold : params[spec.threshold];
    Resources[`${spec.id}Alarm`] = alarm(
      `${spec.what}. Runbook: ${RUNBOOKS}#${spec.id.replace(/[A-Z]/g, (c, i) => (i ? '-' : '') + c.toLowerCase())}`,
      {
        Namespace: NAMESPACE, MetricName: spec.metric, Statistic: spec.stat, Threshold: threshold,
        Dimensions: Object.entries({ service: SERVICE, ...(spec.dims || {}) })
          .map(([Name, Value]) => ({ Name, Value })),
      });
  }
  Resources.Dashboard = dashboard(names);
  Resources.AlarmTopic = {
    Type: 'AWS::SNS::Topic',
    Properties: { DisplayName: `MimiVibe ${await resolveVariable('sls:stage')} alarms` },
  };
  const email = await resolveVariable('param:alarmEmail');
  if (email) {
    Resources.AlarmEmailSubscription = {
      Type: 'AWS::SNS::Subscription',
      Properties: { TopicArn: { Ref: 'AlarmTopic' }, Protocol: 'email', Endpoint: email },
    };
  }
  return { Resources, extensions };
};
