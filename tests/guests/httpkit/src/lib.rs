//! Guest for Cairn's HTTP tests: async activities that call the test's
//! local HTTP(S) servers through `cairn_sdk::http`, and a workflow that
//! tries HTTP itself (refused: CRN305).

use cairn_sdk::prelude::*;

/// What `fetch` asks its activity to do.
#[derive(Serialize, Deserialize)]
pub struct Call {
    /// The URL.
    pub url: String,
    /// POST this JSON (else GET).
    #[serde(default)]
    pub post: Option<serde_json::Value>,
    /// Stream the body and return its size and a checksum instead of it.
    #[serde(default)]
    pub stream: bool,
    /// Attempts in all (default 1).
    #[serde(default)]
    pub attempts: Option<u32>,
    /// The activity's per-attempt timeout.
    #[serde(default)]
    pub timeout_ms: Option<u64>,
}

/// Runs the `call` activity once with `call`'s retry policy and timeout.
pub async fn fetch(ctx: Ctx, call: Call) -> Result<serde_json::Value, Failure> {
    let mut activity = ctx.call(activity!(call), &call).retry(
        RetryPolicy::attempts(call.attempts.unwrap_or(1))
            .initial_interval(Duration::from_millis(50)),
    );
    if let Some(ms) = call.timeout_ms {
        activity = activity.timeout(Duration::from_millis(ms));
    }
    activity.await
}

/// GETs or POSTs JSON, or streams a body, as `call` says.
pub async fn call(ctx: ActivityCtx, call: Call) -> Result<serde_json::Value, Failure> {
    let http = ctx.http();
    if let Some(body) = &call.post {
        return http.post_json(&call.url, body).await;
    }
    if !call.stream {
        return http.get_json(&call.url).await;
    }
    let mut response = http.get(&call.url).send().await?.error_for_status()?;
    let (mut bytes, mut sum, mut chunks) = (0u64, 0u64, 0u32);
    while let Some(chunk) = response.chunk().await? {
        bytes += chunk.len() as u64;
        chunks += 1;
        sum = chunk
            .iter()
            .fold(sum, |s, b| s.wrapping_mul(31).wrapping_add(u64::from(*b)));
    }
    Ok(serde_json::json!({"bytes": bytes, "checksum": sum, "chunks": chunks}))
}

/// Tries HTTP from workflow code: the host refuses it (CRN305).
pub async fn http_in_workflow(_ctx: Ctx, url: String) -> Result<(), Failure> {
    let request = cairn_sdk::wstd::http::Request::get(url)
        .body(cairn_sdk::wstd::http::Body::empty())
        .map_err(|e| Failure::non_retryable(e.to_string()))?;
    let client = cairn_sdk::wstd::http::Client::new();
    cairn_sdk::wstd::runtime::block_on(client.send(request))
        .map_err(|e| Failure::non_retryable(e.to_string()))?;
    Ok(())
}

cairn_sdk::component! {
    workflows: [fetch, http_in_workflow],
    activities: [call],
}
