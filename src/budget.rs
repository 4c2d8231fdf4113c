//! The wall-clock side of compile limits: an optional deadline
//! ([`Config::deadline`](crate::Config::deadline)) and a cancellation handle
//! ([`Cancel`]) that a server holds to abandon a compile (a client hung up, a
//! request timed out).
//!
//! Work counters ([`Limits`](crate::Limits)) bound what a schema may build;
//! this bounds how long building may take on a slow or busy machine. The
//! compile installs its budget for the current thread ([`Scope`]); the loops
//! that can run long (one subschema after another, the states of a string
//! product, the machines of a grammar) call [`check`], which costs an atomic
//! load and, every [`EVERY`] calls, a clock read.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A handle that cancels the compiles of the [`Compiler`](crate::Compiler)
/// it was given to. Cheap to clone; any clone cancels.
///
/// ```
/// use std::sync::Arc;
/// use grammask::{Cancel, CompileErrorKind, Compiler, Vocabulary};
/// let vocab = Arc::new(Vocabulary::from_token_bytes(&["1", "<eos>"], &[1]).unwrap());
/// let cancel = Cancel::new();
/// let compiler = Compiler::new().with_cancel(cancel.clone());
/// cancel.cancel();
/// let err = compiler.compile_str(r#"{"type":"integer"}"#, vocab).unwrap_err();
/// assert_eq!(err.kind(), &CompileErrorKind::Cancelled);
/// ```
#[derive(Clone, Debug, Default)]
pub struct Cancel(Arc<AtomicBool>);

impl Cancel {
    /// A handle not yet cancelled.
    pub fn new() -> Cancel {
        Cancel::default()
    }
    /// Cancels every compile running or started with this handle.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::Relaxed);
    }
    /// Whether [`Cancel::cancel`] was called.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// Calls of [`check`] between clock reads.
const EVERY: u32 = 64;

/// Why a compile stopped early.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stop {
    Cancelled,
    Deadline,
}

#[derive(Default)]
struct Budget {
    deadline: Option<Instant>,
    cancel: Option<Cancel>,
    ticks: u32,
    stopped: Option<Stop>,
}

thread_local! {
    static BUDGET: Cell<Option<Box<Budget>>> = const { Cell::new(None) };
}

/// The budget of the compile running on this thread, removed on drop.
pub(crate) struct Scope {
    prev: Option<Box<Budget>>,
}

impl Scope {
    /// Installs a budget for this thread until the scope drops.
    pub(crate) fn enter(deadline: Option<Duration>, cancel: Option<Cancel>) -> Scope {
        let b = Budget { deadline: deadline.map(|d| Instant::now() + d), cancel, ticks: 0, stopped: None };
        Scope { prev: BUDGET.with(|c| c.replace(Some(Box::new(b)))) }
    }
    /// Why the compile was stopped, if it was.
    pub(crate) fn stopped(&self) -> Option<Stop> {
        BUDGET.with(|c| {
            let b = c.take();
            let s = b.as_ref().and_then(|b| b.stopped);
            c.set(b);
            s
        })
    }
}

impl Drop for Scope {
    fn drop(&mut self) {
        BUDGET.with(|c| c.set(self.prev.take()));
    }
}

/// `Err` with a message once the compile on this thread is cancelled or
/// past its deadline (and on every later call); `Ok` when no budget is set.
pub(crate) fn check() -> Result<(), String> {
    BUDGET.with(|c| {
        let Some(mut b) = c.take() else { return Ok(()) };
        if b.stopped.is_none() {
            if b.cancel.as_ref().is_some_and(Cancel::is_cancelled) {
                b.stopped = Some(Stop::Cancelled);
            } else if let Some(d) = b.deadline {
                b.ticks += 1;
                if b.ticks % EVERY == 0 && Instant::now() >= d {
                    b.stopped = Some(Stop::Deadline);
                }
            }
        }
        let r = match b.stopped {
            None => Ok(()),
            Some(Stop::Cancelled) => Err("compile cancelled".to_string()),
            Some(Stop::Deadline) => Err("compile deadline passed (Config::deadline)".to_string()),
        };
        c.set(Some(b));
        r
    })
}
