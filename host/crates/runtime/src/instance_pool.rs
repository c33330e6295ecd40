//! How each component's instances are created, reused and expired, for wasmtime's
//! `ProxyHandler`. One handler per component, so no instance ever serves two components.
//! WASIp2 instances serve one request each; WASIp3 instances may serve several, as
//! `wasmtime serve` does, since the async component model isolates their tasks.

use crate::engine::ticks;
use crate::guest_failure::failure_reason;
use crate::instance_state::{ComponentGrants, InstanceExtension, InstanceState};
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use wasmtime::component::GuestTaskId;
use wasmtime::{Engine, Store, StoreContextMut};
use wasmtime_wasi_http::WasiHttpView;
use wasmtime_wasi_http::handler::{
    HandlerState, Instance, ProxyPre, ShouldAccept, WorkerExpiration, WorkerState, WorkerStatus,
};

/// How long an idle WASIp3 instance is kept for another request.
const IDLE_INSTANCE_TIMEOUT: Duration = Duration::from_secs(1);
const P3_MAX_REQUESTS_PER_INSTANCE: usize = 128;
const P3_MAX_CONCURRENT_REQUESTS_PER_INSTANCE: usize = 16;

pub struct ComponentHandler<X: InstanceExtension> {
    pub engine: Engine,
    pub pre: ProxyPre<InstanceState<X>>,
    pub grants: ComponentGrants<X>,
    pub deadline: Duration,
    pub last_failure: LastFailure,
}

/// Why the component's most recent instance died, so a request that only learns "the
/// worker is gone" can still be told the reason (a deadline, a trap, memory exhausted).
#[derive(Clone, Default)]
pub struct LastFailure(Arc<Mutex<Option<(Instant, String)>>>);

impl LastFailure {
    fn record(&self, reason: String) {
        *self.0.lock().expect("last failure lock") = Some((Instant::now(), reason));
    }

    /// The reason recorded within the last second, if any.
    pub fn recent(&self) -> Option<String> {
        let slot = self.0.lock().expect("last failure lock");
        slot.as_ref()
            .filter(|(at, _)| at.elapsed() < Duration::from_secs(1))
            .map(|(_, reason)| reason.clone())
    }
}

impl<X: InstanceExtension> ComponentHandler<X> {
    pub fn is_p3(&self) -> bool {
        matches!(self.pre, ProxyPre::P3(_))
    }
}

impl<X: InstanceExtension> HandlerState for ComponentHandler<X> {
    type StoreData = InstanceState<X>;
    type WorkerExpiration = Expiration;
    type WorkerState = Worker<X>;

    async fn instantiate(
        &self,
    ) -> wasmtime::Result<Instance<InstanceState<X>, Expiration, Worker<X>>> {
        let state = InstanceState::new(&self.grants)?;
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limits);
        store.set_epoch_deadline(ticks(self.deadline));
        store.epoch_deadline_trap();
        let proxy = self.pre.instantiate_async(&mut store).await?;
        Ok(Instance {
            store,
            proxy,
            view: |s: &mut InstanceState<X>| s.http(),
            expiration: Expiration {
                timer: Box::pin(tokio::time::sleep(self.deadline)),
                deadline: self.deadline,
            },
            state: Worker {
                single_use: !self.is_p3() || self.grants.one_request_per_instance,
                component: self.grants.id.clone(),
                last_failure: self.last_failure.clone(),
                deadline: self.deadline,
                extension: PhantomData,
            },
        })
    }
}

pub struct Worker<X> {
    /// WASIp2 instances, and instances whose state holds something of their caller (the
    /// client's identity), serve exactly one request.
    single_use: bool,
    component: String,
    last_failure: LastFailure,
    deadline: Duration,
    extension: PhantomData<fn() -> X>,
}

impl<X: InstanceExtension> WorkerState for Worker<X> {
    type StoreData = InstanceState<X>;
    type RequestData = X::Caller;

    fn should_accept_request(&self, concurrent: usize, total: usize) -> ShouldAccept {
        if self.single_use {
            return if total == 0 {
                ShouldAccept::Yes
            } else {
                ShouldAccept::Never
            };
        }
        if total >= P3_MAX_REQUESTS_PER_INSTANCE {
            ShouldAccept::Never
        } else if concurrent >= P3_MAX_CONCURRENT_REQUESTS_PER_INSTANCE {
            ShouldAccept::No
        } else {
            ShouldAccept::Yes
        }
    }

    fn on_request_start(
        &self,
        mut store: StoreContextMut<'_, InstanceState<X>>,
        caller: X::Caller,
        _task: GuestTaskId,
    ) -> Pin<Box<dyn Future<Output = ()> + Send + Sync>> {
        // A guest stuck in a loop is stopped by the epoch deadline even while it holds
        // the store; the timer below covers guests waiting on I/O.
        store.set_epoch_deadline(ticks(self.deadline));
        store.data_mut().extension.set_caller(caller);
        Box::pin(tokio::time::sleep(self.deadline))
    }

    fn drop(&self, _store: Store<InstanceState<X>>, result: wasmtime::Result<()>) {
        if let Err(e) = result {
            // wasmtime-wasi-http says "worker panicked" whenever a worker's future is dropped
            // unfinished. Outside an unwinding panic that is the runtime ending an idle
            // instance at shutdown, not a failure of the guest.
            if !std::thread::panicking() && e.to_string() == "worker panicked" {
                tracing::debug!(component = %self.component, "instance dropped at shutdown");
                return;
            }
            let reason = failure_reason(&e, self.deadline);
            tracing::warn!(component = %self.component, %reason, "instance ended with an error");
            self.last_failure.record(reason);
        }
    }
}

/// Expires an instance whose request ran past the deadline, or that sat idle too long.
pub struct Expiration {
    timer: Pin<Box<tokio::time::Sleep>>,
    deadline: Duration,
}

impl WorkerExpiration for Expiration {
    fn poll(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        status: WorkerStatus,
        start: Instant,
    ) -> Poll<()> {
        let this = self.get_mut();
        let limit = match status {
            WorkerStatus::Idle => IDLE_INSTANCE_TIMEOUT,
            WorkerStatus::Requests | WorkerStatus::PostReturn => this.deadline,
        };
        let at = tokio::time::Instant::from_std(start + limit);
        if tokio::time::Instant::now() >= at {
            return Poll::Ready(());
        }
        if this.timer.deadline() != at {
            this.timer.as_mut().reset(at);
        }
        this.timer.as_mut().poll(cx)
    }
}
