//! # provision: HashiCorp-style resource provisioning
//!
//! Creates a resource in an external system, then polls until it is ready,
//! with retries and exponential backoff (each poll is an activity attempt
//! that fails, retryably, while the resource is still being built). Long
//! backoffs are durable: the execution sleeps for free between polls. If the
//! execution is cancelled meanwhile (`cairn cancel ID`), the resource is
//! cleaned up (deleted) before the execution ends cancelled.
//!
//! The external system is simulated: a resource named `slow-*` needs 6 polls,
//! others 2.

use cairn_sdk::prelude::*;

/// What to provision.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProvisionInput {
    /// Resource name.
    pub name: String,
    /// Resource kind (`vm`, `db`...).
    pub kind: String,
}

/// A created resource.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Resource {
    /// Its id in the external system.
    pub id: String,
    /// Its name.
    pub name: String,
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
    let resource: Resource = ctx
        .activity("create_resource", &input)
        .retry(RetryPolicy::attempts(5))
        .await?;
    let mut saga = Saga::new();
    {
        let (ctx, r) = (ctx.clone(), resource.clone());
        saga.add(format!("delete {}", r.id), move || async move {
            ctx.activity::<()>("delete_resource", &r)
                .retry(RetryPolicy::default())
                .await
        });
    }
    // Poll with exponential backoff: 1 s, 2 s, 4 s, ... at most 60 s apart.
    let poll = RetryPolicy::attempts(20)
        .initial_interval(Duration::from_secs(1))
        .backoff(2.0)
        .maximum_interval(Duration::from_secs(60));
    match ctx
        .activity::<u32>("wait_ready", &resource)
        .retry(poll)
        .await
    {
        Ok(polls) => Ok(Provisioned { resource, polls }),
        Err(failure) => {
            let report = saga.compensate().await;
            Err(report.into_failure(failure))
        }
    }
}

/// Creates the resource (simulated: the id derives from the idempotency key,
/// so a retried create returns the same resource).
pub fn create_resource(ctx: &ActivityCtx, input: ProvisionInput) -> Result<Resource, Failure> {
    Ok(Resource {
        id: format!("{}-{}", input.kind, ctx.idempotency_key().replace('/', "-")),
        name: input.name,
    })
}

/// Checks readiness: fails (retryably) until the resource is built.
pub fn wait_ready(ctx: &ActivityCtx, r: Resource) -> Result<u32, Failure> {
    let needed = if r.name.starts_with("slow-") { 6 } else { 2 };
    if ctx.attempt() < needed {
        return Err(Failure::retryable(format!(
            "{} is still being built (poll {})",
            r.id,
            ctx.attempt()
        )));
    }
    Ok(ctx.attempt())
}

/// Deletes the resource (simulated; idempotent).
pub fn delete_resource(_ctx: &ActivityCtx, r: Resource) -> Result<(), Failure> {
    eprintln!("deleted {}", r.id);
    Ok(())
}

cairn_sdk::component! {
    workflows: [provision],
    activities: [create_resource, wait_ready, delete_resource],
}
