//! The first standing view, written by hand in differential dataflow:
//! passages per post, direction and point, kept up to date as reads arrive.
//!
//! Reads are replayed in event-time order on the worker that owns their
//! camera. The timely time of a read is its ingestion time in milliseconds;
//! when reads are replayed (the scenario, recorded input) the ingestion clock
//! is the event time rounded up to `tick_ms`, so a replay is deterministic.
//! Counts are exchanged by key (post, direction, point), so every worker may
//! hold reads of any post. The output is the view's changelog: for every tick
//! at which a count changed, the old count retracted (`diff` −1) and the new
//! one inserted (`diff` +1).

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::mpsc::{Sender, channel};
use std::sync::{Arc, Mutex};

use borderflow_runtime::{Poll, Task, Worker};
use differential_dataflow::input::{Input, InputSession};
use timely::dataflow::operators::probe::Handle;

use crate::{Direction, PlateRead, Point, Runtime};

/// The view's name, as sinks and the CLI call it.
pub const VIEW_NAME: &str = "passages_per_post";

/// The key of [`VIEW_NAME`].
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct PassageKey {
    pub post_id: String,
    pub direction: Direction,
    pub point: Point,
}

/// One change of the view: `passages` for `key` inserted (`diff` = 1) or
/// retracted (`diff` = −1) at ingestion time `time_ms`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct PassageCountChange {
    pub time_ms: u64,
    pub key: PassageKey,
    pub passages: i64,
    pub diff: i64,
}

/// Replays `reads` through the view on `runtime`'s workers and returns its
/// changelog, ordered by time, key and diff. The dataflow runs beside the
/// runtime's others; the call returns when every worker has fed its reads
/// and the view has caught up.
pub fn replay_passage_counts(
    runtime: &Runtime,
    reads: Arc<Vec<PlateRead>>,
    tick_ms: u64,
) -> Result<Vec<PassageCountChange>, String> {
    let tick_ms = tick_ms.max(1);
    let (done_in, done) = channel();
    let done_in = Mutex::new(done_in);
    let id = runtime.next_id();
    runtime.on_every_worker(move |worker, tasks| {
        let (index, peers) = (worker.index(), worker.peers());
        let changes = Rc::new(RefCell::new(Vec::new()));
        let sink = Rc::clone(&changes);
        let probe = Handle::new();
        let input = worker.dataflow::<u64, _, _>(|scope| {
            let (input, reads) = scope.new_collection::<PassageKey, isize>();
            reads
                .count()
                .inspect(move |((key, passages), time, diff)| {
                    sink.borrow_mut().push(PassageCountChange {
                        time_ms: *time,
                        key: key.clone(),
                        passages: *passages as i64,
                        diff: *diff as i64,
                    })
                })
                .probe_with(&probe);
            input
        });
        let mine: Vec<usize> = (0..reads.len()).filter(|&i| Runtime::owner_of(&reads[i].camera_id, peers) == index).collect();
        let done = done_in.lock().map(|d| d.clone()).ok();
        tasks.insert(id, Replay { reads: Arc::clone(&reads), mine, next: 0, tick_ms, input: Some(input), probe, changes, done });
    })?;
    let mut all: Vec<PassageCountChange> = Vec::new();
    for _ in 0..runtime.workers() {
        all.extend(done.recv().map_err(|_| "a timely worker stopped during the passage counts".to_string())?);
    }
    all.sort();
    Ok(all)
}

/// One worker's share of a replay: its reads, fed in chunks so state and
/// output stay bounded, the dataflow kept close behind the input.
struct Replay {
    reads: Arc<Vec<PlateRead>>,
    /// The indexes of the reads of this worker's cameras.
    mine: Vec<usize>,
    next: usize,
    tick_ms: u64,
    input: Option<InputSession<u64, PassageKey, isize>>,
    probe: Handle<u64>,
    changes: Rc<RefCell<Vec<PassageCountChange>>>,
    done: Option<Sender<Vec<PassageCountChange>>>,
}

impl Task for Replay {
    fn poll(&mut self, _: &mut Worker) -> Poll {
        let Some(input) = &mut self.input else {
            if !self.probe.done() {
                return Poll::Busy;
            }
            if let Some(done) = self.done.take() {
                let _ = done.send(self.changes.take());
            }
            return Poll::Done;
        };
        if self.probe.less_than(input.time()) {
            return Poll::Busy;
        }
        let mut fed = 0;
        while let Some(&i) = self.mine.get(self.next) {
            let read = &self.reads[i];
            let at = ingestion_tick(read.captured_at_ms, self.tick_ms);
            if at > *input.time() {
                input.advance_to(at);
                if fed >= 4096 {
                    break;
                }
            }
            input.update(PassageKey { post_id: read.post_id.clone(), direction: read.direction, point: read.point }, 1);
            fed += 1;
            self.next += 1;
        }
        input.flush();
        if self.next == self.mine.len() {
            self.input = None;
        }
        Poll::Busy
    }
}

/// The ingestion tick of an event time: the end of its `tick_ms` interval.
fn ingestion_tick(captured_at_ms: i64, tick_ms: u64) -> u64 {
    let ms = captured_at_ms.max(0) as u64;
    ms.div_ceil(tick_ms) * tick_ms
}

/// The view's contents after all changes: count per key.
pub fn final_counts(changes: &[PassageCountChange]) -> std::collections::BTreeMap<PassageKey, i64> {
    let mut rows: std::collections::BTreeMap<(PassageKey, i64), i64> = Default::default();
    for c in changes {
        *rows.entry((c.key.clone(), c.passages)).or_default() += c.diff;
    }
    rows.into_iter()
        .filter(|(_, multiplicity)| *multiplicity != 0)
        .map(|((key, passages), _)| (key, passages))
        .collect()
}
