//! An activity that calls DynamoDB with the AWS SDK for Rust, over
//! `wasi:http` (`aws-smithy-wasm`'s HTTP client and sleep, on the same wstd
//! event loop as every async activity). The host sends the requests, does
//! TLS, and refuses hosts the operator did not allow (`--allow-http`).
//!
//! Credentials reach the activity only if the operator grants them: locally
//! `--env AWS_ACCESS_KEY_ID=… --env AWS_SECRET_ACCESS_KEY=…` (and
//! `AWS_SESSION_TOKEN`, `AWS_REGION`); without them the activity fails, not
//! retried.

use aws_sdk_dynamodb::config::{Credentials, Region};
use cairn_sdk::prelude::*;

/// Lists the tables at `endpoint` (e.g. `https://dynamodb.us-east-1.amazonaws.com`).
pub async fn tables(ctx: Ctx, endpoint: String) -> Result<Vec<String>, Failure> {
    ctx.call(activity!(list_tables), &endpoint)
        .retry(RetryPolicy::attempts(3))
        .await
}

/// `ListTables` with the credentials the operator granted.
pub async fn list_tables(_ctx: ActivityCtx, endpoint: String) -> Result<Vec<String>, Failure> {
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let (Some(key), Some(secret)) = (var("AWS_ACCESS_KEY_ID"), var("AWS_SECRET_ACCESS_KEY")) else {
        return Err(Failure::non_retryable(
            "no AWS credentials granted to activities (cairn --env AWS_ACCESS_KEY_ID=… --env AWS_SECRET_ACCESS_KEY=…)",
        ));
    };
    let credentials = Credentials::new(key, secret, var("AWS_SESSION_TOKEN"), None, "cairn");
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version_latest()
        .region(Region::new(
            var("AWS_REGION").unwrap_or_else(|| "us-east-1".into()),
        ))
        .endpoint_url(endpoint)
        .credentials_provider(credentials)
        .http_client(aws_smithy_wasm::wasi::WasiHttpClientBuilder::new().build())
        .sleep_impl(aws_smithy_wasm::wasi::WasiSleep)
        .build();
    let out = aws_sdk_dynamodb::Client::from_conf(config)
        .list_tables()
        .send()
        .await
        .map_err(|e| {
            Failure::retryable(format!(
                "ListTables: {}",
                aws_sdk_dynamodb::error::DisplayErrorContext(&e)
            ))
        })?;
    Ok(out.table_names().to_vec())
}

cairn_sdk::component! {
    workflows: [tables],
    activities: [list_tables],
}
