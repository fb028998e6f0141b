//! Rows a view could not evaluate: counted per view and logged, never
//! silently lost with the rows around them.
//!
//! A view's [`ViewErrors`] is made once by the host and shared by the
//! view's operators on every worker. The operators learn which view they
//! belong to while the view is rendered ([`rendering`] sets it for the
//! worker thread that builds the dataflow), so the render functions need
//! not pass it down through every call. A row that fails is logged with
//! the view, the operator and the error, not with its values: rows carry
//! plates, which are personal data.

use std::cell::RefCell;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// How many rows (and groups or partitions) of one view failed to evaluate.
#[derive(Debug)]
pub struct ViewErrors {
    view: String,
    rows: AtomicU64,
}

impl ViewErrors {
    pub fn new(view: &str) -> Arc<Self> {
        Arc::new(ViewErrors { view: view.to_string(), rows: AtomicU64::new(0) })
    }

    /// Rows, groups and partitions dropped because they failed to evaluate.
    pub fn count(&self) -> u64 {
        self.rows.load(Ordering::Relaxed)
    }

    /// Records that `rows` rows failed in `operator` with `error`.
    pub(crate) fn record(&self, operator: &str, rows: usize, error: &dyn std::fmt::Display) {
        self.rows.fetch_add(rows as u64, Ordering::Relaxed);
        tracing::error!(view = %self.view, operator, rows, %error, "rows not evaluated; left out of the view");
    }
}

thread_local! {
    static RENDERING: RefCell<Option<Arc<ViewErrors>>> = const { RefCell::new(None) };
}

/// Runs `render` with `errors` as the errors of whatever it builds.
pub fn rendering<T>(errors: &Arc<ViewErrors>, render: impl FnOnce() -> T) -> T {
    let before = RENDERING.with(|r| r.replace(Some(Arc::clone(errors))));
    let result = render();
    RENDERING.with(|r| *r.borrow_mut() = before);
    result
}

/// The errors of the view being rendered (a view of its own name when none
/// is: a dataflow rendered outside [`rendering`]).
pub(crate) fn current() -> Arc<ViewErrors> {
    RENDERING.with(|r| r.borrow().clone()).unwrap_or_else(|| ViewErrors::new("(unnamed)"))
}
