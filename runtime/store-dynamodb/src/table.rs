//! The table: create it (local use) and check it (at connect).

use crate::codec::sdk_error;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, StreamSpecification, StreamViewType,
    TimeToLiveSpecification, TimeToLiveStatus,
};
use cairn_core::StoreError;
use std::time::Duration;

/// What [`describe_table`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TableCheck {
    /// A Cairn table.
    Ok,
    /// No such table.
    Missing,
    /// A table, but not shaped for Cairn: why.
    Wrong(String),
}

fn key(name: &str, t: KeyType) -> KeySchemaElement {
    KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(t)
        .build()
        .expect("key has name and type")
}

fn attr(name: &str, t: ScalarAttributeType) -> AttributeDefinition {
    AttributeDefinition::builder()
        .attribute_name(name)
        .attribute_type(t)
        .build()
        .expect("attribute has name and type")
}

fn gsi(name: &str, hash: &str, range: &str, projection: Projection) -> GlobalSecondaryIndex {
    GlobalSecondaryIndex::builder()
        .index_name(name)
        .key_schema(key(hash, KeyType::Hash))
        .key_schema(key(range, KeyType::Range))
        .projection(projection)
        .build()
        .expect("index has name, keys and projection")
}

/// The index `list` reads: hash `status_shard` (`<status>#<shard>`), range
/// `updated_at`.
pub(crate) const STATUS_INDEX: &str = "by-status-shard";

/// The index of contract 1 (hash `status`, one key per status): replaced
/// by [`STATUS_INDEX`].
pub(crate) const LEGACY_STATUS_INDEX: &str = "by-status";

/// The meta attributes [`STATUS_INDEX`] projects besides the keys: what a
/// listed execution shows. The lease and the due time (`lease_owner`,
/// `lease_until`, `wake_at`, `wake_bucket`) are left out, so taking,
/// renewing and releasing a lease write no index item.
pub const STATUS_PROJECTION: [&str; 10] = [
    "workflow",
    "component",
    "status",
    "input_hash",
    "created_at",
    "inbox_version",
    "run",
    "timer_at",
    "waiting_on",
    "parked",
];

fn status_index() -> GlobalSecondaryIndex {
    gsi(
        STATUS_INDEX,
        "status_shard",
        "updated_at",
        Projection::builder()
            .projection_type(ProjectionType::Include)
            .set_non_key_attributes(Some(
                STATUS_PROJECTION.iter().map(|a| a.to_string()).collect(),
            ))
            .build(),
    )
}

/// Creates a Cairn table (the same schema as `infra/`), waits until it is
/// active and turns on TTL. An existing Cairn table is left as it is; a
/// contract 1 table (index `by-status` on `status`) is upgraded in place:
/// see [`upgrade_table`]. `true` when it created or upgraded the table.
pub async fn create_table(client: &Client, table: &str) -> Result<bool, StoreError> {
    match describe_table(client, table).await? {
        // A create cut short (its wait timed out) left TTL off: turn it on.
        TableCheck::Ok => {
            ensure_ttl(client, table).await?;
            return Ok(false);
        }
        TableCheck::Missing => {}
        TableCheck::Wrong(why) => {
            if has_index(client, table, LEGACY_STATUS_INDEX).await? {
                upgrade_table(client, table, crate::DEFAULT_INDEX_SHARDS).await?;
                return Ok(true);
            }
            return Err(StoreError::Misconfigured(format!(
                "table {table} exists and is not a Cairn table: {why}"
            )));
        }
    }
    client
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(key("pk", KeyType::Hash))
        .key_schema(key("sk", KeyType::Range))
        .attribute_definitions(attr("pk", ScalarAttributeType::S))
        .attribute_definitions(attr("sk", ScalarAttributeType::S))
        .attribute_definitions(attr("status_shard", ScalarAttributeType::S))
        .attribute_definitions(attr("updated_at", ScalarAttributeType::N))
        .attribute_definitions(attr("wake_bucket", ScalarAttributeType::S))
        .attribute_definitions(attr("wake_at", ScalarAttributeType::N))
        .global_secondary_indexes(status_index())
        .global_secondary_indexes(gsi(
            "by-wake",
            "wake_bucket",
            "wake_at",
            Projection::builder()
                .projection_type(ProjectionType::KeysOnly)
                .build(),
        ))
        .stream_specification(
            StreamSpecification::builder()
                .stream_enabled(true)
                .stream_view_type(StreamViewType::NewImage)
                .build()
                .expect("stream spec"),
        )
        .send()
        .await
        .map_err(|e| sdk_error(table, e))?;
    wait_until_active(client, table).await?;
    ensure_ttl(client, table).await?;
    Ok(true)
}

/// The attribute whose time expires consumed inbox items.
const TTL_ATTRIBUTE: &str = "expires_at";

/// Turns TTL on `expires_at` on unless it is on (or turning on) already.
async fn ensure_ttl(client: &Client, table: &str) -> Result<(), StoreError> {
    let ttl = client
        .describe_time_to_live()
        .table_name(table)
        .send()
        .await
        .map_err(|e| sdk_error(table, e))?
        .time_to_live_description;
    let status = ttl.as_ref().and_then(|t| t.time_to_live_status());
    let attribute = ttl.as_ref().and_then(|t| t.attribute_name());
    match status {
        Some(TimeToLiveStatus::Enabled | TimeToLiveStatus::Enabling)
            if attribute == Some(TTL_ATTRIBUTE) =>
        {
            return Ok(());
        }
        Some(TimeToLiveStatus::Enabled | TimeToLiveStatus::Enabling) => {
            return Err(StoreError::Misconfigured(format!(
                "table {table} expires items by {:?}, and Cairn's consumed inbox items carry {TTL_ATTRIBUTE:?}: turn that TTL off, then run `cairn table create --table {table}`",
                attribute.unwrap_or_default()
            )));
        }
        _ => {}
    }
    client
        .update_time_to_live()
        .table_name(table)
        .time_to_live_specification(
            TimeToLiveSpecification::builder()
                .enabled(true)
                .attribute_name(TTL_ATTRIBUTE)
                .build()
                .expect("ttl spec"),
        )
        .send()
        .await
        .map_err(|e| sdk_error(table, e))?;
    Ok(())
}

/// How long [`create_table`] waits for a new table to become ACTIVE.
const CREATE_WAIT: Duration = Duration::from_secs(60);

/// Waits (the SDK's `table_exists` waiter: polls at once, then every 20 s
/// or more) until `table` is ACTIVE.
async fn wait_until_active(client: &Client, table: &str) -> Result<(), StoreError> {
    use aws_sdk_dynamodb::client::Waiters;
    use aws_smithy_runtime_api::client::waiters::error::WaiterError;
    match client
        .wait_until_table_exists()
        .table_name(table)
        .wait(CREATE_WAIT)
        .await
    {
        Ok(_) => Ok(()),
        Err(WaiterError::OperationFailed(e)) => Err(sdk_error(table, e.into_error())),
        Err(e) => Err(StoreError::Unavailable(format!(
            "table {table} was created but did not become ACTIVE within {} s ({e}): run `cairn table create --table {table}` again",
            CREATE_WAIT.as_secs()
        ))),
    }
}

/// Checks `table` has Cairn's keys and indexes.
pub async fn describe_table(client: &Client, table: &str) -> Result<TableCheck, StoreError> {
    let out = match client.describe_table().table_name(table).send().await {
        Ok(out) => out,
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_not_found_exception()) =>
        {
            return Ok(TableCheck::Missing);
        }
        Err(e) => return Err(sdk_error(table, e)),
    };
    let Some(t) = out.table else {
        return Ok(TableCheck::Missing);
    };
    let keys: Vec<(String, String)> = t
        .key_schema()
        .iter()
        .map(|k| {
            (
                k.attribute_name().to_string(),
                k.key_type().as_str().to_string(),
            )
        })
        .collect();
    let expected = vec![
        ("pk".to_string(), "HASH".to_string()),
        ("sk".to_string(), "RANGE".to_string()),
    ];
    if keys != expected {
        let found: Vec<String> = keys.iter().map(|(n, t)| format!("{n} ({t})")).collect();
        return Ok(TableCheck::Wrong(format!(
            "its key schema is {}, Cairn needs pk (HASH), sk (RANGE)",
            found.join(", ")
        )));
    }
    let indexes: Vec<&str> = t
        .global_secondary_indexes()
        .iter()
        .filter_map(|g| g.index_name())
        .collect();
    if !indexes.contains(&STATUS_INDEX) && indexes.contains(&LEGACY_STATUS_INDEX) {
        return Ok(TableCheck::Wrong(format!(
            "it is a contract 1 table (index {LEGACY_STATUS_INDEX}, one key per status): upgrade it to contract {} with `cairn table create --table {table}` (see infra/README.md, \"Upgrading\")",
            crate::CONTRACT_VERSION
        )));
    }
    for needed in [STATUS_INDEX, "by-wake"] {
        if !indexes.contains(&needed) {
            return Ok(TableCheck::Wrong(format!(
                "it has no global secondary index {needed}"
            )));
        }
    }
    Ok(TableCheck::Ok)
}

async fn has_index(client: &Client, table: &str, index: &str) -> Result<bool, StoreError> {
    let out = client
        .describe_table()
        .table_name(table)
        .send()
        .await
        .map_err(|e| sdk_error(table, e))?;
    Ok(out.table.is_some_and(|t| {
        t.global_secondary_indexes()
            .iter()
            .any(|g| g.index_name() == Some(index))
    }))
}

/// How long [`upgrade_table`] waits for the new index to become ACTIVE.
const UPGRADE_WAIT: Duration = Duration::from_secs(15 * 60);

/// Upgrades a contract 1 table to this contract, online, without losing an
/// execution; safe to run again, and beside running functions of either
/// contract:
///
/// 1. adds the index `by-status-shard` unless it exists (a deployed stack
///    adds it itself: infra/README.md, "Upgrading") and waits until it is
///    active;
/// 2. records `shards` in the contract item;
/// 3. gives every execution's meta its `status_shard` (conditional on its
///    status being the one read) and moves a wake key of contract 1 (`w`)
///    to its shard (conditional on it still being `w`).
///
/// It leaves the index `by-status`, which nothing reads any more, to be
/// deleted by the stack (or by hand): deleting it here would make a
/// stack's own deletion fail.
pub async fn upgrade_table(client: &Client, table: &str, shards: u32) -> Result<u64, StoreError> {
    use crate::codec::{get_s, n, s};
    use aws_sdk_dynamodb::types::{
        CreateGlobalSecondaryIndexAction, GlobalSecondaryIndexUpdate, IndexStatus,
    };
    if !has_index(client, table, STATUS_INDEX).await? {
        let index = status_index();
        client
            .update_table()
            .table_name(table)
            .attribute_definitions(attr("status_shard", ScalarAttributeType::S))
            .attribute_definitions(attr("updated_at", ScalarAttributeType::N))
            .global_secondary_index_updates(
                GlobalSecondaryIndexUpdate::builder()
                    .create(
                        CreateGlobalSecondaryIndexAction::builder()
                            .index_name(STATUS_INDEX)
                            .set_key_schema(Some(index.key_schema().to_vec()))
                            .set_projection(index.projection().cloned())
                            .build()
                            .expect("index has name, keys and projection"),
                    )
                    .build(),
            )
            .send()
            .await
            .map_err(|e| sdk_error(table, e))?;
        tracing::info!(
            table,
            index = STATUS_INDEX,
            "adding the sharded status index"
        );
    }
    // Index creation backfills for minutes on a large table (hours on a
    // very large one): wait a bounded time, then say how to finish.
    let waiting_since = std::time::Instant::now();
    let mut told = waiting_since;
    loop {
        let out = client
            .describe_table()
            .table_name(table)
            .send()
            .await
            .map_err(|e| sdk_error(table, e))?;
        let active = out.table.is_some_and(|t| {
            t.global_secondary_indexes().iter().any(|g| {
                g.index_name() == Some(STATUS_INDEX)
                    && g.index_status() == Some(&IndexStatus::Active)
            })
        });
        if active {
            break;
        }
        if waiting_since.elapsed() > UPGRADE_WAIT {
            return Err(StoreError::Unavailable(format!(
                "table {table}: the index {STATUS_INDEX} is still being built after {} s; \
                 nothing is lost and the old index still serves; run `cairn table create` \
                 again later to finish the upgrade once it is ACTIVE",
                waiting_since.elapsed().as_secs()
            )));
        }
        if told.elapsed() > Duration::from_secs(30) {
            told = std::time::Instant::now();
            tracing::info!(
                table,
                index = STATUS_INDEX,
                waited_s = waiting_since.elapsed().as_secs(),
                "the new index is still being built"
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    client
        .update_item()
        .table_name(table)
        .key("pk", s(crate::shards::CONTRACT_PK))
        .key("sk", s("meta"))
        .update_expression("SET index_shards = :n, contract = :v")
        .condition_expression("attribute_not_exists(index_shards) OR index_shards < :n")
        .expression_attribute_values(":n", n(u64::from(shards)))
        .expression_attribute_values(":v", n(crate::CONTRACT_VERSION))
        .send()
        .await
        .map(|_| ())
        .or_else(|e| {
            if e.as_service_error()
                .is_some_and(|s| s.is_conditional_check_failed_exception())
            {
                Ok(())
            } else {
                Err(sdk_error(table, e))
            }
        })?;
    let mut moved = 0u64;
    let mut start = None;
    loop {
        let page = client
            .scan()
            .table_name(table)
            .filter_expression("begins_with(pk, :e) AND sk = :meta")
            .projection_expression("pk, #st, wake_bucket, status_shard")
            .expression_attribute_names("#st", "status")
            .expression_attribute_values(":e", s("exec#"))
            .expression_attribute_values(":meta", s("meta"))
            .consistent_read(true)
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(|e| sdk_error(table, e))?;
        for item in page.items.unwrap_or_default() {
            let pk = get_s(&item, "pk").unwrap_or_default();
            let Some(id) = pk
                .strip_prefix("exec#")
                .and_then(|i| cairn_core::ExecutionId::new(i).ok())
            else {
                continue;
            };
            let shard = crate::shards::shard_of(&id, shards);
            let status =
                get_s(&item, "status").and_then(|st| cairn_core::store::Status::parse(&st));
            if let (Some(status), None) = (status, get_s(&item, "status_shard")) {
                let r = client
                    .update_item()
                    .table_name(table)
                    .key("pk", s(&pk))
                    .key("sk", s("meta"))
                    .update_expression("SET status_shard = :ss")
                    .condition_expression("#st = :st")
                    .expression_attribute_names("#st", "status")
                    .expression_attribute_values(":st", s(status.as_str()))
                    .expression_attribute_values(":ss", s(crate::shards::status_key(status, shard)))
                    .send()
                    .await;
                ignore_refused(table, r)?;
                moved += 1;
            }
            if get_s(&item, "wake_bucket").as_deref() == Some(crate::shards::LEGACY_WAKE_BUCKET) {
                let r = client
                    .update_item()
                    .table_name(table)
                    .key("pk", s(&pk))
                    .key("sk", s("meta"))
                    .update_expression("SET wake_bucket = :b")
                    .condition_expression("wake_bucket = :legacy")
                    .expression_attribute_values(":legacy", s(crate::shards::LEGACY_WAKE_BUCKET))
                    .expression_attribute_values(":b", s(crate::shards::wake_key(shard)))
                    .send()
                    .await;
                ignore_refused(table, r)?;
            }
        }
        start = page.last_evaluated_key;
        if start.is_none() {
            break;
        }
    }
    tracing::info!(
        table,
        executions = moved,
        "upgraded to contract {}",
        crate::CONTRACT_VERSION
    );
    Ok(moved)
}

/// A refused condition means a newer write got there first: nothing to do.
fn ignore_refused<O, R: std::fmt::Debug>(
    table: &str,
    r: Result<
        O,
        aws_sdk_dynamodb::error::SdkError<
            aws_sdk_dynamodb::operation::update_item::UpdateItemError,
            R,
        >,
    >,
) -> Result<(), StoreError> {
    match r {
        Ok(_) => Ok(()),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
        {
            Ok(())
        }
        Err(e) => Err(sdk_error(table, e)),
    }
}
