//! Rendering a lowered [`Plan`] as differential dataflow over [`Row`]s.
//!
//! # Rows
//!
//! Inside the dataflow a row is a [`Row`]: Arrow's row format, one byte
//! string per row (see [`crate::row`]), immutable and shared, so the copies
//! arrangements, merges and joins keep of a row are one allocation. Rows
//! compare and hash as bytes, which is what arrangements and exchanges need,
//! and the encoding of several columns is the concatenation of theirs, so a
//! join concatenates two rows without decoding them. Arrangements index rows
//! by a [`Key`]: the encoded key with its hash, compared hash first. Every
//! collection is a [`Rows`]: `(Row, time, diff)` with times in milliseconds
//! (a commit's time) and `isize` diffs.
//! Expressions are never evaluated row by row: an operator takes each chunk
//! of updates timely hands it, decodes the chunk's rows into one Arrow
//! record batch ([`RowCodec`](crate::row::RowCodec)), evaluates DataFusion's
//! physical expressions over it, and encodes the results back into rows,
//! keeping every update's time and diff (`batches.rs`).
//!
//! # Errors
//!
//! What can fail while the dataflow is built (a schema the row codec cannot
//! encode, say) is an [`Error`] returned by [`render`], and the view is not
//! created. Once it runs, nothing a row holds can panic a worker or take
//! other rows with it: a chunk that fails to evaluate is evaluated again
//! row by row, and only the rows that fail are left out, each counted in
//! the view's [`errors::ViewErrors`] (which `StandingViews::errors`
//! reports) and logged with the view and the operator. A group whose
//! aggregates fail, or a partition whose window functions fail, is counted
//! and logged the same way.
//!
//! # Arrangements
//!
//! The tables' and views' rows are arranged by the whole row once per worker
//! (in `workers.rs`) and imported by every view that reads them. A join
//! arranges each side by its encoded key through [`Inputs::arranged`], under
//! a signature that spells the side's plan, its keys, its time buckets and
//! its NULL handling: the workers keep each [`KeyedTrace`] under its
//! signature, so a later view that keys the same collection the same way
//! imports that arrangement instead of building its own, and a view that
//! needs one twice builds it once.
//!
//! # What each operator costs
//!
//! - Scan: the table's imported arrangement, as a collection.
//! - Map (projection and filter, `map.rs`): a chain of maps runs as one
//!   operator that decodes each chunk into Arrow once, applies every step to
//!   the surviving rows and encodes once; steps that only pass their input
//!   through are skipped. No state.
//! - Join (`join.rs`): both sides keyed by their encoded join key (rows with
//!   a NULL key dropped unless NULLs match or a left/anti join must keep
//!   them) and arranged; matches are concatenated, then the residual
//!   predicate is evaluated over the joined rows in Arrow. An interval join
//!   keys each row by every time bucket its range touches (at most 100 000;
//!   beyond that, logged). Left, semi and anti joins also keep the distinct
//!   matched left rows and semijoin the left input with them (two more
//!   arrangements); a left join pads the unmatched rows with a row of NULLs;
//!   `NOT IN` adds markers for "the right side has rows" and "has a NULL".
//!   A join with a one-row side (a scalar subquery) has a constant key: all
//!   its rows are on one worker, and a change to that row joins every row
//!   of the other side again.
//! - GROUP BY whose aggregates are all count, count DISTINCT, integer sum,
//!   min or max (`accumulate.rs`): each row keyed by its encoded group and
//!   turned into one small contribution per aggregate, exchanged by group
//!   to one operator that keeps per group a row count, sums, and ordered
//!   multisets of values for min, max and DISTINCT. A changed group costs
//!   its changes (and a logarithm for the multisets), not its size; no
//!   arrangement of the input is kept.
//! - Any other GROUP BY (`reduce.rs`): each row keyed by its encoded group
//!   and reduced to its encoded arguments; a group that changes is
//!   recomputed in full, its argument rows decoded (multiplicities
//!   expanded) and fed to fresh DataFusion accumulators, so every aggregate
//!   DataFusion has keeps its batch semantics at a cost proportional to the
//!   group's size. A global aggregate emits its empty-input row while it
//!   has no input.
//! - Window (`window.rs`): rows keyed by partition; a partition that changes
//!   is decoded in full, sorted by each function's ORDER BY and evaluated
//!   with DataFusion's `WindowExpr`s, every row of it re-emitted (differential
//!   keeps only the difference).
//! - Temporal filter (`temporal.rs`): each row's bounds are evaluated in
//!   Arrow to the interval of times during which it is visible; its insertion
//!   is emitted at the start of that interval and its retraction, ahead of
//!   time, at the end, so rows age out without the operator keeping state.
//! - DISTINCT: differential's `distinct` (an arrangement of its input).
//!   UNION ALL: a concatenation, free.

use differential_dataflow::VecCollection;
use differential_dataflow::operators::arrange::{Arranged, TraceAgent};
use differential_dataflow::trace::implementations::ValSpine;

use crate::plan::Plan;
use crate::row::{Key, Row};

mod accumulate;
mod batches;
pub mod errors;
mod join;
mod map;
mod reduce;
mod temporal;
mod window;

/// A collection of rows in a timely scope with millisecond times.
pub type Rows<'scope> = VecCollection<'scope, u64, Row, isize>;

/// The trace of rows arranged by an encoded key (a join input).
pub type KeyedTrace = TraceAgent<ValSpine<Key, Row, u64, isize>>;

/// Rows arranged by an encoded key, in a scope.
pub type Keyed<'scope> = Arranged<'scope, KeyedTrace>;

/// Builds an arrangement when no view has built it yet.
pub type BuildArrangement<'a, 'scope> = &'a mut dyn FnMut() -> Result<Keyed<'scope>, Error>;

/// Looks up the collection of an input table.
pub trait Inputs<'scope> {
    fn table(&self, name: &str) -> Rows<'scope>;
    /// A collection holding one empty row, for global aggregates.
    fn unit(&self) -> Rows<'scope>;
    /// The arrangement known as `signature`: shared with the views that
    /// built it before, else built by `build` (and shared from then on).
    fn arranged(&self, signature: &str, build: BuildArrangement<'_, 'scope>) -> Result<Keyed<'scope>, Error> {
        let _ = signature;
        build()
    }
}

type Error = datafusion::error::DataFusionError;

/// Renders `plan` in the scope of `inputs`.
pub fn render<'scope>(plan: &Plan, inputs: &dyn Inputs<'scope>) -> Result<Rows<'scope>, Error> {
    Ok(match plan {
        Plan::Scan { table, .. } => inputs.table(table),
        Plan::Map { .. } => map::render_map(plan, inputs)?,
        Plan::Distinct { input } => render(input, inputs)?.distinct(),
        Plan::Union { inputs: parts, .. } => {
            let mut rendered = parts.iter().map(|p| render(p, inputs));
            let first = rendered.next().ok_or_else(|| Error::Internal("UNION without inputs".into()))??;
            let mut all = first;
            for part in rendered {
                all = all.concat(part?);
            }
            all
        }
        Plan::Join { .. } => join::render_join(plan, inputs)?,
        Plan::Window { .. } => window::render_window(plan, inputs)?,
        Plan::Temporal { .. } => temporal::render_temporal(plan, inputs)?,
        Plan::Aggregate { .. } => reduce::render_aggregate(plan, inputs)?,
    })
}
