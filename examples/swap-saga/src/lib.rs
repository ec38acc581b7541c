//! # swap-saga: a Coinbase-style swap that fully happens or fully rolls back
//!
//! Alice gives `foo` foocoin to Bob, Bob gives `bar` barcoin to Alice, in four
//! steps: withdraw foocoin from A, withdraw barcoin from B, deposit foocoin
//! into B, deposit barcoin into A. If a step fails for good, the steps already
//! done are compensated in reverse and the execution fails with the list of
//! compensations: the users see succeeded or failed, never half.
//!
//! `fail_at_step` (1-4) makes that step fail non-retryably, to see the
//! compensation path.
//!
//! Activities record their effect in a ledger when the host gives them a
//! `/ledger` directory (`cairn run --dir ./ledger:/ledger ...`): one line per
//! effect, keyed by the activity's idempotency key, so a retried or re-run
//! activity never applies its effect twice.

use cairn_sdk::prelude::*;
use std::io::Write;

/// The swap's input.
#[derive(Debug, Deserialize)]
pub struct SwapInput {
    /// Account that gives foocoin and gets barcoin.
    pub a: String,
    /// Account that gives barcoin and gets foocoin.
    pub b: String,
    /// Foocoin amount.
    pub foo: u64,
    /// Barcoin amount.
    pub bar: u64,
    /// Makes step 1-4 fail non-retryably.
    #[serde(default)]
    pub fail_at_step: Option<u8>,
}

/// The swap's output.
#[derive(Debug, Serialize)]
pub struct SwapOutput {
    /// Always `succeeded` (a failed swap is a failed execution).
    pub status: &'static str,
    /// One receipt per step.
    pub receipts: Vec<String>,
}

/// One movement of coins.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Transfer {
    /// The account.
    pub account: String,
    /// `foo` or `bar`.
    pub coin: String,
    /// How much.
    pub amount: u64,
    /// Fail this transfer (for `fail_at_step`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub fail: bool,
}

/// What a transfer returns.
#[derive(Debug, Serialize, Deserialize)]
pub struct Receipt {
    /// The transaction id (the idempotency key).
    pub tx: String,
}

fn transfer(account: &str, coin: &str, amount: u64) -> Transfer {
    Transfer {
        account: account.into(),
        coin: coin.into(),
        amount,
        fail: false,
    }
}

/// The swap workflow.
pub async fn swap(ctx: Ctx, input: SwapInput) -> Result<SwapOutput, Failure> {
    let (a, b) = (input.a.as_str(), input.b.as_str());
    // (activity, transfer, description, compensating activity, its description)
    let steps = [
        (
            activity!(withdraw),
            transfer(a, "foo", input.foo),
            format!("withdraw foo from {a}"),
            activity!(deposit),
            format!("refund foo to {a}"),
        ),
        (
            activity!(withdraw),
            transfer(b, "bar", input.bar),
            format!("withdraw bar from {b}"),
            activity!(deposit),
            format!("refund bar to {b}"),
        ),
        (
            activity!(deposit),
            transfer(b, "foo", input.foo),
            format!("deposit foo into {b}"),
            activity!(withdraw),
            format!("take back foo from {b}"),
        ),
        (
            activity!(deposit),
            transfer(a, "bar", input.bar),
            format!("deposit bar into {a}"),
            activity!(withdraw),
            format!("take back bar from {a}"),
        ),
    ];
    let step_policy = RetryPolicy::attempts(3).initial_interval(Duration::from_millis(100));
    let mut saga = Saga::new();
    let mut receipts = Vec::new();
    for (i, (activity, mut request, description, undo, undo_description)) in
        steps.into_iter().enumerate()
    {
        let n = i as u8 + 1;
        let undo_request = request.clone();
        request.fail = input.fail_at_step == Some(n);
        match ctx.call(activity, &request).retry(step_policy).await {
            Ok(receipt) => {
                receipts.push(receipt.tx);
                let ctx = ctx.clone();
                saga.add(undo_description, move || async move {
                    // Compensations must not give up: retry until they succeed.
                    ctx.call(undo, &undo_request)
                        .retry(RetryPolicy::default())
                        .await
                        .map(|_| ())
                });
            }
            Err(failure) => {
                let cause = Failure::non_retryable(format!(
                    "swap failed at step {n} ({description}): {}",
                    failure.message
                ));
                return Err(saga.compensate().await.into_failure(cause));
            }
        }
    }
    Ok(SwapOutput {
        status: "succeeded",
        receipts,
    })
}

/// Takes coins out of an account.
pub fn withdraw(ctx: &ActivityCtx, t: Transfer) -> Result<Receipt, Failure> {
    apply(ctx, "withdraw", &t)
}

/// Puts coins into an account.
pub fn deposit(ctx: &ActivityCtx, t: Transfer) -> Result<Receipt, Failure> {
    apply(ctx, "deposit", &t)
}

fn apply(ctx: &ActivityCtx, op: &str, t: &Transfer) -> Result<Receipt, Failure> {
    let ledger = std::path::Path::new("/ledger").is_dir();
    if ledger {
        log_attempt(ctx)?;
    }
    if t.fail {
        return Err(Failure::non_retryable("injected failure"));
    }
    let key = ctx.idempotency_key().to_string();
    if ledger {
        record(&key, op, t)?;
    }
    Ok(Receipt { tx: key })
}

/// Appends `<key> <attempt> <unix ms>` to /ledger/attempts for every
/// attempt, before any effect and whatever the deduplication below does: a
/// test harness's own ledger of what ran.
fn log_attempt(ctx: &ActivityCtx) -> Result<(), Failure> {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open("/ledger/attempts")
        .retryable("opening /ledger/attempts")?;
    f.write_all(format!("{} {} {ms}\n", ctx.idempotency_key(), ctx.attempt()).as_bytes())
        .retryable("writing /ledger/attempts")?;
    f.sync_all().retryable("syncing /ledger/attempts")
}

/// Appends the effect to /ledger/ledger.jsonl unless the key is already there.
fn record(key: &str, op: &str, t: &Transfer) -> Result<(), Failure> {
    let path = "/ledger/ledger.jsonl";
    let existing = std::fs::read_to_string(path).unwrap_or_default();
    let needle = format!("\"key\":\"{key}\"");
    if existing.lines().any(|l| l.contains(&needle)) {
        return Ok(()); // Already applied: the idempotency key makes the retry harmless.
    }
    let line = serde_json::json!({"key": key, "op": op, "account": t.account, "coin": t.coin, "amount": t.amount});
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .retryable(format_args!("opening {path}"))?;
    // One write call per line: formatting straight into the file would
    // issue a write per token, and a crash between two would tear the line.
    f.write_all(format!("{line}\n").as_bytes())
        .retryable(format_args!("writing {path}"))?;
    f.sync_all().retryable(format_args!("syncing {path}"))
}

cairn_sdk::component! {
    workflows: [swap],
    activities: [withdraw, deposit],
}
