//! Loading a component: the in-memory cache by hash, the precompiled `.cwasm`
//! files on disk (read first, written after compiling), then the world checks
//! and the linking of both modes.

use super::world::{check_header, check_world, deny_nondeterministic_imports};
use super::{ComponentBytes, GuestState, LoadedComponent, Sandbox};
use crate::bindings::ComponentPre;
use crate::error::HostError;
use cairn_core::ComponentHash;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use wasmtime::component::{Component, Linker};

impl Sandbox {
    /// A loaded component, if this sandbox has it.
    pub fn loaded(&self, hash: &ComponentHash) -> Option<Arc<LoadedComponent>> {
        self.components
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(hash)
            .cloned()
    }

    /// Compiles (or loads precompiled) and checks a component; cached by hash.
    pub async fn load(
        &self,
        component: &ComponentBytes,
    ) -> Result<Arc<LoadedComponent>, HostError> {
        if let Some(c) = self.loaded(&component.hash) {
            return Ok(c);
        }
        let started = Instant::now();
        check_header(&component.bytes)?;
        let (compiled, from_cache) = self.compile(component)?;
        check_world(&self.engine, &compiled)?;

        let mut workflow_linker = self.workflow_linker.clone();
        deny_nondeterministic_imports(&self.engine, &mut workflow_linker, &compiled)
            .map_err(|e| HostError::WrongWorld(format!("{e:#}")))?;
        let link = |linker: &Linker<GuestState>| {
            linker
                .instantiate_pre(&compiled)
                .and_then(ComponentPre::new)
                .map_err(|e| {
                    HostError::WrongWorld(format!(
                        "the component cannot be linked against the Cairn host: {e:#}"
                    ))
                })
        };
        let workflow_pre = link(&workflow_linker)?;
        let activity_pre = link(&self.activity_linker)?;

        // Ask the component what it holds (activity mode: it may touch WASI).
        let mut store = self.activity_store(None)?;
        let guest = activity_pre
            .instantiate_async(&mut store)
            .await
            .map_err(|e| self.guest_error(e, &store))?;
        let info = guest
            .cairn_workflow_guest()
            .call_describe(&mut store)
            .await
            .map_err(|e| self.guest_error(e, &store))?;

        let loaded = Arc::new(LoadedComponent {
            hash: component.hash.clone(),
            info,
            size: component.bytes.len(),
            load_time: started.elapsed(),
            from_cache,
            workflow_pre,
            activity_pre,
            idle_activities: Mutex::new(Vec::new()),
        });
        tracing::debug!(hash = %loaded.hash, ms = loaded.load_time.as_secs_f64() * 1e3, from_cache, "component loaded");
        self.components
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(component.hash.clone(), loaded.clone());
        Ok(loaded)
    }

    fn compile(&self, component: &ComponentBytes) -> Result<(Component, bool), HostError> {
        let not_component = |e: wasmtime::Error| {
            HostError::NotAComponent(format!(
                "the file is not a valid WebAssembly component: {e:#}"
            ))
        };
        let file = crate::precompile::file_name(&component.hash, &self.engine_tag);
        let candidates = self
            .config
            .precompiled_dirs
            .iter()
            .chain(self.config.cache_dir.as_ref());
        for path in candidates.map(|d| d.join(&file)).filter(|p| p.is_file()) {
            // SAFETY: `deserialize_file` trusts the file to be wasmtime's own
            // output. Precompiled files are written only by
            // `precompile_component` below or by `Precompiler` (`cairn
            // precompile`, the packaging step), with this configuration (the
            // file name carries the engine tag), renamed into place
            // atomically, in directories the operator controls. Wasmtime
            // checks the rest before using it: the ELF header, its version,
            // the target, flags against this CPU, tunables and features; a
            // refusal only costs a compilation.
            #[allow(unsafe_code)]
            let loaded = unsafe { Component::deserialize_file(&self.engine, &path) };
            match loaded {
                Ok(c) => return Ok((c, true)),
                Err(e) => tracing::warn!(
                    "ignoring precompiled component {}, compiling it instead: {e:#}",
                    path.display()
                ),
            }
        }
        let Some(dir) = &self.config.cache_dir else {
            return Ok((
                Component::new(&self.engine, &component.bytes).map_err(not_component)?,
                false,
            ));
        };
        let path = dir.join(&file);
        let bytes = self
            .engine
            .precompile_component(&component.bytes)
            .map_err(not_component)?;
        let write = || -> std::io::Result<()> {
            std::fs::create_dir_all(dir)?;
            let tmp = path.with_extension(format!("tmp{}", std::process::id()));
            std::fs::write(&tmp, &bytes)?;
            std::fs::rename(&tmp, &path)
        };
        if let Err(e) = write() {
            tracing::warn!(dir = %dir.display(), "cannot cache the precompiled component: {e}");
        }
        // SAFETY: `bytes` was produced just above by `precompile_component`
        // on this very engine.
        #[allow(unsafe_code)]
        let c = unsafe { Component::deserialize(&self.engine, &bytes) }.map_err(not_component)?;
        Ok((c, false))
    }
}
