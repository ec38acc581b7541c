//! The commands on components: `inspect`, `precompile`, `register`,
//! `replay-check` and `components list|gc`.

use super::read_component;
use crate::args::{ActivityArgs, ComponentsAction, Global};
use crate::context::build;
use crate::{exit, render};
use anyhow::{Context, Result, anyhow, bail};
use cairn_core::ListFilter;
use cairn_host::{Sandbox, SandboxConfig};
use std::path::{Path, PathBuf};

/// `cairn replay-check`: replays stored journals against a new component.
pub async fn replay_check(
    g: &Global,
    component: PathBuf,
    workflow: Option<String>,
    sample: usize,
    json: bool,
) -> Result<u8> {
    let ctx = build(g, false, &ActivityArgs::default()).await?;
    let loaded = ctx
        .engine
        .add_component(read_component(&component)?)
        .await?;
    let workflows: Vec<String> = match workflow {
        Some(w) => {
            loaded.check_workflow(&w)?;
            vec![w]
        }
        None => loaded.info.workflows.clone(),
    };
    let mut results = Vec::new();
    for w in &workflows {
        let list = ctx
            .engine
            .list(ListFilter {
                status: vec![],
                workflow: Some(w.clone()),
                limit: sample,
            })
            .await?;
        for meta in list {
            let outcome = ctx.engine.replay(&meta.id, Some(&loaded.hash)).await?;
            results.push((meta, outcome));
        }
    }
    Ok(render::replay_check(
        &component,
        &loaded.hash,
        &results,
        json,
    ))
}

/// `cairn inspect`: what a component holds.
pub async fn inspect(g: &Global, component: PathBuf, json: bool) -> Result<u8> {
    let bytes = read_component(&component)?;
    // With --cache-dir, this also leaves `<hash>-<engine>.cwasm` there
    // (for this machine; `cairn precompile` for another).
    let sandbox = Sandbox::new(SandboxConfig {
        cache_dir: g.cache_dir.clone(),
        ..SandboxConfig::default()
    })?;
    let loaded = sandbox.load(&bytes).await?;
    render::inspect(&component, &loaded, json);
    Ok(exit::OK)
}

/// `cairn precompile`: writes and checks each component's `.cwasm`.
pub async fn precompile(
    target: Option<String>,
    out: &Path,
    components: &[PathBuf],
    json: bool,
) -> Result<u8> {
    let host = cairn_host::host_target();
    let target = target.unwrap_or_else(|| host.clone());
    let config = SandboxConfig::default();
    let pre = cairn_host::Precompiler::new(&config, &target)?;
    // For this machine's triple, the check is the runtime's own: a sandbox
    // that finds the file in its precompiled directory must load it.
    let sandbox = match target == host {
        true => Some(Sandbox::new(SandboxConfig {
            precompiled_dirs: vec![out.to_path_buf()],
            ..config.clone()
        })?),
        false => None,
    };
    for path in components {
        let component = read_component(path)?;
        let started = std::time::Instant::now();
        let file = pre.write(&component, out)?;
        let compile_ms = started.elapsed().as_secs_f64() * 1e3;
        let written =
            std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
        pre.check(&written)
            .map_err(|e| anyhow!("{} fails its check: {e}", file.display()))?;
        let check = match &sandbox {
            Some(s) => {
                let loaded = s.load(&component).await?;
                if !loaded.from_cache {
                    bail!(
                        "{} was not accepted by this machine's sandbox (see the warning above)",
                        file.display()
                    );
                }
                format!(
                    "loaded by this machine's sandbox in {:.1} ms",
                    loaded.load_time.as_secs_f64() * 1e3
                )
            }
            None => format!(
                "a wasmtime component for {target}, with the runtime's engine settings for it"
            ),
        };
        if json {
            println!(
                "{}",
                serde_json::json!({
                    "component": path.display().to_string(), "hash": component.hash,
                    "cwasm": file.display().to_string(), "target": target,
                    "engine_tag": pre.engine_tag(), "bytes": written.len(),
                    "compile_ms": compile_ms, "accepted": true, "check": check,
                })
            );
        } else {
            println!(
                "wrote {} ({target}, {} bytes, {compile_ms:.0} ms) from {}: {check}",
                file.display(),
                written.len(),
                path.display()
            );
        }
    }
    Ok(exit::OK)
}

/// `cairn register`: stores a component and points its workflows at it.
pub async fn register(g: &Global, component: PathBuf) -> Result<u8> {
    let ctx = build(g, false, &ActivityArgs::default()).await?;
    let loaded = ctx.engine.register(read_component(&component)?).await?;
    println!(
        "registered {} ({}) for workflows: {}",
        loaded.hash.short(),
        component.display(),
        loaded.info.workflows.join(", ")
    );
    Ok(exit::OK)
}

/// `cairn components list|gc`: the stored components.
pub async fn components(g: &Global, action: ComponentsAction) -> Result<u8> {
    let ctx = build(g, false, &ActivityArgs::default()).await?;
    match action {
        ComponentsAction::List { json } => {
            render::components(&ctx.engine.components_gc(false).await?, false, json);
        }
        ComponentsAction::Gc { apply, json } => {
            render::components(&ctx.engine.components_gc(apply).await?, true, json);
        }
    }
    Ok(exit::OK)
}
