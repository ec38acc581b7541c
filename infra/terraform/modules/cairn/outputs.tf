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
