# Cairn durable workflow runtime: the journal table (DynamoDB), the Lambda
# that drives executions, its stream trigger, EventBridge Scheduler wakes
# (with their dead-letter queue) and the periodic sweep; a managed policy for
# callers and CloudWatch alarms. The same stack as
# infra/sam/template.yaml; follows infra/CONTRACT.md, and IAM grants exactly
# infra/iam-actions.json (both checked by scripts/check-infra).

locals {
  # Inbox inserts only (CONTRACT.md, "Event source mapping").
  inbox_filter = {
    eventName = ["INSERT"]
    dynamodb = {
      Keys = {
        sk = {
          S = [{ prefix = "in#" }]
        }
      }
    }
  }

  # What the periodic sweep schedule sends the function.
  sweep_input = { action = "sweep" }

  # One-time schedules the function creates live in the group:
  # arn:...:schedule-group/NAME -> arn:...:schedule/NAME/*
  schedules_arn = "${replace(aws_scheduler_schedule_group.this.arn, ":schedule-group/", ":schedule/")}/*"

  # The table is named by the prefix unless table_name overrides it (an
  # existing deployment whose table name differs from its prefix).
  table_name = coalesce(var.table_name, var.name_prefix)

  # Alarm notifications: none unless an SNS topic is given.
  alarm_actions = var.alarm_topic_arn == "" ? [] : [var.alarm_topic_arn]
}

data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}

data "aws_region" "current" {}

# -- storage -------------------------------------------------------------------

resource "aws_dynamodb_table" "this" {
  name         = local.table_name
  billing_mode = "PAY_PER_REQUEST"

  # The journals are the system of record: DynamoDB refuses DeleteTable while
  # deletion protection is on, and Terraform refuses any plan that would
  # destroy or replace the table (see infra/README.md to really delete it).
  deletion_protection_enabled = true
  hash_key                    = "pk"
  range_key                   = "sk"

  attribute {
    name = "pk"
    type = "S"
  }

  attribute {
    name = "sk"
    type = "S"
  }

  attribute {
    name = "status_shard"
    type = "S"
  }

  attribute {
    name = "updated_at"
    type = "N"
  }

  attribute {
    name = "wake_bucket"
    type = "S"
  }

  attribute {
    name = "wake_at"
    type = "N"
  }

  # Sparse: only execution meta items carry `status_shard`
  # (`<status>#<shard>`: no hot key; see infra/CONTRACT.md). Lease
  # attributes are not projected: a lease write writes no index item.
  global_secondary_index {
    name               = "by-status-shard"
    hash_key           = "status_shard"
    range_key          = "updated_at"
    projection_type    = "INCLUDE"
    non_key_attributes = ["workflow", "component", "status", "input_hash", "created_at", "inbox_version", "run", "timer_at", "waiting_on", "parked"]
  }

  # Sparse: only executions with a wake time carry `wake_bucket` (`w#<shard>`).
  global_secondary_index {
    name            = "by-wake"
    hash_key        = "wake_bucket"
    range_key       = "wake_at"
    projection_type = "KEYS_ONLY"
  }

  stream_enabled   = true
  stream_view_type = "NEW_IMAGE"

  ttl {
    attribute_name = "expires_at"
    enabled        = true
  }

  point_in_time_recovery {
    enabled = true
  }

  server_side_encryption {
    enabled = true
  }

  tags = var.tags

  lifecycle {
    prevent_destroy = true
  }
}

# Payloads over payload_threshold_bytes (see runtime/store-dynamodb,
# payloads): objects payloads/<execution id>/<sha256>, written before the item
# that refers to them. Encrypted, private, expiring after
# payload_retention_days. Named by Terraform (bucket names are global and
# lowercase, the prefix need not be); the function gets the name
# (CAIRN_PAYLOAD_BUCKET).
resource "aws_s3_bucket" "payloads" {
  tags = var.tags

  lifecycle {
    prevent_destroy = true # like the table: the payloads of its executions
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "payloads" {
  bucket = aws_s3_bucket.payloads.id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
    bucket_key_enabled = true
  }
}

resource "aws_s3_bucket_public_access_block" "payloads" {
  bucket                  = aws_s3_bucket.payloads.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_ownership_controls" "payloads" {
  bucket = aws_s3_bucket.payloads.id

  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "payloads" {
  bucket = aws_s3_bucket.payloads.id

  rule {
    id     = "payload-retention"
    status = "Enabled"

    filter {
      prefix = "payloads/"
    }

    expiration {
      days = var.payload_retention_days
    }
  }

  rule {
    id     = "abort-incomplete-uploads"
    status = "Enabled"

    filter {}

    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }
}

# Only TLS requests reach the payloads.
data "aws_iam_policy_document" "payloads_tls" {
  statement {
    sid     = "TlsOnly"
    effect  = "Deny"
    actions = ["s3:*"]
    resources = [
      aws_s3_bucket.payloads.arn,
      "${aws_s3_bucket.payloads.arn}/*",
    ]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_s3_bucket_policy" "payloads" {
  bucket = aws_s3_bucket.payloads.id
  policy = data.aws_iam_policy_document.payloads_tls.json
}

# Stream records that keep failing, and async invocations (scheduler wakes,
# the sweep) that keep failing, end up here.
resource "aws_sqs_queue" "dead_letter" {
  name                      = "${var.name_prefix}-dead-letter"
  sqs_managed_sse_enabled   = true
  message_retention_seconds = 1209600 # 14 days, the maximum

  tags = var.tags
}

# Timer wakes EventBridge Scheduler could not deliver to the function after the
# retry policy the function gives its schedules (185 attempts over 24 h). The
# function passes it to every schedule it creates (CAIRN_SCHEDULER_DLQ_ARN).
resource "aws_sqs_queue" "scheduler_dead_letter" {
  name                      = "${var.name_prefix}-scheduler-dead-letter"
  sqs_managed_sse_enabled   = true
  message_retention_seconds = 1209600 # 14 days, the maximum

  tags = var.tags
}

resource "aws_cloudwatch_log_group" "function" {
  name              = "/aws/lambda/${var.name_prefix}"
  retention_in_days = var.log_retention_days

  tags = var.tags
}

# -- the function -------------------------------------------------------------------

# A cache of components: <sha256>.cwasm precompiled for arm64 (and maybe
# <sha256>.wasm), mounted at /opt/components, so the zip holds them under
# components/. The table holds every registered component and decides which
# one new executions start on; one the layer lacks is loaded from it.
resource "aws_lambda_layer_version" "components" {
  layer_name               = "${var.name_prefix}-components"
  description              = "Cairn workflow components precompiled for arm64, by content hash (a cache of the table)."
  filename                 = var.layer_zip_path
  source_code_hash         = filebase64sha256(var.layer_zip_path)
  compatible_runtimes      = ["provided.al2023"]
  compatible_architectures = ["arm64"]

  # A new zip makes a new layer version; keep the old ones (as SAM's
  # RetentionPolicy: Retain does) for a function version that still references
  # one (a rolled-back deploy); executions never depend on them.
  skip_destroy = true
}

resource "aws_lambda_function" "this" {
  function_name    = var.name_prefix
  description      = "Cairn driver (stream inbox inserts, scheduler wakes, sweep)."
  role             = aws_iam_role.function.arn
  filename         = var.lambda_zip_path
  source_code_hash = filebase64sha256(var.lambda_zip_path)
  handler          = "bootstrap"
  runtime          = "provided.al2023"
  architectures    = ["arm64"]
  memory_size      = var.memory_size
  timeout          = var.timeout

  # -1: unreserved; 0 stops every invocation.
  reserved_concurrent_executions = var.reserved_concurrency
  layers                         = [aws_lambda_layer_version.components.arn]

  environment {
    variables = {
      CAIRN_TABLE                   = aws_dynamodb_table.this.name
      CAIRN_COMPONENTS_DIR          = "/opt/components"
      CAIRN_SCHEDULER_GROUP         = aws_scheduler_schedule_group.this.name
      CAIRN_SCHEDULER_ROLE_ARN      = aws_iam_role.scheduler.arn
      CAIRN_SCHEDULER_DLQ_ARN       = aws_sqs_queue.scheduler_dead_letter.arn
      CAIRN_LEASE_SECONDS           = var.lease_seconds
      CAIRN_INBOX_GRACE_SECONDS     = var.inbox_grace_seconds
      CAIRN_BATCH_CONCURRENCY       = var.batch_concurrency
      CAIRN_INDEX_SHARDS            = var.index_shards
      CAIRN_PAYLOAD_BUCKET          = aws_s3_bucket.payloads.id
      CAIRN_PAYLOAD_THRESHOLD_BYTES = var.payload_threshold_bytes
      CAIRN_ALLOW_HTTP              = join(",", var.allow_http)
      CAIRN_HTTP_EXTRA_ROOTS        = join(",", var.http_extra_roots)
      # KEY=VALUE and KEY=/parameter/name pairs, comma-separated.
      CAIRN_ACTIVITY_ENV             = join(",", [for k, v in var.activity_env : "${k}=${v}"])
      CAIRN_ACTIVITY_SECRETS         = join(",", [for k, name in var.activity_secrets : "${k}=${name}"])
      CAIRN_ACTIVITY_AWS_CREDENTIALS = var.activity_aws_credentials
      RUST_LOG                       = "info"
    }
  }

  logging_config {
    log_format = "JSON"
    log_group  = aws_cloudwatch_log_group.function.name
  }

  dead_letter_config {
    target_arn = aws_sqs_queue.dead_letter.arn
  }

  tags = var.tags

  depends_on = [
    aws_iam_role_policy.function,
    aws_iam_role_policy.activity_secrets,
    aws_iam_role_policy.activity_secrets_key,
  ]
}

data "aws_iam_policy_document" "lambda_assume" {
  statement {
    effect  = "Allow"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "function" {
  name               = "${var.name_prefix}-function"
  description        = "Cairn function role; exactly the \"function\" actions of infra/iam-actions.json."
  assume_role_policy = data.aws_iam_policy_document.lambda_assume.json

  tags = var.tags
}

data "aws_iam_policy_document" "function" {
  statement {
    sid    = "TableAndIndexes"
    effect = "Allow"
    actions = [
      "dynamodb:ConditionCheckItem",
      "dynamodb:DescribeTable",
      "dynamodb:GetItem",
      "dynamodb:PutItem",
      "dynamodb:Query",
      "dynamodb:TransactWriteItems",
      "dynamodb:UpdateItem",
    ]
    resources = [
      aws_dynamodb_table.this.arn,
      "${aws_dynamodb_table.this.arn}/index/*",
    ]
  }

  statement {
    sid    = "TableStream"
    effect = "Allow"
    actions = [
      "dynamodb:DescribeStream",
      "dynamodb:GetRecords",
      "dynamodb:GetShardIterator",
    ]
    resources = [aws_dynamodb_table.this.stream_arn]
  }

  # ListStreams is authorized on the table's stream wildcard (as in SAM's
  # DynamoDBStreamReadPolicy), not on one stream label.
  statement {
    sid       = "TableStreamList"
    effect    = "Allow"
    actions   = ["dynamodb:ListStreams"]
    resources = ["${aws_dynamodb_table.this.arn}/stream/*"]
  }

  statement {
    sid    = "Schedules"
    effect = "Allow"
    actions = [
      "scheduler:CreateSchedule",
      "scheduler:DeleteSchedule",
    ]
    resources = [local.schedules_arn]
  }

  statement {
    sid       = "PassSchedulerRole"
    effect    = "Allow"
    actions   = ["iam:PassRole"]
    resources = [aws_iam_role.scheduler.arn]

    condition {
      test     = "StringEquals"
      variable = "iam:PassedToService"
      values   = ["scheduler.amazonaws.com"]
    }
  }

  statement {
    sid       = "DeadLetterQueue"
    effect    = "Allow"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.dead_letter.arn]
  }

  statement {
    sid    = "Payloads"
    effect = "Allow"
    actions = [
      "s3:GetObject",
      "s3:PutObject",
    ]
    resources = ["${aws_s3_bucket.payloads.arn}/payloads/*"]
  }

  statement {
    sid    = "OwnLogGroup"
    effect = "Allow"
    actions = [
      "logs:CreateLogStream",
      "logs:PutLogEvents",
    ]
    resources = ["${aws_cloudwatch_log_group.function.arn}:*"]
  }
}

resource "aws_iam_role_policy" "function" {
  name   = "cairn-function"
  role   = aws_iam_role.function.id
  policy = data.aws_iam_policy_document.function.json
}

# The activities' secrets: ssm:GetParameters on exactly the parameters
# var.activity_secrets names (infra/iam-actions.json "ssm_parameters"); the
# ARN has one slash before the name, whether or not the name starts with one.
data "aws_iam_policy_document" "activity_secrets" {
  statement {
    sid       = "ActivitySecrets"
    effect    = "Allow"
    actions   = ["ssm:GetParameters"]
    resources = [for name in values(var.activity_secrets) : "arn:${data.aws_partition.current.partition}:ssm:${data.aws_region.current.id}:${data.aws_caller_identity.current.account_id}:parameter/${trimprefix(name, "/")}"]
  }
}

resource "aws_iam_role_policy" "activity_secrets" {
  count  = length(var.activity_secrets) > 0 ? 1 : 0
  name   = "cairn-activity-secrets"
  role   = aws_iam_role.function.id
  policy = data.aws_iam_policy_document.activity_secrets.json
}

# kms:Decrypt on the customer managed key of the secrets, only if one is
# given (infra/iam-actions.json "kms_decrypt"); the AWS managed key needs none.
data "aws_iam_policy_document" "activity_secrets_key" {
  statement {
    sid       = "ActivitySecretsKey"
    effect    = "Allow"
    actions   = ["kms:Decrypt"]
    resources = [var.activity_secrets_kms_key_arn]
  }
}

resource "aws_iam_role_policy" "activity_secrets_key" {
  count  = var.activity_secrets_kms_key_arn == "" ? 0 : 1
  name   = "cairn-activity-secrets-key"
  role   = aws_iam_role.function.id
  policy = data.aws_iam_policy_document.activity_secrets_key.json
}

# -- stream trigger ---------------------------------------------------------------

resource "aws_lambda_event_source_mapping" "inbox" {
  function_name                      = aws_lambda_function.this.arn
  event_source_arn                   = aws_dynamodb_table.this.stream_arn
  starting_position                  = "LATEST"
  batch_size                         = 100
  maximum_batching_window_in_seconds = 1
  parallelization_factor             = var.parallelization_factor
  function_response_types            = ["ReportBatchItemFailures"]
  bisect_batch_on_function_error     = true
  maximum_retry_attempts             = 10

  destination_config {
    on_failure {
      destination_arn = aws_sqs_queue.dead_letter.arn
    }
  }

  filter_criteria {
    filter {
      pattern = jsonencode(local.inbox_filter)
    }
  }
}

# -- EventBridge Scheduler -------------------------------------------------------------

resource "aws_scheduler_schedule_group" "this" {
  name = var.name_prefix

  tags = var.tags
}

data "aws_iam_policy_document" "scheduler_assume" {
  statement {
    effect  = "Allow"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["scheduler.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [data.aws_caller_identity.current.account_id]
    }
  }
}

resource "aws_iam_role" "scheduler" {
  name               = "${var.name_prefix}-scheduler"
  description        = "Assumed by EventBridge Scheduler to invoke the Cairn function."
  assume_role_policy = data.aws_iam_policy_document.scheduler_assume.json

  tags = var.tags
}

# A separate policy resource: the function needs the role's ARN and the
# role's policy needs the function's ARN. Exactly the "scheduler_role" actions
# of infra/iam-actions.json.
data "aws_iam_policy_document" "scheduler" {
  statement {
    sid       = "InvokeFunction"
    effect    = "Allow"
    actions   = ["lambda:InvokeFunction"]
    resources = [aws_lambda_function.this.arn]
  }

  # Scheduler sends a schedule's dead letters with the schedule's role.
  statement {
    sid       = "SchedulerDeadLetterQueue"
    effect    = "Allow"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.scheduler_dead_letter.arn]
  }
}

resource "aws_iam_role_policy" "scheduler" {
  name   = "cairn-scheduler"
  role   = aws_iam_role.scheduler.id
  policy = data.aws_iam_policy_document.scheduler.json
}

resource "aws_scheduler_schedule" "sweep" {
  name        = "${var.name_prefix}-sweep"
  description = "Cairn sweep (due timers, expired leases, inbox inserts the stream did not deliver)."
  group_name  = aws_scheduler_schedule_group.this.name
  state       = "ENABLED"

  schedule_expression = var.sweep_rate

  flexible_time_window {
    mode = "OFF"
  }

  target {
    arn      = aws_lambda_function.this.arn
    role_arn = aws_iam_role.scheduler.arn
    input    = jsonencode(local.sweep_input)
  }

  depends_on = [aws_iam_role_policy.scheduler]
}

# -- optional Function URL -------------------------------------------------------------

resource "aws_lambda_function_url" "this" {
  count = var.enable_function_url ? 1 : 0

  function_name      = aws_lambda_function.this.function_name
  authorization_type = "AWS_IAM"
}

# -- callers' permissions ------------------------------------------------------------

# What an application needs to call Cairn (direct invoke, and the Function URL
# when it is on): attach it to the application's role. Exactly the "caller"
# actions of infra/iam-actions.json.
data "aws_iam_policy_document" "caller" {
  statement {
    sid       = "InvokeFunction"
    effect    = "Allow"
    actions   = ["lambda:InvokeFunction"]
    resources = [aws_lambda_function.this.arn]
  }

  dynamic "statement" {
    for_each = var.enable_function_url ? [1] : []

    content {
      sid       = "InvokeFunctionUrl"
      effect    = "Allow"
      actions   = ["lambda:InvokeFunctionUrl"]
      resources = [aws_lambda_function.this.arn]

      condition {
        test     = "StringEquals"
        variable = "lambda:FunctionUrlAuthType"
        values   = ["AWS_IAM"]
      }
    }
  }
}

resource "aws_iam_policy" "caller" {
  name        = "${var.name_prefix}-caller"
  description = "Invoke the Cairn function (and its Function URL when enabled); attach to the roles of applications that call Cairn."
  policy      = data.aws_iam_policy_document.caller.json

  tags = var.tags
}

# -- alarms (infra/CONTRACT.md "Alarms"; what to do: infra/README.md "Runbook") ---------
# All: >= threshold, missing data not breaching (most metrics are only published
# when something happens); actions only when alarm_topic_arn is set.

resource "aws_cloudwatch_metric_alarm" "stream_iterator_age" {
  alarm_name          = "${var.name_prefix}-stream-iterator-age"
  alarm_description   = "The stream mapping is more than 5 minutes behind the table's stream (IteratorAge maximum, 5 minutes running); records expire from the stream after 24 h. Runbook: infra/README.md, \"stream-iterator-age\"."
  namespace           = "AWS/Lambda"
  metric_name         = "IteratorAge"
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 5
  datapoints_to_alarm = 5
  threshold           = 300000
  comparison_operator = "GreaterThanOrEqualToThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions

  dimensions = {
    FunctionName = aws_lambda_function.this.function_name
  }

  tags = var.tags
}

resource "aws_cloudwatch_metric_alarm" "function_errors" {
  alarm_name          = "${var.name_prefix}-function-errors"
  alarm_description   = "5 or more invocations of the Cairn function failed (crash, timeout, error result) within 5 minutes. Runbook: infra/README.md, \"function-errors\"."
  namespace           = "AWS/Lambda"
  metric_name         = "Errors"
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  datapoints_to_alarm = 1
  threshold           = 5
  comparison_operator = "GreaterThanOrEqualToThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions

  dimensions = {
    FunctionName = aws_lambda_function.this.function_name
  }

  tags = var.tags
}

resource "aws_cloudwatch_metric_alarm" "function_throttles" {
  alarm_name          = "${var.name_prefix}-function-throttles"
  alarm_description   = "10 or more invocations of the Cairn function were throttled within 5 minutes: it is at its concurrency limit. Runbook: infra/README.md, \"function-throttles\"."
  namespace           = "AWS/Lambda"
  metric_name         = "Throttles"
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  datapoints_to_alarm = 1
  threshold           = 10
  comparison_operator = "GreaterThanOrEqualToThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions

  dimensions = {
    FunctionName = aws_lambda_function.this.function_name
  }

  tags = var.tags
}

resource "aws_cloudwatch_metric_alarm" "dead_letter" {
  alarm_name          = "${var.name_prefix}-dead-letter"
  alarm_description   = "The dead-letter queue holds messages: stream records or async invocations failed every retry. Runbook: infra/README.md, \"dead-letter\"."
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateNumberOfMessagesVisible"
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 1
  datapoints_to_alarm = 1
  threshold           = 1
  comparison_operator = "GreaterThanOrEqualToThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions

  dimensions = {
    QueueName = aws_sqs_queue.dead_letter.name
  }

  tags = var.tags
}

resource "aws_cloudwatch_metric_alarm" "scheduler_dead_letter" {
  alarm_name          = "${var.name_prefix}-scheduler-dead-letter"
  alarm_description   = "The schedule dead-letter queue holds messages: timer wakes Scheduler could not deliver for 24 hours. Runbook: infra/README.md, \"scheduler-dead-letter\"."
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateNumberOfMessagesVisible"
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 1
  datapoints_to_alarm = 1
  threshold           = 1
  comparison_operator = "GreaterThanOrEqualToThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions

  dimensions = {
    QueueName = aws_sqs_queue.scheduler_dead_letter.name
  }

  tags = var.tags
}

resource "aws_cloudwatch_metric_alarm" "table_throttles" {
  alarm_name          = "${var.name_prefix}-table-throttles"
  alarm_description   = "10 or more read or write events on the table or its indexes were throttled within 5 minutes (every throttled request counts at least one). Runbook: infra/README.md, \"table-throttles\"."
  evaluation_periods  = 1
  datapoints_to_alarm = 1
  threshold           = 10
  comparison_operator = "GreaterThanOrEqualToThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions

  metric_query {
    id          = "throttles"
    label       = "Read and write throttle events, table and indexes"
    expression  = "SUM([table_read, table_write, status_read, status_write, wake_read, wake_write])"
    return_data = true
  }

  metric_query {
    id          = "table_read"
    return_data = false

    metric {
      namespace   = "AWS/DynamoDB"
      metric_name = "ReadThrottleEvents"
      period      = 300
      stat        = "Sum"

      dimensions = {
        TableName = aws_dynamodb_table.this.name
      }
    }
  }

  metric_query {
    id          = "table_write"
    return_data = false

    metric {
      namespace   = "AWS/DynamoDB"
      metric_name = "WriteThrottleEvents"
      period      = 300
      stat        = "Sum"

      dimensions = {
        TableName = aws_dynamodb_table.this.name
      }
    }
  }

  metric_query {
    id          = "status_read"
    return_data = false

    metric {
      namespace   = "AWS/DynamoDB"
      metric_name = "ReadThrottleEvents"
      period      = 300
      stat        = "Sum"

      dimensions = {
        TableName                = aws_dynamodb_table.this.name
        GlobalSecondaryIndexName = "by-status-shard"
      }
    }
  }

  metric_query {
    id          = "status_write"
    return_data = false

    metric {
      namespace   = "AWS/DynamoDB"
      metric_name = "WriteThrottleEvents"
      period      = 300
      stat        = "Sum"

      dimensions = {
        TableName                = aws_dynamodb_table.this.name
        GlobalSecondaryIndexName = "by-status-shard"
      }
    }
  }

  metric_query {
    id          = "wake_read"
    return_data = false

    metric {
      namespace   = "AWS/DynamoDB"
      metric_name = "ReadThrottleEvents"
      period      = 300
      stat        = "Sum"

      dimensions = {
        TableName                = aws_dynamodb_table.this.name
        GlobalSecondaryIndexName = "by-wake"
      }
    }
  }

  metric_query {
    id          = "wake_write"
    return_data = false

    metric {
      namespace   = "AWS/DynamoDB"
      metric_name = "WriteThrottleEvents"
      period      = 300
      stat        = "Sum"

      dimensions = {
        TableName                = aws_dynamodb_table.this.name
        GlobalSecondaryIndexName = "by-wake"
      }
    }
  }

  tags = var.tags
}

resource "aws_cloudwatch_metric_alarm" "scheduler_target_errors" {
  alarm_name          = "${var.name_prefix}-scheduler-target-errors"
  alarm_description   = "EventBridge Scheduler failed to invoke the function 5 or more times within 5 minutes (timer wakes or the sweep; it retries for 24 h). Runbook: infra/README.md, \"scheduler-target-errors\"."
  namespace           = "AWS/Scheduler"
  metric_name         = "TargetErrorCount"
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  datapoints_to_alarm = 1
  threshold           = 5
  comparison_operator = "GreaterThanOrEqualToThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions

  dimensions = {
    ScheduleGroup = aws_scheduler_schedule_group.this.name
  }

  tags = var.tags
}

resource "aws_cloudwatch_metric_alarm" "scheduler_dropped" {
  alarm_name          = "${var.name_prefix}-scheduler-dropped"
  alarm_description   = "EventBridge Scheduler gave up on an invocation of the function (its retry policy is exhausted). Runbook: infra/README.md, \"scheduler-dropped\"."
  namespace           = "AWS/Scheduler"
  metric_name         = "InvocationDroppedCount"
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  datapoints_to_alarm = 1
  threshold           = 1
  comparison_operator = "GreaterThanOrEqualToThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions

  dimensions = {
    ScheduleGroup = aws_scheduler_schedule_group.this.name
  }

  tags = var.tags
}
