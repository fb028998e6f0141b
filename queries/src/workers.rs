//! The standing views' dataflows on the process's timely workers.
//!
//! [`Workers`] leaves a task on every worker of the [`Runtime`]. Each worker
//! holds one input dataflow per table, whose rows are arranged once (a
//! shared arrangement that every view imports instead of keeping its own
//! copy), and one dataflow per view, whose rows are arranged the same way (a
//! view that selects from another imports them, as it would a table's).
//! Commands reach every worker in the same order, so all of them build the
//! same dataflows; a commit hands each worker its share of the changes, and
//! differential exchanges rows between workers by the hash of whatever key
//! an operator arranges them by. Each worker returns the view changes it
//! produced.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::mpsc::{Receiver, Sender, channel};

use borderflow_runtime::{Poll, Runtime, Task, Worker};

use differential_dataflow::input::{Input, InputSession};
use differential_dataflow::operators::arrange::TraceAgent;
use differential_dataflow::trace::TraceReader;
use differential_dataflow::trace::implementations::KeySpine;
use timely::dataflow::Scope;
use differential_dataflow::collection::AsCollection;
use timely::dataflow::operators::{Probe, ToStream};
use timely::dataflow::operators::probe::Handle;
use timely::progress::frontier::AntichainRef;

use crate::plan::Plan;
use crate::render::errors::{self, ViewErrors};
use crate::render::{BuildArrangement, Inputs, Keyed, KeyedTrace, Rows, render};
use crate::row::Row;

/// A table's rows arranged by the whole row.
type TableTrace = TraceAgent<KeySpine<Row, u64, isize>>;

/// Changes to views: view name → (row, time, diff).
pub(crate) type ViewChanges = Vec<(String, Vec<(Row, u64, isize)>)>;

enum Reply {
    Built(Result<(), String>),
    Committed(ViewChanges),
}

/// A worker's share of a commit.
struct Commit {
    time: u64,
    updates: Vec<(String, Vec<(Row, isize)>)>,
}

/// The views' dataflows on the runtime's workers, and the channels to them.
pub(crate) struct Workers {
    runtime: Runtime,
    /// The id of the views' task on every worker.
    id: u64,
    commits: Vec<Sender<Commit>>,
    replies: Receiver<Reply>,
}

impl Workers {
    /// Starts the views' task on every worker of `runtime`.
    pub(crate) fn start(runtime: &Runtime) -> Result<Self, String> {
        let count = runtime.workers();
        let (replies_in, replies) = channel();
        let (commits, receivers): (Vec<Sender<Commit>>, Vec<Receiver<Commit>>) = (0..count).map(|_| channel()).unzip();
        let receivers = Mutex::new(receivers.into_iter().map(Some).collect::<Vec<_>>());
        let replies_in = Mutex::new(replies_in);
        let id = runtime.next_id();
        runtime.on_every_worker(move |worker, tasks| {
            let commits = receivers.lock().ok().and_then(|mut r| r[worker.index()].take());
            let reply = replies_in.lock().map(|r| r.clone());
            if let (Some(commits), Ok(reply)) = (commits, reply) {
                tasks.insert(id, ViewsTask::new(commits, reply));
            }
        })?;
        Ok(Workers { runtime: runtime.clone(), id, commits, replies })
    }

    pub(crate) fn count(&self) -> usize {
        self.commits.len()
    }

    fn reply(&self) -> Result<Reply, String> {
        self.replies.recv().map_err(|_| "a dataflow worker has stopped".to_string())
    }

    pub(crate) fn table(&self, name: &str) -> Result<(), String> {
        let (id, name) = (self.id, name.to_string());
        self.runtime.on_every_worker(move |worker, tasks| {
            if let Some(task) = tasks.get_mut::<ViewsTask>(id) {
                task.build_table(worker, &name);
            }
        })
    }

    /// Builds a view's dataflow on every worker.
    /// Rows it cannot evaluate are counted in `errors`.
    pub(crate) fn view(&self, name: &str, plan: &Plan, errors: &Arc<ViewErrors>) -> Result<(), String> {
        let (id, name, plan, errors) = (self.id, name.to_string(), Mutex::new(plan.clone()), Arc::clone(errors));
        self.runtime.on_every_worker(move |worker, tasks| {
            let Some(task) = tasks.get_mut::<ViewsTask>(id) else { return };
            let plan = plan.lock().map(|p| p.clone());
            let result = match plan {
                Ok(plan) => task.build_view(worker, &name, &plan, &errors),
                Err(_) => Err("the view's plan is poisoned".to_string()),
            };
            let _ = task.reply.send(Reply::Built(result));
        })?;
        let mut result = Ok(());
        for _ in 0..self.count() {
            if let Reply::Built(Err(e)) = self.reply()? {
                result = Err(e);
            }
        }
        result
    }

    /// Applies `updates` at `time` and returns every view's changes up to it.
    pub(crate) fn commit(&self, time: u64, updates: BTreeMap<String, Vec<(Row, isize)>>) -> Result<ViewChanges, String> {
        // Deal the updates round-robin; arrangements exchange them by key.
        let count = self.count();
        let mut shares: Vec<Vec<(String, Vec<(Row, isize)>)>> = vec![Vec::new(); count];
        for (table, rows) in updates {
            let mut split: Vec<Vec<(Row, isize)>> = vec![Vec::new(); count];
            for (i, update) in rows.into_iter().enumerate() {
                split[i % count].push(update);
            }
            for (share, part) in shares.iter_mut().zip(split) {
                share.push((table.clone(), part));
            }
        }
        for (sender, updates) in self.commits.iter().zip(shares) {
            sender.send(Commit { time, updates }).map_err(|_| "a dataflow worker has stopped".to_string())?;
        }
        self.runtime.wake();
        let mut merged: BTreeMap<String, Vec<(Row, u64, isize)>> = BTreeMap::new();
        for _ in 0..count {
            if let Reply::Committed(changes) = self.reply()? {
                for (view, mut rows) in changes {
                    merged.entry(view).or_default().append(&mut rows);
                }
            }
        }
        Ok(merged.into_iter().collect())
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        // The task's inputs close with it, and its dataflows finish.
        let id = self.id;
        let _ = self.runtime.on_every_worker(move |_, tasks| tasks.remove(id));
    }
}

struct TableInput {
    session: InputSession<u64, Row, isize>,
}

struct ViewOutput {
    name: String,
    probe: Handle<u64>,
    sink: Rc<RefCell<Vec<(Row, u64, isize)>>>,
}

/// The views of one `StandingViews` on one worker: the tables' inputs, the
/// arranged rows of every table and view, and the commit in progress.
struct ViewsTask {
    commits: Receiver<Commit>,
    reply: Sender<Reply>,
    tables: BTreeMap<String, TableInput>,
    /// The rows of every table and view, arranged: what views import.
    traces: BTreeMap<String, TableTrace>,
    keyed: Rc<RefCell<BTreeMap<String, KeyedTrace>>>,
    views: Vec<ViewOutput>,
    table_probe: Handle<u64>,
    /// The next time a table's input is at.
    time: u64,
    /// A commit waiting for the dataflows to catch up: since when.
    waiting: Option<std::time::Instant>,
    warned: bool,
}

impl ViewsTask {
    fn new(commits: Receiver<Commit>, reply: Sender<Reply>) -> Self {
        ViewsTask {
            commits,
            reply,
            tables: BTreeMap::new(),
            traces: BTreeMap::new(),
            keyed: Rc::default(),
            views: Vec::new(),
            table_probe: Handle::new(),
            time: 0,
            waiting: None,
            warned: false,
        }
    }

    fn build_table(&mut self, worker: &mut Worker, name: &str) {
        let probe = self.table_probe.clone();
        let (mut session, trace) = worker.dataflow::<u64, _, _>(|scope| {
            let (session, rows) = scope.new_collection::<Row, isize>();
            let arranged = rows.arrange_by_self_named(&format!("Table {name}"));
            arranged.stream.probe_with(&probe);
            (session, arranged.trace)
        });
        session.advance_to(self.time);
        self.traces.insert(name.to_string(), trace);
        self.tables.insert(name.to_string(), TableInput { session });
    }

    fn build_view(&mut self, worker: &mut Worker, name: &str, plan: &Plan, errors: &Arc<ViewErrors>) -> Result<(), String> {
        let (output, trace) = errors::rendering(errors, || build_view(worker, name, plan, &self.traces, &self.keyed))?;
        self.traces.insert(name.to_string(), trace);
        self.views.push(output);
        Ok(())
    }

    fn start_commit(&mut self, commit: Commit) {
        for table in self.tables.values_mut() {
            table.session.advance_to(commit.time);
        }
        for (name, rows) in commit.updates {
            if let Some(table) = self.tables.get_mut(&name) {
                for (row, diff) in rows {
                    table.session.update(row, diff);
                }
            }
        }
        self.time = commit.time + 1;
        for table in self.tables.values_mut() {
            table.session.advance_to(self.time);
            table.session.flush();
        }
        self.waiting = Some(std::time::Instant::now());
        self.warned = false;
    }

    fn caught_up(&self) -> bool {
        !self.table_probe.less_than(&self.time) && !self.views.iter().any(|v| v.probe.less_than(&self.time))
    }

    fn finish_commit(&mut self) -> Result<(), ()> {
        // Nothing older than `time` will be asked of the shared traces.
        let frontier = [self.time];
        for trace in self.traces.values_mut() {
            trace.set_logical_compaction(AntichainRef::new(&frontier));
            trace.set_physical_compaction(AntichainRef::new(&frontier));
        }
        for trace in self.keyed.borrow_mut().values_mut() {
            trace.set_logical_compaction(AntichainRef::new(&frontier));
            trace.set_physical_compaction(AntichainRef::new(&frontier));
        }
        let changes = self.views.iter().map(|v| (v.name.clone(), std::mem::take(&mut *v.sink.borrow_mut()))).collect();
        self.waiting = None;
        self.reply.send(Reply::Committed(changes)).map_err(|_| ())
    }
}

impl Task for ViewsTask {
    fn poll(&mut self, _: &mut Worker) -> Poll {
        if let Some(since) = self.waiting {
            if !self.caught_up() {
                if !self.warned && since.elapsed().as_secs() > 60 {
                    self.warned = true;
                    let behind: Vec<&str> = self.views.iter().filter(|v| v.probe.less_than(&self.time)).map(|v| v.name.as_str()).collect();
                    tracing::warn!(time = self.time, ?behind, "views still catching up after a minute");
                }
                return Poll::Busy;
            }
            if self.finish_commit().is_err() {
                return Poll::Done;
            }
        }
        match self.commits.try_recv() {
            Ok(commit) => {
                self.start_commit(commit);
                Poll::Busy
            }
            Err(std::sync::mpsc::TryRecvError::Empty) => Poll::Idle,
            Err(std::sync::mpsc::TryRecvError::Disconnected) => Poll::Done,
        }
    }
}

struct WorkerInputs<'scope> {
    scope: Scope<'scope, u64>,
    tables: BTreeMap<String, Rows<'scope>>,
    unit: Rows<'scope>,
    keyed: Rc<RefCell<BTreeMap<String, KeyedTrace>>>,
    local: RefCell<BTreeMap<String, Keyed<'scope>>>,
}

impl<'scope> Inputs<'scope> for WorkerInputs<'scope> {
    fn table(&self, name: &str) -> Rows<'scope> {
        self.tables[name].clone()
    }

    fn unit(&self) -> Rows<'scope> {
        self.unit.clone()
    }

    fn arranged(&self, signature: &str, build: BuildArrangement<'_, 'scope>) -> Result<Keyed<'scope>, datafusion::error::DataFusionError> {
        if let Some(arranged) = self.local.borrow().get(signature) {
            return Ok(arranged.clone());
        }
        let existing = self.keyed.borrow().get(signature).cloned();
        let arranged = match existing {
            Some(mut trace) => trace.import_named(self.scope, "SharedArrangement"),
            None => {
                let built = build()?;
                self.keyed.borrow_mut().insert(signature.to_string(), built.trace.clone());
                built
            }
        };
        self.local.borrow_mut().insert(signature.to_string(), arranged.clone());
        Ok(arranged)
    }
}

/// Builds the view's dataflow over the traces of the tables and views it
/// selects from; returns its output and its rows arranged, for later views.
fn build_view(
    worker: &mut Worker,
    name: &str,
    plan: &Plan,
    arranged: &BTreeMap<String, TableTrace>,
    keyed: &Rc<RefCell<BTreeMap<String, KeyedTrace>>>,
) -> Result<(ViewOutput, TableTrace), String> {
    let mut names = Vec::new();
    plan.tables(&mut names);
    let mut traces = Vec::new();
    for table in &names {
        let trace = arranged.get(table).ok_or_else(|| format!("unknown table or view `{table}`"))?;
        traces.push((table.clone(), trace.clone()));
    }
    let index = worker.index();
    let probe = Handle::new();
    let sink = Rc::new(RefCell::new(Vec::new()));
    let (probe_in, sink_in) = (probe.clone(), Rc::clone(&sink));
    let keyed = Rc::clone(keyed);
    let view = name.to_string();
    let trace = worker.dataflow::<u64, _, _>(move |scope| {
        let tables = traces
            .into_iter()
            .map(|(name, mut trace)| {
                let rows = trace.import_named(scope, &format!("Table {name}")).as_collection(|row: &Row, _: &()| row.clone());
                (name, rows)
            })
            .collect();
        let unit_rows = if index == 0 { vec![(Row::default(), 0u64, 1isize)] } else { Vec::new() };
        let unit = unit_rows.to_stream(scope).as_collection();
        let inputs = WorkerInputs { scope, tables, unit, keyed, local: RefCell::default() };
        let rows = render(plan, &inputs).map_err(|e| e.to_string())?;
        // Arranged once: consolidated for the view's changes, and shared
        // with the views that select from this one.
        let arranged = rows.arrange_by_self_named(&format!("View {view}"));
        let trace = arranged.trace.clone();
        arranged
            .as_collection(|row: &Row, _: &()| row.clone())
            .inspect(move |(row, time, diff)| sink_in.borrow_mut().push((row.clone(), *time, *diff)))
            .probe_with(&probe_in);
        Ok::<_, String>(trace)
    })?;
    Ok((ViewOutput { name: name.to_string(), probe, sink }, trace))
}
