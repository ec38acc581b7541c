//! The Lambda function's `bootstrap`: builds the engine and the AWS clients
//! once, then serves invocations with JSON logs.

use cairn_core::Timestamp;
use cairn_lambda::{App, Settings};
use lambda_runtime::{Diagnostic, LambdaEvent, service_fn};
use serde_json::Value;
use std::time::Instant;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let started = Instant::now();
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,wasmtime=warn,cranelift=warn".into()),
        )
        .with_target(false)
        .with_current_span(false)
        .without_time()
        .init();
    let settings = Settings::from_env()?;
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let app = App::new(settings, &sdk, started).await?;
    tracing::info!(
        init_ms = started.elapsed().as_secs_f64() * 1e3,
        "cairn ready"
    );
    let app = &app;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let deadline = cairn_lambda::deadline(event.context.deadline, Timestamp::now_system());
        let arn = event.context.invoked_function_arn.clone();
        let request = event.context.request_id.clone();
        tracing::debug!(%request, "invocation received");
        let r = app.handle(event.payload, &arn, deadline).await;
        tracing::debug!(%request, ok = r.is_ok(), "invocation answered");
        r.map_err(Diagnostic::from)
    }))
    .await
}
