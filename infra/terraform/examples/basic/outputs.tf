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
