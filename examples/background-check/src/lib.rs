//! # background-check: a Checkr-style check that runs for up to ~15 days
//!
//! For one candidate: three database searches run in parallel as activities
//! (SSN trace, sex offender registry, global watchlist), and one county
//! criminal search per county runs as a **child execution**. A county search
//! asks the court for records, then waits for the court's answer as the
//! signal `court_result`, sending a reminder every 5 days, and gives up after
//! 15 days. The check reports `clear`, `consider` (a record was found) or
//! `needs_review` (a court never answered). The query `progress` tells, at
//! any time, which searches are done.
//!
//! ```sh
//! cairn start background_check.wasm -w background_check -i '{"candidate": "Jane Doe", "counties": ["Alameda", "Kings"]}' --id bc-1
//! cairn query bc-1 progress
//! cairn signal bc-1/county/Alameda court_result '{"records": []}'
//! cairn wake --skip-time     # let the days pass
//! ```
//!
//! With `"court_api": "https://courts.example"` in the input, the county
//! searches file their records requests with that court-records service
//! (`POST /requests` with `{candidate, county, reply_to}`, where `reply_to`
//! is the execution to signal `court_result`; reminders as `POST
//! /requests/reminders`), each with the call's idempotency key as
//! `Idempotency-Key`, so a retried request is filed once. Run it with
//! `--allow-http courts.example` (in Lambda, `CAIRN_ALLOW_HTTP`). Without
//! it the court is simulated (the requests are only logged).

use cairn_sdk::prelude::*;
use std::cell::RefCell;
use std::io::Write;
use std::rc::Rc;

/// The check's input.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CheckInput {
    /// The candidate's name.
    pub candidate: String,
    /// Counties to search.
    pub counties: Vec<String>,
    /// Base URL of the court-records service; none: simulated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub court_api: Option<String>,
}

/// What a search found.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Finding {
    /// Which search.
    pub search: String,
    /// `clear`, `record` or `no_answer`.
    pub result: String,
    /// Details.
    #[serde(default)]
    pub records: Vec<String>,
}

/// The report.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    /// The candidate.
    pub candidate: String,
    /// `clear`, `consider` or `needs_review`.
    pub status: String,
    /// Every search's finding.
    pub findings: Vec<Finding>,
    /// Days from start to report (journal time).
    pub days: u64,
}

/// Which searches are done: the answer to the query [`PROGRESS`].
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Progress {
    /// Searches done (`ssn_trace`, `county:Alameda`...).
    pub done: Vec<String>,
    /// Searches still running.
    pub pending: Vec<String>,
}

/// `cairn query ID progress`: which searches are done (any arguments).
pub const PROGRESS: QueryRef<serde_json::Value, Progress> = QueryRef::new("progress");

/// The court's answer to a county search, sent to the county search's
/// execution (`cairn signal ID/county/COUNTY court_result '{"records": []}'`).
pub const COURT_RESULT: SignalRef<CourtResult> = SignalRef::new("court_result");

/// The background check.
pub async fn background_check(ctx: Ctx, input: CheckInput) -> Result<Report, Failure> {
    let start = ctx.now();
    let progress = Rc::new(RefCell::new(Progress::default()));
    let databases = ["ssn_trace", "sex_offender", "global_watchlist"];
    {
        let mut p = progress.borrow_mut();
        p.pending.extend(databases.iter().map(|s| s.to_string()));
        p.pending
            .extend(input.counties.iter().map(|c| format!("county:{c}")));
    }
    {
        let progress = progress.clone();
        ctx.handle_query(PROGRESS, move |_args| Ok(progress.borrow().clone()));
    }
    let me = ctx.execution_id();
    let database_searches = join_all(databases.iter().map(|db| {
        let (ctx, progress, candidate) = (ctx.clone(), progress.clone(), input.candidate.clone());
        async move {
            let f = ctx
                .call(activity!(database_search), &(db.to_string(), candidate))
                .retry(RetryPolicy::attempts(5))
                .await?;
            mark_done(&progress, db);
            Ok::<_, Failure>(f)
        }
    }));
    let county_searches = join_all(input.counties.iter().map(|county| {
        let (ctx, progress) = (ctx.clone(), progress.clone());
        let child_id = format!("{me}/county/{county}");
        let req = CountyInput {
            candidate: input.candidate.clone(),
            county: county.clone(),
            court_api: input.court_api.clone(),
        };
        async move {
            let f = ctx
                .start_child(workflow!(county_search), &child_id, &req)
                .await?;
            mark_done(&progress, &format!("county:{}", req.county));
            Ok::<_, Failure>(f)
        }
    }));
    let (dbs, counties) = join(database_searches, county_searches).await;
    let mut findings = Vec::new();
    for f in dbs.into_iter().chain(counties) {
        findings.push(f?);
    }
    let status = if findings.iter().any(|f| f.result == "no_answer") {
        "needs_review"
    } else if findings.iter().any(|f| f.result == "record") {
        "consider"
    } else {
        "clear"
    };
    let days = ctx
        .now()
        .duration_since(start)
        .map(|d| d.as_secs() / 86_400)
        .unwrap_or(0);
    Ok(Report {
        candidate: input.candidate,
        status: status.into(),
        findings,
        days,
    })
}

fn mark_done(progress: &Rc<RefCell<Progress>>, what: &str) {
    let mut p = progress.borrow_mut();
    p.pending.retain(|s| s != what);
    p.done.push(what.to_string());
}

/// A county search's input.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CountyInput {
    /// The candidate.
    pub candidate: String,
    /// The county.
    pub county: String,
    /// Base URL of the court-records service; none: simulated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub court_api: Option<String>,
}

/// The court's answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CourtResult {
    /// Records found (empty: clear).
    #[serde(default)]
    pub records: Vec<String>,
}

/// One county: ask the court, remind it every 5 days, give up after 15.
pub async fn county_search(ctx: Ctx, input: CountyInput) -> Result<Finding, Failure> {
    let search = format!("county:{}", input.county);
    ctx.call(activity!(request_court_records), &input)
        .retry(RetryPolicy::attempts(5))
        .await?;
    let day = Duration::from_secs(86_400);
    for round in 0..3u32 {
        if let Some(answer) = ctx.wait_signal(COURT_RESULT).timeout(day * 5).await? {
            let result = if answer.records.is_empty() {
                "clear"
            } else {
                "record"
            };
            return Ok(Finding {
                search,
                result: result.into(),
                records: answer.records,
            });
        }
        if round < 2 {
            ctx.call(activity!(remind_court), &(input.clone(), round + 1))
                .retry(RetryPolicy::attempts(5))
                .await?;
        }
    }
    Ok(Finding {
        search,
        result: "no_answer".into(),
        records: vec![],
    })
}

/// Searches one database (simulated: a name containing "Fraud" has records).
pub fn database_search(
    ctx: &ActivityCtx,
    (db, candidate): (String, String),
) -> Result<Finding, Failure> {
    log_attempt(ctx)?;
    let records = if candidate.contains("Fraud") && db == "global_watchlist" {
        vec![format!("{db}: match for {candidate}")]
    } else {
        vec![]
    };
    let result = if records.is_empty() {
        "clear"
    } else {
        "record"
    };
    Ok(Finding {
        search: db,
        result: result.into(),
        records,
    })
}

/// Files the records request with the county court: with the court-records
/// service when the input names one (its answer comes later, as the signal
/// `court_result` to `reply_to`), else simulated.
pub async fn request_court_records(ctx: ActivityCtx, input: CountyInput) -> Result<(), Failure> {
    log_attempt(&ctx)?;
    match &input.court_api {
        Some(api) => {
            let body = serde_json::json!({
                "candidate": input.candidate,
                "county": input.county,
                "reply_to": ctx.execution_id(),
            });
            ctx.http()
                .post(&format!("{api}/requests"))
                .json(&body)
                .send()
                .await?
                .check()
                .await?;
        }
        None => eprintln!(
            "requested records for {} in {} ({})",
            input.candidate,
            input.county,
            ctx.idempotency_key()
        ),
    }
    Ok(())
}

/// Sends a reminder to the county court (the service, or simulated).
pub async fn remind_court(ctx: ActivityCtx, (input, n): (CountyInput, u32)) -> Result<(), Failure> {
    log_attempt(&ctx)?;
    match &input.court_api {
        Some(api) => {
            let body = serde_json::json!({
                "county": input.county,
                "reply_to": ctx.execution_id(),
                "reminder": n,
            });
            ctx.http()
                .post(&format!("{api}/requests/reminders"))
                .json(&body)
                .send()
                .await?
                .check()
                .await?;
        }
        None => eprintln!(
            "reminder {n} to {} court ({})",
            input.county,
            ctx.idempotency_key()
        ),
    }
    Ok(())
}

/// Appends `<key> <attempt> <unix ms>` to /ledger/attempts for every
/// attempt, when the host grants a `/ledger` directory: a test harness's
/// own ledger of what ran.
fn log_attempt(ctx: &ActivityCtx) -> Result<(), Failure> {
    if !std::path::Path::new("/ledger").is_dir() {
        return Ok(());
    }
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open("/ledger/attempts")
        .retryable("opening /ledger/attempts")?;
    // One write per line: a kill between two writes would tear it.
    f.write_all(format!("{} {} {ms}\n", ctx.idempotency_key(), ctx.attempt()).as_bytes())
        .retryable("writing /ledger/attempts")?;
    f.sync_all().retryable("syncing /ledger/attempts")
}

cairn_sdk::component! {
    workflows: [background_check, county_search],
    activities: [database_search, request_court_records, remind_court],
}
