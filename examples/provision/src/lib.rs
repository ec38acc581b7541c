//! # provision: HashiCorp-style resource provisioning
//!
//! Creates a resource in an external system, then polls until it is ready,
//! with retries and exponential backoff (each poll is an activity attempt
//! that fails, retryably, while the resource is still being built). Long
//! backoffs are durable: the execution sleeps for free between polls. If the
//! execution is cancelled meanwhile (`cairn cancel ID`), the resource is
//! cleaned up (deleted) before the execution ends cancelled.
//!
//! The external system is an HTTP "cloud API" when the input names one
//! (`api`: `POST /resources` with the create's idempotency key, `GET
//! /resources/{id}` until its `status` is `ready`, `DELETE /resources/{id}`;
//! run with `--allow-http` for its host), and simulated in-process
//! otherwise: a resource named `slow-*` needs 6 polls, others 2.

use cairn_sdk::prelude::*;

/// What to provision.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProvisionInput {
    /// Resource name.
    pub name: String,
    /// Resource kind (`vm`, `db`...).
    pub kind: String,
    /// Base URL of the cloud API (`http://127.0.0.1:8080`); none: simulated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api: Option<String>,
}

/// A created resource.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Resource {
    /// Its id in the external system.
    pub id: String,
    /// Its name.
    pub name: String,
    /// The cloud API that holds it (none: simulated).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api: Option<String>,
}

/// The outcome.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Provisioned {
    /// The resource.
    pub resource: Resource,
    /// Polls it took.
    pub polls: u32,
}

/// Provisions one resource; cleans up on cancellation or failure.
pub async fn provision(ctx: Ctx, input: ProvisionInput) -> Result<Provisioned, Failure> {
    let resource = ctx
        .call(activity!(create_resource), &input)
        .retry(RetryPolicy::attempts(5))
        .await?;
    let mut saga = Saga::new();
    {
        let (ctx, r) = (ctx.clone(), resource.clone());
        saga.add(format!("delete {}", r.id), move || async move {
            ctx.call(activity!(delete_resource), &r)
                .retry(RetryPolicy::default())
                .await
        });
    }
    // Poll with exponential backoff: 1 s, 2 s, 4 s, ... at most 60 s apart.
    let poll = RetryPolicy::attempts(20)
        .initial_interval(Duration::from_secs(1))
        .backoff(2.0)
        .maximum_interval(Duration::from_secs(60));
    match ctx.call(activity!(wait_ready), &resource).retry(poll).await {
        Ok(polls) => Ok(Provisioned { resource, polls }),
        Err(failure) => {
            let report = saga.compensate().await;
            Err(report.into_failure(failure))
        }
    }
}

/// What the cloud API says about a resource.
#[derive(Debug, Deserialize)]
struct CloudResource {
    id: String,
    status: String,
}

/// Creates the resource. The cloud API gets the call's idempotency key
/// (`Idempotency-Key`), so a retried create returns the same resource; the
/// simulated id derives from it for the same reason.
pub async fn create_resource(ctx: ActivityCtx, input: ProvisionInput) -> Result<Resource, Failure> {
    let id = match &input.api {
        Some(api) => {
            let body = serde_json::json!({"name": input.name, "kind": input.kind});
            let created: CloudResource = ctx
                .http()
                .post_json(&format!("{api}/resources"), &body)
                .await?;
            created.id
        }
        None => format!("{}-{}", input.kind, ctx.idempotency_key().replace('/', "-")),
    };
    Ok(Resource {
        id,
        name: input.name,
        api: input.api,
    })
}

/// Checks readiness: fails (retryably) until the resource is built.
pub async fn wait_ready(ctx: ActivityCtx, r: Resource) -> Result<u32, Failure> {
    let ready = match &r.api {
        Some(api) => {
            let url = format!("{api}/resources/{}", r.id);
            let now: CloudResource = ctx.http().get_json(&url).await?;
            now.status == "ready"
        }
        None => ctx.attempt() >= if r.name.starts_with("slow-") { 6 } else { 2 },
    };
    if !ready {
        return Err(Failure::retryable(format!(
            "{} is still being built (poll {})",
            r.id,
            ctx.attempt()
        )));
    }
    Ok(ctx.attempt())
}

/// Deletes the resource (idempotent: gone already is fine).
pub async fn delete_resource(ctx: ActivityCtx, r: Resource) -> Result<(), Failure> {
    if let Some(api) = &r.api {
        let url = format!("{api}/resources/{}", r.id);
        let response = ctx.http().delete(&url).send().await?;
        if response.status() != 404 {
            response.check().await?;
        }
    }
    eprintln!("deleted {}", r.id);
    Ok(())
}

cairn_sdk::component! {
    workflows: [provision],
    activities: [create_resource, wait_ready, delete_resource],
}
