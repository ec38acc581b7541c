//! The lease a driver holds on an execution while it advances it (the push
//! host's guarantee that a healthy advance, however long, has no second
//! driver beside it, and that a dead one is found by the sweep).
//!
//! Acquired with one conditional write after the load; renewed in the
//! background every third of its length; released by the suspend, the
//! final append or the park that ends the advance (the same write), or
//! explicitly after a yield, a conflict or an error. The driver stops
//! starting effects, and aborts the ones in flight, once its lease is lost
//! or would expire before a renewal lands: so two drivers never run an
//! execution's activities at the same time, whatever the network does.

use crate::Engine;
use cairn_core::{ExecutionId, StoreError, Timestamp};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::watch;

/// How long before the lease's expiry the holder stops by itself: covers
/// clock skew between hosts and the renewal's own round trip.
fn safety_margin(length: Duration) -> Duration {
    (length / 5).min(Duration::from_secs(5))
}

/// A held lease and its renewal task.
pub(crate) struct HeldLease {
    pub(crate) owner: String,
    state: Arc<State>,
    renewal: tokio::task::JoinHandle<()>,
}

struct State {
    /// Local time (ms) until which this driver may act.
    valid_until: AtomicU64,
    /// Set once the lease is known to be lost.
    lost: watch::Sender<Option<String>>,
}

/// A handle the driver checks before each effect.
#[derive(Clone)]
pub(crate) struct LeaseCheck {
    state: Arc<State>,
}

/// What [`HeldLease::acquire`] found.
pub(crate) enum Acquired {
    /// Ours until released.
    Held(HeldLease),
    /// Another driver holds it.
    Busy(String),
}

/// A new lease owner: this process and a ULID.
pub(crate) fn new_owner() -> String {
    format!("{}:{}", std::process::id(), ulid::Ulid::new())
}

/// Leases [`Engine::start`] took in the create, by execution, until the
/// advance that follows adopts them. One not adopted (a start with no
/// advance after it) expires by itself: the sweep then drives the
/// execution.
#[derive(Clone, Default)]
pub(crate) struct StartedLeases(Arc<std::sync::Mutex<HashMap<ExecutionId, cairn_core::Lease>>>);

impl StartedLeases {
    pub(crate) fn put(&self, id: &ExecutionId, lease: cairn_core::Lease) {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= 10_000 {
            map.clear();
        }
        map.insert(id.clone(), lease);
    }

    fn take(&self, id: &ExecutionId) -> Option<cairn_core::Lease> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).remove(id)
    }
}

impl HeldLease {
    /// Takes the lease of `id` for `length`, or says who holds it. A lease
    /// the start took in the create is adopted instead (no write), while
    /// it is valid.
    pub(crate) async fn acquire(
        engine: &Engine,
        id: &ExecutionId,
        length: Duration,
    ) -> Result<Acquired, StoreError> {
        let now = engine.inner.clock.now();
        let margin = safety_margin(length);
        let (owner, until) = match engine.inner.started_leases.take(id) {
            Some(l) if l.until.as_millis() > now.as_millis() + margin.as_millis() as u64 => {
                (l.owner, l.until)
            }
            _ => {
                let owner = new_owner();
                match engine
                    .inner
                    .store
                    .acquire_lease(id, &owner, now.plus(length), now)
                    .await
                {
                    Ok(()) => {}
                    Err(StoreError::Leased { owner, until, .. }) => {
                        return Ok(Acquired::Busy(format!(
                            "driven by {owner} until its lease expires at {until}"
                        )));
                    }
                    Err(e) => return Err(e),
                }
                (owner, now.plus(length))
            }
        };
        let (lost, _) = watch::channel(None);
        let state = Arc::new(State {
            valid_until: AtomicU64::new(until.as_millis() - margin.as_millis() as u64),
            lost,
        });
        let renewal = tokio::spawn(renew(
            engine.clone(),
            id.clone(),
            owner.clone(),
            length,
            state.clone(),
        ));
        tracing::debug!(execution = %id, %owner, ?length, "lease acquired");
        Ok(Acquired::Held(Self {
            owner,
            state,
            renewal,
        }))
    }

    /// What the driver checks.
    pub(crate) fn check(&self) -> LeaseCheck {
        LeaseCheck {
            state: self.state.clone(),
        }
    }

    /// Stops renewing; with `release`, also gives the lease up (with
    /// `wake_at` as the execution's next wake, if any).
    pub(crate) async fn end(
        self,
        engine: &Engine,
        id: &ExecutionId,
        release: bool,
        wake_at: Option<Timestamp>,
    ) {
        self.renewal.abort();
        if release
            && let Err(e) = engine
                .inner
                .store
                .release_lease(id, &self.owner, wake_at)
                .await
        {
            // It expires by itself; the sweep then looks at the execution.
            tracing::warn!(execution = %id, "cannot release the lease: {e}");
        }
    }
}

impl Drop for HeldLease {
    fn drop(&mut self) {
        self.renewal.abort();
    }
}

async fn renew(
    engine: Engine,
    id: ExecutionId,
    owner: String,
    length: Duration,
    state: Arc<State>,
) {
    let margin = safety_margin(length);
    let every = length / 3;
    loop {
        tokio::time::sleep(every).await;
        let sent = engine.inner.clock.now();
        match engine
            .inner
            .store
            .renew_lease(&id, &owner, sent.plus(length))
            .await
        {
            Ok(()) => {
                let valid = sent.plus(length).as_millis() - margin.as_millis() as u64;
                state.valid_until.fetch_max(valid, Ordering::SeqCst);
            }
            Err(e) if e.is_transient() => {
                // Try again at the next tick; if none lands before the
                // lease's safety margin, the driver stops by itself.
                tracing::warn!(execution = %id, "cannot renew the lease, retrying: {e}");
            }
            Err(e) => {
                tracing::warn!(execution = %id, "lease lost: {e}");
                state.lost.send_replace(Some(e.to_string()));
                return;
            }
        }
    }
}

impl LeaseCheck {
    /// `Some(reason)` once this driver may no longer act.
    pub(crate) fn invalid(&self, now: Timestamp) -> Option<String> {
        if let Some(reason) = self.state.lost.borrow().clone() {
            return Some(reason);
        }
        let until = self.state.valid_until.load(Ordering::SeqCst);
        (now.as_millis() >= until).then(|| {
            format!(
                "the lease could not be renewed before {}",
                Timestamp::from_millis(until)
            )
        })
    }

    /// Resolves once this driver may no longer act (lost, or expiring
    /// without a renewal).
    pub(crate) async fn expired(&self, engine: &Engine) -> String {
        let mut lost = self.state.lost.subscribe();
        loop {
            if let Some(r) = self.invalid(engine.inner.clock.now()) {
                return r;
            }
            let until = Timestamp::from_millis(self.state.valid_until.load(Ordering::SeqCst));
            tokio::select! {
                _ = lost.changed() => {}
                _ = engine.inner.clock.sleep_until(until) => {}
            }
        }
    }
}
