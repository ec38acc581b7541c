variable "name_prefix" {
  description = "Prefix of every resource name (function, table, log group, layer, roles, queues, schedule group, sweep schedule, caller policy, alarms), so two environments coexist in one account and region. Changing it on a deployed stack replaces every named resource (see infra/README.md)."
  type        = string
  default     = "cairn"

  validation {
    condition     = can(regex("^[a-zA-Z0-9][a-zA-Z0-9_-]{0,31}$", var.name_prefix))
    error_message = "name_prefix must be 1-32 letters, digits, '-' or '_', starting with a letter or digit."
  }
}

variable "table_name" {
  description = "Name of the DynamoDB table (CAIRN_TABLE); null (the default): name_prefix. Set it only to keep an existing table whose name differs from the prefix."
  type        = string
  default     = null
}

variable "memory_size" {
  description = "Lambda memory in MB. The guest memory limit is derived from it, with 128 MiB headroom for the host."
  type        = number
  default     = 512

  validation {
    condition     = var.memory_size >= 256 && var.memory_size <= 10240
    error_message = "memory_size must be between 256 and 10240 MB (the host keeps 128 MiB of it)."
  }
}

variable "timeout" {
  description = "Lambda timeout in seconds."
  type        = number
  default     = 900

  validation {
    condition     = var.timeout >= 1 && var.timeout <= 900
    error_message = "timeout must be between 1 and 900 seconds."
  }
}

variable "log_retention_days" {
  description = "Days the function's logs are kept."
  type        = number
  default     = 30

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a CloudWatch Logs retention value (1, 3, 5, 7, 14, 30, 60, 90, ...)."
  }
}

variable "enable_function_url" {
  description = "Create a Function URL (AuthType AWS_IAM) for the function."
  type        = bool
  default     = false
}

variable "sweep_rate" {
  description = "How often the sweep runs. A killed driver's execution is re-driven within lease_seconds plus this period."
  type        = string
  default     = "rate(1 minute)"

  validation {
    condition     = can(regex("^(rate\\([1-9][0-9]* (minute|minutes|hour|hours|day|days)\\)|cron\\(.+\\))$", var.sweep_rate))
    error_message = "sweep_rate must be an EventBridge Scheduler rate(...) or cron(...) expression."
  }
}

variable "lease_seconds" {
  description = "Seconds a driver's lease on an execution lasts (CAIRN_LEASE_SECONDS); renewed while it works."
  type        = number
  default     = 30

  validation {
    condition     = var.lease_seconds >= 5 && var.lease_seconds <= 900
    error_message = "lease_seconds must be between 5 and 900."
  }
}

variable "inbox_grace_seconds" {
  description = "Seconds after an inbox insert before the sweep drives the execution, in case the stream record was lost (CAIRN_INBOX_GRACE_SECONDS)."
  type        = number
  default     = 60

  validation {
    condition     = var.inbox_grace_seconds >= 10 && var.inbox_grace_seconds <= 3600
    error_message = "inbox_grace_seconds must be between 10 and 3600."
  }
}

variable "index_shards" {
  description = "Shards of the status and wake index keys (CAIRN_INDEX_SHARDS); may change at any time, readers cover every count ever used."
  type        = number
  default     = 128

  validation {
    condition     = var.index_shards >= 1 && var.index_shards <= 1024
    error_message = "index_shards must be between 1 and 1024 (a sweep sends one query per shard)."
  }
}

variable "payload_threshold_bytes" {
  description = "Journal entries and inbox messages (inputs, signals, activity results, outputs) over this many bytes are kept in the payload bucket, the table holding a reference with their SHA-256 (CAIRN_PAYLOAD_THRESHOLD_BYTES)."
  type        = number
  default     = 65536

  validation {
    condition     = var.payload_threshold_bytes >= 1 && var.payload_threshold_bytes <= 400000
    error_message = "payload_threshold_bytes must be between 1 and 400000 (a DynamoDB item holds at most 400 KB)."
  }
}

variable "payload_retention_days" {
  description = "Days a payload object is kept after it was written (the payload bucket's lifecycle expiration; also removes objects a crashed write left behind). Keep it at least as long as you keep executions: an execution whose payload expired can no longer be loaded."
  type        = number
  default     = 365

  validation {
    condition     = var.payload_retention_days >= 1
    error_message = "payload_retention_days must be at least 1."
  }
}

variable "batch_concurrency" {
  description = "Executions of one batch advanced at once (CAIRN_BATCH_CONCURRENCY)."
  type        = number
  default     = 8

  validation {
    condition     = var.batch_concurrency >= 1 && var.batch_concurrency <= 100
    error_message = "batch_concurrency must be between 1 and 100 (a batch holds at most 100 records)."
  }
}

variable "allow_http" {
  description = "Hosts activities may send HTTP requests to (CAIRN_ALLOW_HTTP, joined with \",\"): \"HOST\" or \"HOST:PORT\", \"*.example.com\" for its subdomains, \"*\" for any host. Empty (the default): none; a request to a host not on the list fails the activity attempt, non-retryable."
  type        = list(string)
  default     = []
}

variable "http_extra_roots" {
  description = "PEM files of root certificates (a private CA) that activities' HTTPS trusts besides the system's (CAIRN_HTTP_EXTRA_ROOTS, joined with \",\"): paths in the function's filesystem, e.g. /opt/... in a layer. Empty (the default): the system's roots only."
  type        = list(string)
  default     = []
}

variable "activity_env" {
  description = "Environment variables given to activities (CAIRN_ACTIVITY_ENV, as KEY=VALUE pairs joined with \",\"; as cairn --env). Not for secrets: use activity_secrets. Empty (the default): none."
  type        = map(string)
  default     = {}
}

variable "activity_secrets" {
  description = "Secrets given to activities: { KEY = \"/ssm/parameter/name\" } (CAIRN_ACTIVITY_SECRETS). At cold start the function reads the SSM parameters (SecureString, decrypted) once and gives activities KEY=value; its role gets ssm:GetParameters on exactly these parameters. Empty (the default): none."
  type        = map(string)
  default     = {}
}

variable "activity_secrets_kms_key_arn" {
  description = "The customer managed KMS key that encrypts the activity_secrets parameters, if any: the function role gets kms:Decrypt on it. Empty (the default): the AWS managed key (aws/ssm), which needs no grant."
  type        = string
  default     = ""
  validation {
    condition     = can(regex("^(arn:aws[a-zA-Z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/[a-zA-Z0-9-]+)?$", var.activity_secrets_kms_key_arn))
    error_message = "activity_secrets_kms_key_arn must be a KMS key ARN, or empty."
  }
}

variable "activity_aws_credentials" {
  description = "Give activities the function role's credentials (CAIRN_ACTIVITY_AWS_CREDENTIALS: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_REGION), so that they can call AWS APIs as the function. Off by default."
  type        = bool
  default     = false
}

variable "parallelization_factor" {
  description = "Batches of one stream shard processed at once (records of one execution stay in order)."
  type        = number
  default     = 2

  validation {
    condition     = var.parallelization_factor >= 1 && var.parallelization_factor <= 10
    error_message = "parallelization_factor must be between 1 and 10."
  }
}

variable "reserved_concurrency" {
  description = "Concurrent executions reserved for the function; -1 (the default) leaves it unreserved, 0 stops every invocation (an emergency brake)."
  type        = number
  default     = -1

  validation {
    condition     = var.reserved_concurrency >= -1
    error_message = "reserved_concurrency must be -1 (unreserved) or a number of executions (0 or more)."
  }
}

variable "alarm_topic_arn" {
  description = "SNS topic the alarms notify (on ALARM and back to OK). Empty (the default): the alarms are created without actions."
  type        = string
  default     = ""

  validation {
    condition     = can(regex("^(arn:aws[a-zA-Z-]*:sns:[a-z0-9-]+:[0-9]{12}:[a-zA-Z0-9_.-]+)?$", var.alarm_topic_arn))
    error_message = "alarm_topic_arn must be an SNS topic ARN or empty."
  }
}

variable "lambda_zip_path" {
  description = "The function package: a zip with `bootstrap` at its root (cargo lambda build --release --arm64 --output-format zip)."
  type        = string
}

variable "layer_zip_path" {
  description = "The components layer: a zip with components/<sha256>.cwasm (precompiled for arm64) at its root (scripts/package-lambda)."
  type        = string
}

variable "tags" {
  description = "Tags for every resource that takes them."
  type        = map(string)
  default     = {}
}
