//! The timely workers that run standing views.
//!
//! [`Workers`] starts `n` timely worker threads in this process. Each worker
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
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};

use differential_dataflow::input::{Input, InputSession};
use differential_dataflow::operators::arrange::TraceAgent;
use differential_dataflow::trace::TraceReader;
use differential_dataflow::trace::implementations::KeySpine;
use timely::dataflow::Scope;
use differential_dataflow::collection::AsCollection;
use timely::dataflow::operators::{Probe, ToStream};
use timely::dataflow::operators::probe::Handle;
use timely::progress::frontier::AntichainRef;
use timely::worker::Worker;

use crate::lower::Plan;
use crate::render::{BuildArrangement, Inputs, Keyed, KeyedTrace, Rows, render};
use crate::row::Row;

/// A table's rows arranged by the whole row.
type TableTrace = TraceAgent<KeySpine<Row, u64, isize>>;

/// Changes to views: view name → (row, time, diff).
pub(crate) type ViewChanges = Vec<(String, Vec<(Row, u64, isize)>)>;

enum Command {
    Table(String),
    View { name: String, plan: Plan },
    /// Apply `updates` at `time`, then run every view up to and including it.
    Commit { time: u64, updates: Vec<(String, Vec<(Row, isize)>)> },
}

enum Reply {
    Built(Result<(), String>),
    Committed(ViewChanges),
}

/// The worker threads and the channels to them.
pub(crate) struct Workers {
    commands: Vec<Sender<Command>>,
    replies: Receiver<Reply>,
    guards: Option<timely::communication::WorkerGuards<()>>,
}

impl Workers {
    /// Starts `count` (at least 1) timely workers.
    pub(crate) fn start(count: usize) -> Result<Self, String> {
        let count = count.max(1);
        let (replies_in, replies) = channel();
        let mut commands = Vec::with_capacity(count);
        let mut receivers = Vec::with_capacity(count);
        for _ in 0..count {
            let (tx, rx) = channel();
            commands.push(tx);
            receivers.push(Mutex::new(Some(rx)));
        }
        let receivers = Arc::new(receivers);
        let replies_in = Arc::new(Mutex::new(replies_in));
        let guards = timely::execute(timely::Config::process(count), move |worker| {
            let index = worker.index();
            let commands = receivers[index].lock().ok().and_then(|mut r| r.take());
            let reply = replies_in.lock().map(|r| r.clone());
            if let (Some(commands), Ok(reply)) = (commands, reply) {
                run_worker(worker, commands, reply);
            }
        })?;
        Ok(Workers { commands, replies, guards: Some(guards) })
    }

    pub(crate) fn count(&self) -> usize {
        self.commands.len()
    }

    fn broadcast(&self, command: impl Fn() -> Command) -> Result<(), String> {
        for sender in &self.commands {
            sender.send(command()).map_err(|_| "a dataflow worker has stopped".to_string())?;
        }
        Ok(())
    }

    fn reply(&self) -> Result<Reply, String> {
        self.replies.recv().map_err(|_| "a dataflow worker has stopped".to_string())
    }

    pub(crate) fn table(&self, name: &str) -> Result<(), String> {
        self.broadcast(|| Command::Table(name.to_string()))
    }

    /// Builds a view's dataflow on every worker.
    pub(crate) fn view(&self, name: &str, plan: &Plan) -> Result<(), String> {
        self.broadcast(|| Command::View { name: name.to_string(), plan: plan.clone() })?;
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
        for (sender, updates) in self.commands.iter().zip(shares) {
            sender.send(Command::Commit { time, updates }).map_err(|_| "a dataflow worker has stopped".to_string())?;
        }
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
        self.commands.clear();
        if let Some(guards) = self.guards.take() {
            drop(guards.join());
        }
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

fn run_worker(worker: &mut Worker, commands: Receiver<Command>, reply: Sender<Reply>) {
    let mut tables: BTreeMap<String, TableInput> = BTreeMap::new();
    // The rows of every table and view, arranged: what views import.
    let mut traces: BTreeMap<String, TableTrace> = BTreeMap::new();
    let keyed: Rc<RefCell<BTreeMap<String, KeyedTrace>>> = Rc::default();
    let mut views: Vec<ViewOutput> = Vec::new();
    let table_probe: Handle<u64> = Handle::new();
    let mut time = 0u64;
    while let Ok(command) = commands.recv() {
        match command {
            Command::Table(name) => {
                let probe = table_probe.clone();
                let (mut session, trace) = worker.dataflow::<u64, _, _>(|scope| {
                    let (session, rows) = scope.new_collection::<Row, isize>();
                    let arranged = rows.arrange_by_self_named(&format!("Table {name}"));
                    arranged.stream.probe_with(&probe);
                    (session, arranged.trace)
                });
                session.advance_to(time);
                traces.insert(name.clone(), trace);
                tables.insert(name, TableInput { session });
            }
            Command::View { name, plan } => {
                let built = build_view(worker, &name, &plan, &traces, &keyed);
                let result = built.map(|(output, trace)| {
                    traces.insert(name, trace);
                    views.push(output)
                });
                if reply.send(Reply::Built(result)).is_err() {
                    return;
                }
            }
            Command::Commit { time: at, updates } => {
                for table in tables.values_mut() {
                    table.session.advance_to(at);
                }
                for (name, rows) in updates {
                    if let Some(table) = tables.get_mut(&name) {
                        for (row, diff) in rows {
                            table.session.update(row, diff);
                        }
                    }
                }
                time = at + 1;
                for table in tables.values_mut() {
                    table.session.advance_to(time);
                    table.session.flush();
                }
                let started = std::time::Instant::now();
                let mut reported = false;
                while table_probe.less_than(&time) || views.iter().any(|v| v.probe.less_than(&time)) {
                    worker.step();
                    if !reported && started.elapsed().as_secs() > 60 {
                        reported = true;
                        let behind: Vec<&str> = views.iter().filter(|v| v.probe.less_than(&time)).map(|v| v.name.as_str()).collect();
                        tracing::warn!(time, ?behind, "views still catching up after a minute");
                    }
                }
                // Nothing older than `time` will be asked of the shared traces.
                let frontier = [time];
                for trace in traces.values_mut() {
                    trace.set_logical_compaction(AntichainRef::new(&frontier));
                    trace.set_physical_compaction(AntichainRef::new(&frontier));
                }
                for trace in keyed.borrow_mut().values_mut() {
                    trace.set_logical_compaction(AntichainRef::new(&frontier));
                    trace.set_physical_compaction(AntichainRef::new(&frontier));
                }
                let changes = views.iter().map(|v| (v.name.clone(), std::mem::take(&mut *v.sink.borrow_mut()))).collect();
                if reply.send(Reply::Committed(changes)).is_err() {
                    return;
                }
            }
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
