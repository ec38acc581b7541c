//! The commands that run in this process (`--function` sends them to a
//! deployed function instead: see `remote`), by what they work on, and
//! the argument parsing they share.

pub mod components;
pub mod drive;
pub mod read;
pub mod serve;

use anyhow::{Context, Result, anyhow};
use cairn_core::{ExecutionId, Payload};
use cairn_host::ComponentBytes;
use std::path::Path;

pub fn parse_json_arg(what: &str, raw: &str) -> Result<Payload> {
    let text = match raw.strip_prefix('@') {
        Some(path) => std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {what} from {path}"))?,
        None => raw.to_string(),
    };
    serde_json::from_str::<serde_json::Value>(&text).map_err(|e| {
        anyhow!(
            "{} {what} is not valid JSON ({e}); example: --input '{{\"name\": \"alice\"}}'",
            cairn_core::ErrorCode::BadInput
        )
    })?;
    Ok(Payload::from(text.trim()))
}

pub fn parse_id(raw: &str) -> Result<ExecutionId> {
    ExecutionId::new(raw).map_err(|e| anyhow!("{} {e}", cairn_core::ErrorCode::BadInput))
}

pub fn read_component(path: &Path) -> Result<ComponentBytes> {
    let bytes = std::fs::read(path)
        .with_context(|| format!("cannot read the component {}", path.display()))?;
    Ok(ComponentBytes::new(bytes))
}
