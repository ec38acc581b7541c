variable "region" {
  description = "AWS region to deploy to."
  type        = string
  default     = "us-east-1"
}

variable "name_prefix" {
  description = "Prefix of every resource name; one per environment in an account and region."
  type        = string
  default     = "cairn"
}

variable "table_name" {
  description = "Name of the DynamoDB table; null: name_prefix."
  type        = string
  default     = null
}

variable "lambda_zip_path" {
  description = "The function zip (bootstrap at its root)."
  type        = string
  default     = "../../../../target/lambda/cairn-lambda/bootstrap.zip"
}

variable "layer_zip_path" {
  description = "The components layer zip (components/<sha256>.cwasm at its root)."
  type        = string
  default     = "../../../../target/lambda/components.zip"
}

variable "enable_function_url" {
  description = "Create a Function URL (AuthType AWS_IAM)."
  type        = bool
  default     = false
}

variable "reserved_concurrency" {
  description = "Concurrent executions reserved for the function; -1: unreserved."
  type        = number
  default     = -1
}

variable "alarm_topic_arn" {
  description = "SNS topic the alarms notify; empty: no notifications."
  type        = string
  default     = ""
}

variable "allow_http" {
  description = "Hosts activities may send HTTP requests to (\"api.example.com\", \"*.amazonaws.com\", \"*\"); empty: none."
  type        = list(string)
  default     = []
}

variable "http_extra_roots" {
  description = "PEM files of extra root certificates (a private CA) in the function's filesystem; empty: the system's roots only."
  type        = list(string)
  default     = []
}

variable "activity_env" {
  description = "Environment variables given to activities ({ KEY = \"value\" }); not for secrets."
  type        = map(string)
  default     = {}
}

variable "activity_secrets" {
  description = "Secrets given to activities, from SSM Parameter Store: { KEY = \"/ssm/parameter/name\" }."
  type        = map(string)
  default     = {}
}

variable "activity_secrets_kms_key_arn" {
  description = "The customer managed KMS key of the secrets' parameters; empty: the AWS managed key (no grant needed)."
  type        = string
  default     = ""
}

variable "activity_aws_credentials" {
  description = "Give activities the function role's AWS credentials."
  type        = bool
  default     = false
}
