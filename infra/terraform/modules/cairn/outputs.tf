output "table_name" {
  description = "The DynamoDB table (for `cairn --store dynamodb --table NAME`)."
  value       = aws_dynamodb_table.this.name
}

output "function_arn" {
  description = "The Cairn function."
  value       = aws_lambda_function.this.arn
}

output "function_url" {
  description = "The Function URL (AWS_IAM), empty when enable_function_url is false."
  value       = var.enable_function_url ? aws_lambda_function_url.this[0].function_url : ""
}

output "scheduler_dead_letter_queue_url" {
  description = "Timer wakes EventBridge Scheduler could not deliver (read these)."
  value       = aws_sqs_queue.scheduler_dead_letter.url
}

output "scheduler_dead_letter_queue_arn" {
  description = "The schedule dead-letter queue (CAIRN_SCHEDULER_DLQ_ARN)."
  value       = aws_sqs_queue.scheduler_dead_letter.arn
}

output "caller_policy_arn" {
  description = "The managed policy to attach to applications that call Cairn (invoke the function, and its URL when enabled)."
  value       = aws_iam_policy.caller.arn
}

output "payload_bucket_name" {
  description = "The payload bucket (for `cairn --store dynamodb --payload-bucket NAME`)."
  value       = aws_s3_bucket.payloads.id
}
