output "table_name" {
  description = "The DynamoDB table (for `cairn --store dynamodb --table NAME`)."
  value       = module.cairn.table_name
}

output "function_arn" {
  description = "The Cairn function."
  value       = module.cairn.function_arn
}

output "function_url" {
  description = "The Function URL (AWS_IAM), empty when disabled."
  value       = module.cairn.function_url
}

output "scheduler_dead_letter_queue_url" {
  description = "Timer wakes EventBridge Scheduler could not deliver."
  value       = module.cairn.scheduler_dead_letter_queue_url
}

output "scheduler_dead_letter_queue_arn" {
  description = "The schedule dead-letter queue."
  value       = module.cairn.scheduler_dead_letter_queue_arn
}

output "caller_policy_arn" {
  description = "The managed policy to attach to applications that call Cairn."
  value       = module.cairn.caller_policy_arn
}
