# The whole Cairn stack in one region, from packages built beforehand:
#   cargo lambda build --release --arm64 --output-format zip   (the function)
#   scripts/package-lambda                                      (the components layer)
# then: terraform init && terraform apply

terraform {
  required_version = ">= 1.5.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.40, < 7.0"
    }
  }
}

provider "aws" {
  region = var.region
}

module "cairn" {
  source = "../../modules/cairn"

  name_prefix          = var.name_prefix
  table_name           = var.table_name
  lambda_zip_path      = var.lambda_zip_path
  layer_zip_path       = var.layer_zip_path
  enable_function_url  = var.enable_function_url
  reserved_concurrency = var.reserved_concurrency
  alarm_topic_arn      = var.alarm_topic_arn
  allow_http           = var.allow_http
  http_extra_roots     = var.http_extra_roots

  activity_env                 = var.activity_env
  activity_secrets             = var.activity_secrets
  activity_secrets_kms_key_arn = var.activity_secrets_kms_key_arn
  activity_aws_credentials     = var.activity_aws_credentials
}
