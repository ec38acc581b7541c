variable "region" {
  description = "AWS region to deploy to."
  type        = string
  default     = "us-east-1"
}

variable "name" {
  description = "Prefix for the function, roles, log group, queue and schedule group."
  type        = string
  default     = "cairn"
}

variable "table_name" {
  description = "Name of the DynamoDB table."
  type        = string
  default     = "cairn"
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
