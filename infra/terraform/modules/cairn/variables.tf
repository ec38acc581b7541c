variable "name" {
  description = "Prefix for the function, its roles, log group, queue and schedule group."
  type        = string
  default     = "cairn"
}

variable "table_name" {
  description = "Name of the DynamoDB table (CAIRN_TABLE)."
  type        = string
  default     = "cairn"
}

variable "memory_size" {
  description = "Lambda memory in MB."
  type        = number
  default     = 256

  validation {
    condition     = var.memory_size >= 128 && var.memory_size <= 10240
    error_message = "memory_size must be between 128 and 10240 MB."
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

variable "lambda_zip_path" {
  description = "The function package: a zip with `bootstrap` at its root (cargo lambda build --release --arm64 --output-format zip)."
  type        = string
}

variable "layer_zip_path" {
  description = "The components layer: a zip with components/<sha256>.wasm at its root (scripts/package-lambda)."
  type        = string
}

variable "tags" {
  description = "Tags for every resource that takes them."
  type        = map(string)
  default     = {}
}
