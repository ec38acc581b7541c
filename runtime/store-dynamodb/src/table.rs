//! The table: create it (local use) and check it (at connect).

use crate::codec::sdk_error;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, StreamSpecification, StreamViewType, TableStatus,
    TimeToLiveSpecification,
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

fn gsi(name: &str, hash: &str, range: &str, projection: ProjectionType) -> GlobalSecondaryIndex {
    GlobalSecondaryIndex::builder()
        .index_name(name)
        .key_schema(key(hash, KeyType::Hash))
        .key_schema(key(range, KeyType::Range))
        .projection(Projection::builder().projection_type(projection).build())
        .build()
        .expect("index has name, keys and projection")
}

/// Creates a Cairn table (the same schema as `infra/`), waits until it is
/// active and turns on TTL. An existing Cairn table is left as it is.
pub async fn create_table(client: &Client, table: &str) -> Result<bool, StoreError> {
    if describe_table(client, table).await? == TableCheck::Ok {
        return Ok(false);
    }
    client
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(key("pk", KeyType::Hash))
        .key_schema(key("sk", KeyType::Range))
        .attribute_definitions(attr("pk", ScalarAttributeType::S))
        .attribute_definitions(attr("sk", ScalarAttributeType::S))
        .attribute_definitions(attr("status", ScalarAttributeType::S))
        .attribute_definitions(attr("updated_at", ScalarAttributeType::N))
        .attribute_definitions(attr("wake_bucket", ScalarAttributeType::S))
        .attribute_definitions(attr("wake_at", ScalarAttributeType::N))
        .global_secondary_indexes(gsi(
            "by-status",
            "status",
            "updated_at",
            ProjectionType::All,
        ))
        .global_secondary_indexes(gsi(
            "by-wake",
            "wake_bucket",
            "wake_at",
            ProjectionType::KeysOnly,
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
    for _ in 0..120 {
        let out = client
            .describe_table()
            .table_name(table)
            .send()
            .await
            .map_err(|e| sdk_error(table, e))?;
        if out.table.and_then(|t| t.table_status) == Some(TableStatus::Active) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    client
        .update_time_to_live()
        .table_name(table)
        .time_to_live_specification(
            TimeToLiveSpecification::builder()
                .enabled(true)
                .attribute_name("expires_at")
                .build()
                .expect("ttl spec"),
        )
        .send()
        .await
        .map_err(|e| sdk_error(table, e))?;
    Ok(true)
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
    for needed in ["by-status", "by-wake"] {
        if !indexes.contains(&needed) {
            return Ok(TableCheck::Wrong(format!(
                "it has no global secondary index {needed}"
            )));
        }
    }
    Ok(TableCheck::Ok)
}
