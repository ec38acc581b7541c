//! [`Saga`]: register a compensation after each step; on failure, run them
//! in reverse.

use crate::Failure;
use std::future::Future;
use std::pin::Pin;

type Compensation = Box<dyn FnOnce() -> Pin<Box<dyn Future<Output = Result<(), Failure>>>>>;

/// Compensations for the steps done so far.
///
/// ```no_run
/// use cairn_sdk::prelude::*;
///
/// pub async fn pay(ctx: Ctx, (a, b): (String, String)) -> Result<(), Failure> {
///     let mut saga = Saga::new();
///     ctx.call(activity!(withdraw), &a).await?;
///     saga.add("refund alice", {
///         let ctx = ctx.clone();
///         move || async move { ctx.call(activity!(deposit), &a).await }
///     });
///     if let Err(e) = ctx.call(activity!(deposit), &b).await {
///         let report = saga.compensate().await;
///         return Err(report.into_failure(e));
///     }
///     Ok(())
/// }
/// # pub fn withdraw(_: &ActivityCtx, _: String) -> Result<(), Failure> { Ok(()) }
/// # pub fn deposit(_: &ActivityCtx, _: String) -> Result<(), Failure> { Ok(()) }
/// cairn_sdk::component! { workflows: [pay], activities: [withdraw, deposit] }
/// # fn main() {}
/// ```
#[derive(Default)]
pub struct Saga {
    steps: Vec<(String, Compensation)>,
}

/// What [`Saga::compensate`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SagaReport {
    /// Compensations that succeeded, in the order they ran.
    pub compensated: Vec<String>,
    /// Compensations that failed, with their failure.
    pub failed: Vec<(String, Failure)>,
}

impl SagaReport {
    /// The failure to end the workflow with: `cause`'s kind and message,
    /// followed by what was compensated (and what could not be), with the
    /// report as JSON details.
    pub fn into_failure(self, cause: Failure) -> Failure {
        let mut message = format!(
            "{}; compensated: {}",
            cause.message,
            list(&self.compensated)
        );
        if !self.failed.is_empty() {
            let failed: Vec<String> = self
                .failed
                .iter()
                .map(|(d, f)| format!("{d} ({})", f.message))
                .collect();
            message.push_str(&format!("; compensation FAILED: {}", failed.join(", ")));
        }
        let details = serde_json::json!({
            "compensated": self.compensated,
            "failed": self.failed.iter().map(|(d, f)| serde_json::json!({"step": d, "error": f.message})).collect::<Vec<_>>(),
        });
        let kind = cause.kind;
        Failure {
            kind,
            message,
            details: serde_json::to_vec(&details).ok(),
        }
    }
}

fn list(items: &[String]) -> String {
    if items.is_empty() {
        "nothing".into()
    } else {
        items.join(", ")
    }
}

impl Saga {
    /// An empty saga.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers the compensation of a step that just succeeded.
    pub fn add<F, Fut>(&mut self, description: impl Into<String>, compensation: F)
    where
        F: FnOnce() -> Fut + 'static,
        Fut: Future<Output = Result<(), Failure>> + 'static,
    {
        self.steps.push((
            description.into(),
            Box::new(move || Box::pin(compensation())),
        ));
    }

    /// Number of registered compensations.
    pub fn len(&self) -> usize {
        self.steps.len()
    }

    /// Whether nothing needs compensating.
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// Runs the compensations, last registered first. A failing compensation
    /// is reported and the rest still run.
    pub async fn compensate(self) -> SagaReport {
        let mut report = SagaReport {
            compensated: Vec::new(),
            failed: Vec::new(),
        };
        for (description, compensation) in self.steps.into_iter().rev() {
            match compensation().await {
                Ok(()) => report.compensated.push(description),
                Err(f) => report.failed.push((description, f)),
            }
        }
        report
    }
}
