//! The interface every verification backend serves.

use std::time::Duration;

use crate::{Request, Response};

/// A signature verifier: the CPU, a simulated card, or a card behind XDMA.
///
/// The interface is submit/complete so that one shape fits a synchronous CPU pool and a DMA
/// card with thousands of requests in flight:
///
/// * [`submit`](Verifier::submit) queues one request and never blocks. At most
///   [`capacity`](Verifier::capacity) requests may be in flight (submitted and not yet
///   returned by `complete`); submitting beyond that is refused with
///   [`VerifierError::Full`], which is the caller's back-pressure signal.
/// * A backend may hold submitted requests to fill a batch. [`flush`](Verifier::flush) tells it
///   to start on everything submitted so far; the caller owns the batching deadline.
/// * [`complete`](Verifier::complete) hands back finished responses **in submission order**,
///   one per request, each with its request's tag, waiting up to a bound for the first.
///
/// [`verify_all`] is the shortest correct driver of this loop.
pub trait Verifier: Send {
    /// The backend's name in logs and metrics (`cpu`, `sim`, `xdma`).
    fn backend(&self) -> &'static str;

    /// The most requests that may be in flight at once.
    fn capacity(&self) -> usize;

    /// How many requests a caller batching by size should hand over together: enough for
    /// every unit of the backend to start a batch at its best cost a request, and at most
    /// half of [`capacity`](Verifier::capacity), so that one such batch can be submitted while
    /// another is verified.
    fn batch(&self) -> usize;

    /// Requests submitted and not yet returned by [`complete`](Verifier::complete).
    fn in_flight(&self) -> usize;

    /// Queues one request. Refused with [`VerifierError::Full`] when `capacity` requests are
    /// already in flight.
    fn submit(&mut self, request: Request) -> Result<(), VerifierError>;

    /// Starts work on every request submitted so far, even if a batch is not full.
    fn flush(&mut self) -> Result<(), VerifierError>;

    /// Appends finished responses to `out` in submission order and returns how many. If none
    /// is ready, waits up to `wait` for one; returns 0 when the wait ends empty-handed.
    fn complete(&mut self, out: &mut Vec<Response>, wait: Duration)
        -> Result<usize, VerifierError>;

    /// Whether the backend serves as it should, for an operator's status page. A backend with
    /// nothing to report is [`BackendState::Ready`].
    fn backend_state(&mut self) -> BackendState {
        BackendState::Ready
    }
}

/// How a backend is doing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BackendState {
    /// Serving as it should.
    Ready,
    /// Serving, with something an operator should look at (a card that flagged errors, a
    /// card failed over to the CPU).
    Degraded {
        /// What.
        reason: String,
    },
    /// Not serving.
    Failed {
        /// Why.
        reason: String,
    },
}

impl BackendState {
    /// `ready`, `degraded` or `failed`.
    pub fn name(&self) -> &'static str {
        match self {
            BackendState::Ready => "ready",
            BackendState::Degraded { .. } => "degraded",
            BackendState::Failed { .. } => "failed",
        }
    }

    /// Why it is not ready.
    pub fn reason(&self) -> Option<&str> {
        match self {
            BackendState::Ready => None,
            BackendState::Degraded { reason } | BackendState::Failed { reason } => Some(reason),
        }
    }
}

/// Why a verifier could not take or finish work. A verdict on a signature is never an error:
/// it is a [`Verdict`](crate::Verdict) in a [`Response`].
#[derive(Debug, thiserror::Error)]
pub enum VerifierError {
    /// `capacity` requests are already in flight; complete some first.
    #[error("verifier is full: {capacity} requests in flight")]
    Full {
        /// The backend's capacity.
        capacity: usize,
    },
    /// The backend failed and cannot answer the requests it holds.
    #[error("{backend} backend failed: {reason}")]
    Failed {
        /// Which backend.
        backend: &'static str,
        /// What went wrong.
        reason: String,
    },
}

/// Verifies every request through `verifier`, applying back-pressure, and returns the
/// responses in the order of `requests`.
pub fn verify_all<V: Verifier + ?Sized>(
    verifier: &mut V,
    requests: impl IntoIterator<Item = Request>,
) -> Result<Vec<Response>, VerifierError> {
    /// How long one `complete` call may wait; the loop waits again until all are in.
    const WAIT: Duration = Duration::from_millis(50);
    let requests = requests.into_iter();
    let mut out = Vec::with_capacity(requests.size_hint().0);
    for request in requests {
        while verifier.in_flight() >= verifier.capacity() {
            verifier.flush()?;
            verifier.complete(&mut out, WAIT)?;
        }
        verifier.submit(request)?;
    }
    verifier.flush()?;
    while verifier.in_flight() > 0 {
        verifier.complete(&mut out, WAIT)?;
    }
    Ok(out)
}
