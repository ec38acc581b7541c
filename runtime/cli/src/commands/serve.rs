//! `cairn table` (the DynamoDB table) and `cairn dev` (the local server).

use crate::args::{ActivityArgs, Global, StoreKind, TableAction};
use crate::context::{StoreUse, build_for};
use crate::exit;
use anyhow::Result;

/// `cairn table create|check`: the DynamoDB table (and payload bucket).
pub async fn table(g: &Global, action: TableAction) -> Result<u8> {
    let store = cairn_store_dynamodb::DynamoStore::connect_unchecked(&g.table).await;
    match action {
        TableAction::Create => {
            if cairn_store_dynamodb::create_table(store.client(), store.table()).await? {
                println!("created table {}", store.table());
            } else {
                println!("table {} already exists with Cairn's schema", store.table());
            }
            if let Some(bucket) = g.payload_bucket.as_deref().filter(|b| !b.trim().is_empty()) {
                let store = store.with_payload_bucket(bucket.trim());
                if store.create_payload_bucket().await? {
                    println!("created payload bucket {}", bucket.trim());
                } else {
                    println!("payload bucket {} already exists", bucket.trim());
                }
            }
        }
        TableAction::Check => {
            store.check().await?;
            println!("table {} is a Cairn table", store.table());
        }
    }
    Ok(exit::OK)
}

/// `cairn dev`: the client API, web console and metrics over this store.
pub async fn dev(
    g: &Global,
    port: u16,
    bind: std::net::IpAddr,
    read_only: bool,
    otlp_endpoint: Option<String>,
    activities: ActivityArgs,
) -> Result<u8> {
    if let Some(e) = &otlp_endpoint {
        // A bad URL is refused before anything starts.
        cairn_dev::otel::traces_url(e)?;
    }
    let ctx = build_for(g, false, &activities, StoreUse::Server).await?;
    let config = cairn_dev::DevConfig {
        addr: std::net::SocketAddr::new(bind, port),
        read_only,
        store_label: match g.store {
            StoreKind::Dynamodb => format!("dynamodb table {}", g.table),
            StoreKind::Sqlite => format!("sqlite {}", g.db.display()),
        },
        otlp_endpoint,
        ..Default::default()
    };
    let engine = &ctx.engine;
    cairn_dev::serve(
        engine.sandbox().clone(),
        engine.store().clone(),
        config,
        |addr| {
            eprintln!("cairn dev: console and API on http://{addr}/ (API: POST /api; Ctrl-C stops)")
        },
        shutdown_signal(),
    )
    .await?;
    Ok(exit::OK)
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(t) => t,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
