//! Which stored components are still needed (`cairn components`), and the
//! collection of the others (`cairn components gc`).
//!
//! A component is needed while a workflow points at it (new executions
//! start on it) or an unfinished execution (running, waiting or parked) is
//! pinned to it (its driver replays it). A finished execution needs none:
//! `status` and `history` read its journal only, the driver returns its
//! final entry without instantiating anything, a query answers `CRN403`
//! first, and `cairn replay-check` replays it against the candidate
//! component, not the pinned one. Only [`crate::Engine::replay`] without a
//! component (replay against the pinned one) would miss it.

use crate::{Engine, EngineError};
use cairn_core::{ComponentHash, ListFilter, Status};
use std::collections::BTreeMap;

/// The statuses whose executions pin their component.
const UNFINISHED: [Status; 3] = [Status::Running, Status::Waiting, Status::Parked];

/// What the collection does with a component.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GcAction {
    /// Needed: a workflow points at it or an execution is pinned to it.
    Keep,
    /// Nothing needs it: a collection with `apply` deletes it.
    Remove,
    /// Deleted by this collection.
    Removed,
}

impl GcAction {
    /// `keep`, `remove` or `removed`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Keep => "keep",
            Self::Remove => "remove",
            Self::Removed => "removed",
        }
    }
}

/// One stored component and what needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComponentUse {
    /// Its hash.
    pub hash: ComponentHash,
    /// Its size in bytes.
    pub size: u64,
    /// The workflows that point at it (new executions start on it).
    pub workflows: Vec<String>,
    /// Unfinished executions (running, waiting, parked) pinned to it.
    pub pinned: usize,
    /// What the collection does (or did) with it.
    pub action: GcAction,
}

impl ComponentUse {
    /// Why it is kept or removed, in words.
    pub fn reason(&self) -> String {
        let mut why = Vec::new();
        if self.pinned > 0 {
            why.push(format!(
                "pinned by {} unfinished execution{}",
                self.pinned,
                if self.pinned == 1 { "" } else { "s" }
            ));
        }
        match self.workflows.as_slice() {
            [] => {}
            [one] => why.push(format!("workflow {one} points at it")),
            many => why.push(format!("{} workflows point at it", many.len())),
        }
        if why.is_empty() {
            "no workflow points at it, no unfinished execution is pinned to it".into()
        } else {
            why.join("; ")
        }
    }
}

/// A component that a workflow points at or an unfinished execution is
/// pinned to, but that the store does not hold: such an execution cannot
/// advance from the store alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingComponent {
    /// Its hash.
    pub hash: ComponentHash,
    /// The workflows that point at it.
    pub workflows: Vec<String>,
    /// Unfinished executions pinned to it.
    pub pinned: usize,
}

/// What [`Engine::components_gc`] found and did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GcReport {
    /// Every stored component, in hash order.
    pub components: Vec<ComponentUse>,
    /// Components needed but not stored.
    pub missing: Vec<MissingComponent>,
    /// Whether removable components were deleted (else a dry run).
    pub applied: bool,
}

impl GcReport {
    /// Components with this action, and their total size in bytes.
    pub fn count(&self, action: GcAction) -> (usize, u64) {
        self.components
            .iter()
            .filter(|c| c.action == action)
            .fold((0, 0), |(n, b), c| (n + 1, b + c.size))
    }
}

/// Workflow pointers and unfinished pins, by component.
struct Uses {
    workflows: BTreeMap<ComponentHash, Vec<String>>,
    pinned: BTreeMap<ComponentHash, usize>,
}

async fn find_uses(engine: &Engine) -> Result<Uses, EngineError> {
    let store = engine.store();
    let mut workflows: BTreeMap<ComponentHash, Vec<String>> = BTreeMap::new();
    for (name, hash) in store.list_workflows().await? {
        workflows.entry(hash).or_default().push(name);
    }
    let mut pinned: BTreeMap<ComponentHash, usize> = BTreeMap::new();
    let unfinished = store
        .list(ListFilter {
            status: UNFINISHED.to_vec(),
            workflow: None,
            limit: 0,
        })
        .await?;
    for meta in unfinished {
        *pinned.entry(meta.component).or_default() += 1;
    }
    Ok(Uses { workflows, pinned })
}

pub(crate) async fn gc(engine: &Engine, apply: bool) -> Result<GcReport, EngineError> {
    let store = engine.store();
    let stored = store.list_components().await?;
    let mut uses = find_uses(engine).await?;
    let mut components = Vec::with_capacity(stored.len());
    for (hash, size) in &stored {
        let workflows = uses.workflows.remove(hash).unwrap_or_default();
        let pinned = uses.pinned.remove(hash).unwrap_or(0);
        let action = if workflows.is_empty() && pinned == 0 {
            GcAction::Remove
        } else {
            GcAction::Keep
        };
        components.push(ComponentUse {
            hash: hash.clone(),
            size: *size,
            workflows,
            pinned,
            action,
        });
    }
    let mut missing: BTreeMap<ComponentHash, MissingComponent> = BTreeMap::new();
    for (hash, workflows) in uses.workflows {
        missing.insert(
            hash.clone(),
            MissingComponent {
                hash,
                workflows,
                pinned: 0,
            },
        );
    }
    for (hash, pinned) in uses.pinned {
        missing
            .entry(hash.clone())
            .or_insert_with(|| MissingComponent {
                hash,
                workflows: Vec::new(),
                pinned: 0,
            })
            .pinned = pinned;
    }
    if apply && components.iter().any(|c| c.action == GcAction::Remove) {
        // Look again right before deleting: an execution started (or a
        // workflow pointed) on one since the listing keeps it. One look
        // for all of them: each reads every unfinished execution.
        let mut now = find_uses(engine).await?;
        for c in components
            .iter_mut()
            .filter(|c| c.action == GcAction::Remove)
        {
            c.workflows = now.workflows.remove(&c.hash).unwrap_or_default();
            c.pinned = now.pinned.remove(&c.hash).unwrap_or(0);
            if !c.workflows.is_empty() || c.pinned > 0 {
                tracing::info!(component = %c.hash, "kept: it came into use during the collection");
                c.action = GcAction::Keep;
                continue;
            }
            store.delete_component(&c.hash).await?;
            tracing::info!(component = %c.hash, bytes = c.size, "component deleted");
            c.action = GcAction::Removed;
        }
    }
    Ok(GcReport {
        components,
        missing: missing.into_values().collect(),
        applied: apply,
    })
}
