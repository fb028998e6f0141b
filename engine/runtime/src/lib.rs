//! The timely runtime: one set of worker threads per process, on which every
//! dataflow of the process runs (the video workers, the standing views, the
//! passage counts).
//!
//! A [`Runtime`] is cheap to clone; all clones share the same workers. The
//! workers start on the first job ([`Runtime::on_every_worker`]) and stop
//! when the last clone is dropped. A job is a closure that runs once on every
//! worker, with the worker and its [`Tasks`]: it builds dataflows and leaves
//! [`Task`]s behind, which the worker then polls between steps of its
//! dataflows (feeding inputs, watching probes, answering callers). Jobs reach
//! every worker in one global order, so all workers build the same dataflows
//! in the same order (timely's rule), whichever thread asked for them.
//!
//! Data enters through the tasks (channels from the caller's side) and leaves
//! through them; the runtime itself moves no data. Work that belongs to a
//! camera stays on the worker that owns the camera ([`Runtime::owner_of`]);
//! differential exchanges rows between workers by key.

use std::any::Any;
use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, Sender, TryRecvError, channel};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

pub use timely::worker::Worker;

/// What a task did when polled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Poll {
    /// It did work and has more: poll again soon.
    Busy,
    /// Nothing to do until its inputs change.
    Idle,
    /// Finished: the worker drops it.
    Done,
}

/// Work a job leaves on a worker, polled between the worker's steps.
pub trait Task: Any {
    fn poll(&mut self, worker: &mut Worker) -> Poll;
}

/// A worker's tasks, by the id their job gave them ([`Runtime::next_id`]).
#[derive(Default)]
pub struct Tasks {
    tasks: BTreeMap<u64, Box<dyn Task>>,
}

impl Tasks {
    pub fn insert(&mut self, id: u64, task: impl Task) {
        self.tasks.insert(id, Box::new(task));
    }

    /// The task `id`, if it is of type `T`.
    pub fn get_mut<T: Task>(&mut self, id: u64) -> Option<&mut T> {
        let task: &mut dyn Any = self.tasks.get_mut(&id)?.as_mut();
        task.downcast_mut::<T>()
    }

    pub fn remove(&mut self, id: u64) {
        self.tasks.remove(&id);
    }

    pub fn len(&self) -> usize {
        self.tasks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }
}

type Job = Box<dyn FnOnce(&mut Worker, &mut Tasks) + Send>;

/// The running workers: a job queue each, and their threads, to wake them.
struct Started {
    queues: Mutex<Vec<Sender<Job>>>,
    threads: Vec<std::thread::Thread>,
    guards: Mutex<Option<timely::communication::WorkerGuards<()>>>,
}

struct Shared {
    workers: usize,
    started: OnceLock<Result<Started, String>>,
    next_id: AtomicU64,
}

impl Drop for Shared {
    fn drop(&mut self) {
        if let Some(Ok(started)) = self.started.take() {
            // Closing the queues ends the workers' loops once their tasks are done.
            if let Ok(mut queues) = started.queues.lock() {
                queues.clear();
            }
            for thread in &started.threads {
                thread.unpark();
            }
            if let Some(guards) = started.guards.lock().ok().and_then(|mut g| g.take()) {
                drop(guards.join());
            }
        }
    }
}

/// The process's timely workers (see the crate documentation). A task must
/// not hold a clone: the workers stop when the last clone is dropped, and a
/// worker cannot wait for itself.
#[derive(Clone)]
pub struct Runtime {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime").field("workers", &self.shared.workers).finish()
    }
}

impl Default for Runtime {
    /// As many workers as the machine has cores.
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        Runtime::with_workers(cores)
    }
}

impl Runtime {
    /// A runtime with `workers` workers in this process (at least one),
    /// started on its first job.
    pub fn with_workers(workers: usize) -> Self {
        Runtime { shared: Arc::new(Shared { workers: workers.max(1), started: OnceLock::new(), next_id: AtomicU64::new(1) }) }
    }

    pub fn workers(&self) -> usize {
        self.shared.workers
    }

    /// Whether `other` is a clone of this runtime (the same workers).
    pub fn same_as(&self, other: &Runtime) -> bool {
        Arc::ptr_eq(&self.shared, &other.shared)
    }

    /// A fresh id for a job's tasks, unique in this runtime.
    pub fn next_id(&self) -> u64 {
        self.shared.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Runs `job` once on every worker, after every job asked for before
    /// it, in the same order on all workers. Returns once the job is queued;
    /// its effects are reported by the tasks it leaves.
    pub fn on_every_worker(&self, job: impl Fn(&mut Worker, &mut Tasks) + Send + Sync + 'static) -> Result<(), String> {
        let started = self.start()?;
        let job = Arc::new(job);
        {
            // One lock for the whole broadcast: jobs from different threads
            // reach every worker in the same order.
            let queues = started.queues.lock().map_err(|_| "the runtime's job queues are poisoned".to_string())?;
            for queue in queues.iter() {
                let job = Arc::clone(&job);
                queue.send(Box::new(move |worker: &mut Worker, tasks: &mut Tasks| job(worker, tasks))).map_err(|_| "a timely worker has stopped".to_string())?;
            }
        }
        self.wake();
        Ok(())
    }

    /// Wakes every worker (after sending one of its tasks something).
    pub fn wake(&self) {
        if let Some(Ok(started)) = self.shared.started.get() {
            for thread in &started.threads {
                thread.unpark();
            }
        }
    }

    fn start(&self) -> Result<&Started, String> {
        let started = self.shared.started.get_or_init(|| {
            let workers = self.shared.workers;
            let mut queues = Vec::with_capacity(workers);
            let mut receivers = Vec::with_capacity(workers);
            for _ in 0..workers {
                let (sender, receiver) = channel::<Job>();
                queues.push(sender);
                receivers.push(Mutex::new(Some(receiver)));
            }
            let receivers = Arc::new(receivers);
            let (thread_in, thread_out) = channel();
            let thread_in = Mutex::new(thread_in);
            let guards = timely::execute(timely::Config::process(workers), move |worker| {
                let jobs = receivers[worker.index()].lock().ok().and_then(|mut r| r.take());
                if let Ok(sender) = thread_in.lock() {
                    let _ = sender.send((worker.index(), std::thread::current()));
                }
                if let Some(jobs) = jobs {
                    run_worker(worker, jobs);
                }
            })?;
            let mut threads: Vec<(usize, std::thread::Thread)> = thread_out.iter().take(workers).collect();
            threads.sort_by_key(|(index, _)| *index);
            Ok(Started { queues: Mutex::new(queues), threads: threads.into_iter().map(|(_, t)| t).collect(), guards: Mutex::new(Some(guards)) })
        });
        started.as_ref().map_err(|e| format!("the timely workers could not start: {e}"))
    }

    /// The worker (of `peers`) that owns a camera: every frame and read of the
    /// camera is handled there. Stable across runs and processes.
    pub fn owner_of(camera_id: &str, peers: usize) -> usize {
        // FNV-1a: std's default hasher is randomly seeded per process, and
        // ownership must agree across processes and restarts.
        struct Fnv(u64);
        impl Hasher for Fnv {
            fn finish(&self) -> u64 {
                self.0
            }
            fn write(&mut self, bytes: &[u8]) {
                for b in bytes {
                    self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3);
                }
            }
        }
        let mut hasher = Fnv(0xcbf2_9ce4_8422_2325);
        camera_id.hash(&mut hasher);
        (hasher.finish() % peers.max(1) as u64) as usize
    }
}

/// A worker's loop: run queued jobs, poll tasks, step the dataflows; park
/// when there is nothing to do. Ends when the queue is closed and no task
/// is left.
fn run_worker(worker: &mut Worker, jobs: Receiver<Job>) {
    let mut tasks = Tasks::default();
    let mut open = true;
    loop {
        let mut busy = false;
        while open {
            match jobs.try_recv() {
                Ok(job) => {
                    job(worker, &mut tasks);
                    busy = true;
                }
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => open = false,
            }
        }
        let mut done = Vec::new();
        for (id, task) in tasks.tasks.iter_mut() {
            match task.poll(worker) {
                Poll::Busy => busy = true,
                Poll::Idle => {}
                Poll::Done => done.push(*id),
            }
        }
        for id in done {
            tasks.tasks.remove(&id);
        }
        if !open && tasks.is_empty() {
            // Let the dataflows drain, then stop.
            while worker.step() {}
            return;
        }
        // Tasks wait on channels filled by other threads (cameras, callers),
        // which cannot wake a parked worker unless they call
        // [`Runtime::wake`]: with tasks, a short park bounds their latency.
        let park = match (busy, tasks.is_empty()) {
            (true, _) => Duration::ZERO,
            (false, false) => Duration::from_millis(2),
            (false, true) => Duration::from_millis(100),
        };
        worker.step_or_park(Some(park));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc::channel;
    use timely::dataflow::InputHandle;
    use timely::dataflow::operators::{Exchange, Inspect, Input, Probe};
    use timely::dataflow::ProbeHandle;

    #[test]
    fn cameras_spread_over_workers_and_stay_put() {
        let owners: Vec<usize> = (1..=40).map(|i| Runtime::owner_of(&format!("otaci-exit-arrival-{i}"), 4)).collect();
        for w in 0..4 {
            assert!(owners.contains(&w), "worker {w} owns no camera: {owners:?}");
        }
        assert_eq!(owners[7], Runtime::owner_of("otaci-exit-arrival-8", 4));
    }

    /// A task that feeds numbers into an exchanging dataflow and reports
    /// what each worker saw once the probe has passed the last time.
    struct Feed {
        input: Option<InputHandle<u64, timely::container::CapacityContainerBuilder<Vec<u64>>>>,
        probe: ProbeHandle<u64>,
        numbers: Receiver<Vec<u64>>,
        seen: std::rc::Rc<std::cell::RefCell<Vec<u64>>>,
        done: Sender<(usize, Vec<u64>)>,
    }

    impl Task for Feed {
        fn poll(&mut self, worker: &mut Worker) -> Poll {
            match self.numbers.try_recv() {
                Ok(batch) => {
                    if let Some(input) = &mut self.input {
                        for n in batch {
                            input.send(n);
                        }
                    }
                    Poll::Busy
                }
                Err(TryRecvError::Disconnected) => {
                    self.input.take();
                    if self.probe.done() {
                        let _ = self.done.send((worker.index(), self.seen.take()));
                        Poll::Done
                    } else {
                        Poll::Busy
                    }
                }
                Err(TryRecvError::Empty) => Poll::Idle,
            }
        }
    }

    #[test]
    fn two_dataflows_from_two_threads_share_the_workers() {
        let runtime = Runtime::with_workers(2);
        let (done_in, done) = channel();
        let mut feeds = Vec::new();
        for _ in 0..2 {
            let (senders, receivers): (Vec<_>, Vec<_>) = (0..2).map(|_| channel::<Vec<u64>>()).unzip();
            let receivers = Arc::new(Mutex::new(receivers.into_iter().map(Some).collect::<Vec<_>>()));
            let done_in = Mutex::new(done_in.clone());
            let id = runtime.next_id();
            runtime
                .on_every_worker(move |worker, tasks| {
                    let numbers = receivers.lock().unwrap()[worker.index()].take().unwrap();
                    let seen = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
                    let probe = ProbeHandle::new();
                    let input = worker.dataflow::<u64, _, _>(|scope| {
                        let (input, stream) = scope.new_input::<Vec<u64>>();
                        let seen = seen.clone();
                        stream.exchange(|n: &u64| *n).inspect(move |n| seen.borrow_mut().push(*n)).probe_with(&probe);
                        input
                    });
                    let done = done_in.lock().unwrap().clone();
                    tasks.insert(id, Feed { input: Some(input), probe, numbers, seen, done });
                })
                .unwrap();
            feeds.push(senders);
        }
        for (f, senders) in feeds.iter().enumerate() {
            for (w, sender) in senders.iter().enumerate() {
                sender.send((0..100u64).filter(|n| n % 2 == w as u64).map(|n| n + 1000 * f as u64).collect()).unwrap();
            }
        }
        runtime.wake();
        drop(feeds);
        runtime.wake();
        let mut all: Vec<u64> = Vec::new();
        for _ in 0..4 {
            let (worker, seen) = done.recv_timeout(Duration::from_secs(30)).expect("every worker finishes");
            // Exchanged by value: each worker sees only its own numbers.
            assert!(seen.iter().all(|n| (*n as usize) % 2 == worker), "worker {worker} saw {seen:?}");
            all.extend(seen);
        }
        all.sort();
        let expected: Vec<u64> = (0..100).chain(1000..1100).collect();
        assert_eq!(all, expected);
    }
}
