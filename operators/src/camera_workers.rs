//! Cameras into plate reads on the process's timely workers.
//!
//! Each camera belongs to one worker (dealt round-robin in the order of the
//! spec's cameras, so a post's cameras spread evenly); the worker's camera
//! task on the runtime opens its cameras' sources, feeds their frames into its own dataflow and
//! never hands a frame to another worker. The dataflow reads top to bottom:
//!
//! ```text
//! camera sources ─frames─▶ detect → track → recognise → vote (CameraReader per camera) ─reads─▶ out
//! ```
//!
//! The timely time is ingestion time: the latest frame time the worker has
//! seen, in milliseconds. A camera that fails is reported with its cause and
//! its reads so far are kept; the other cameras carry on. [`VideoRun`]
//! reports per-camera health while it runs.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use borderflow_runtime::{Poll, Runtime, Task, Worker};
use borderflow_types::{CameraConfig, CameraHealth, CameraOpener, CameraStats, Frame, FrameEvent, FrameSource, LiveFrame, LiveFrames, PlateRead};

use crate::{CameraReader, PlateCrop, PlateReader, PlateReaderOptions, StageTimes, VideoOptions};
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::generic::operator::Operator;
use timely::dataflow::operators::{Input, Inspect, Probe};
use timely::dataflow::{InputHandle, ProbeHandle};

/// What to run.
#[derive(Clone)]
pub struct VideoSpec {
    pub post_id: String,
    /// The post's country (ISO 3166 alpha-2).
    pub country: String,
    pub cameras: Vec<CameraConfig>,
    /// Opens a camera's source on its worker
    /// (`borderflow_connectors::camera_opener`).
    pub open: CameraOpener,
    pub video: VideoOptions,
    pub reader: PlateReaderOptions,
    pub runtime: Runtime,
    /// Keep every read for the final report (offline runs). A live post
    /// takes its reads from [`VideoRun::reads`] and keeps none here, so a
    /// run of months does not grow without bound.
    pub keep_reads: bool,
    /// Where each processed frame goes, with its tracks, while someone
    /// watches (the operator console); none: nowhere.
    pub live: Option<Arc<LiveFrames>>,
}

impl VideoSpec {
    /// Defaults for a post: the plate reader prefers the post's country and
    /// reads one pass (tracks give it many looks at each plate).
    pub fn new(post_id: &str, country: &str, cameras: Vec<CameraConfig>, open: CameraOpener, runtime: Runtime) -> Self {
        // A tracked plate is read in many frames and the readings vote, which
        // does what a second recognizer does for a single photo.
        let reader = PlateReaderOptions { prefer_country: Some(country.to_string()), refine_regions: 0, second_opinions: 0, ..Default::default() };
        VideoSpec {
            post_id: post_id.to_string(),
            country: country.to_string(),
            cameras,
            open,
            video: VideoOptions::default(),
            reader,
            runtime,
            keep_reads: true,
            live: None,
        }
    }
}

/// What a run did.
#[derive(Debug, Default)]
pub struct VideoReport {
    /// Every read, in the order the workers produced them.
    pub reads: Vec<PlateRead>,
    pub health: Vec<CameraHealth>,
    /// Cameras that failed and workers that could not start, with causes.
    pub errors: Vec<String>,
    /// Time per step, summed over cameras.
    pub times: StageTimes,
    pub wall: Duration,
}

/// Frames and ends of streams, as the dataflow's input carries them.
#[derive(Clone)]
enum VideoEvent {
    Frame(Frame),
    End(Arc<str>),
}

/// A run of cameras on timely workers, in the background.
pub struct VideoRun {
    stats: Vec<Arc<CameraStats>>,
    stop: Arc<AtomicBool>,
    reads: Receiver<PlateRead>,
    keep_reads: bool,
    /// Gathers the workers' totals into the report.
    thread: JoinHandle<VideoReport>,
    /// Keeps the workers running while the cameras do.
    runtime: Runtime,
}

impl VideoRun {
    /// Starts every camera of `spec`. Recordings end by themselves; live
    /// cameras run until [`stop`](Self::stop).
    pub fn start(spec: VideoSpec) -> VideoRun {
        VideoRun::start_inner(spec, None)
    }

    /// [`start`](Self::start), and each read's plate crop (from its best
    /// frame) by read id, sent before the read itself; the receiver outlives the run.
    pub fn start_with_crops(mut spec: VideoSpec) -> (VideoRun, Receiver<(String, PlateCrop)>) {
        spec.video.keep_crops = true;
        let (sender, crops) = channel();
        (VideoRun::start_inner(spec, Some(sender)), crops)
    }

    fn start_inner(spec: VideoSpec, crops: Option<Sender<(String, PlateCrop)>>) -> VideoRun {
        let started = Instant::now();
        let stats: Vec<Arc<CameraStats>> = spec.cameras.iter().map(|c| Arc::new(CameraStats::new(&c.id))).collect();
        let stop = Arc::new(AtomicBool::new(false));
        let (sender, reads) = channel();
        let (totals_in, totals) = channel();
        let keep_reads = spec.keep_reads;
        let runtime = spec.runtime.clone();
        let workers = runtime.workers();
        let queued = start_workers(spec, stats.clone(), Arc::clone(&stop), sender, crops, totals_in);
        let report_stats = stats.clone();
        let thread = std::thread::spawn(move || {
            let mut report = VideoReport::default();
            match queued {
                Ok(()) => {
                    for _ in 0..workers {
                        match totals.recv() {
                            Ok(totals) => {
                                let WorkerTotals { reads, times, errors } = totals;
                                report.reads.extend(reads);
                                report.times.add(&times);
                                report.errors.extend(errors);
                            }
                            Err(_) => {
                                report.errors.push("a video worker stopped before its cameras ended".into());
                                break;
                            }
                        }
                    }
                }
                Err(e) => report.errors.push(format!("the video workers could not start: {e}")),
            }
            report.reads.sort_by(|a, b| (a.captured_at_ms, &a.camera_id).cmp(&(b.captured_at_ms, &b.camera_id)));
            report.health = report_stats.iter().map(|s| s.health()).collect();
            report.wall = started.elapsed();
            report
        });
        VideoRun { stats, stop, reads, keep_reads, thread, runtime }
    }

    /// Each camera's health now.
    pub fn camera_health(&self) -> Vec<CameraHealth> {
        self.stats.iter().map(|s| s.health()).collect()
    }

    /// Each camera's live counters (for an engine to report, see
    /// `Engine::attach_cameras`).
    pub fn camera_stats(&self) -> Vec<Arc<CameraStats>> {
        self.stats.clone()
    }

    /// Reads as they are emitted (also in the final report when the spec
    /// keeps reads; otherwise the report has those not taken from here).
    pub fn reads(&self) -> &Receiver<PlateRead> {
        &self.reads
    }

    pub fn is_finished(&self) -> bool {
        self.thread.is_finished()
    }

    /// Waits for every camera to finish (recordings only; live cameras run on).
    pub fn wait(self) -> VideoReport {
        let mut report =
            self.thread.join().unwrap_or_else(|_| VideoReport { errors: vec!["a video worker panicked".into()], ..Default::default() });
        if !self.keep_reads {
            // The workers have stopped: what they sent and nobody took is all here.
            report.reads.extend(self.reads.try_iter());
        }
        drop(self.runtime);
        report
    }

    /// Stops every camera, then returns the report.
    pub fn stop(self) -> VideoReport {
        self.stop.store(true, Ordering::Relaxed);
        self.runtime.wake();
        self.wait()
    }
}

/// Runs `spec` to the end on this thread.
pub fn run_video(spec: VideoSpec) -> VideoReport {
    VideoRun::start(spec).wait()
}

/// What one worker's cameras produced, sent when they have all ended.
struct WorkerTotals {
    reads: Vec<PlateRead>,
    times: StageTimes,
    errors: Vec<String>,
}

/// Leaves a [`CameraTask`] on every worker of the spec's runtime: the
/// worker's cameras, their dataflow (detect, track, recognise, vote) and
/// its input.
fn start_workers(
    spec: VideoSpec,
    stats: Vec<Arc<CameraStats>>,
    stop: Arc<AtomicBool>,
    sender: Sender<PlateRead>,
    crop_sender: Option<Sender<(String, PlateCrop)>>,
    totals: Sender<WorkerTotals>,
) -> Result<(), String> {
    let by_camera: Arc<HashMap<String, Arc<CameraStats>>> =
        Arc::new(stats.iter().map(|s| (s.camera_id().to_string(), Arc::clone(s))).collect());
    let runtime = spec.runtime.clone();
    let id = runtime.next_id();
    // The job holds no runtime: a task must not keep the workers alive.
    let spec = Arc::new(VideoSpec { runtime: Runtime::with_workers(1), ..spec });
    let (sender, crop_sender, totals) = (Mutex::new(sender), Mutex::new(crop_sender), Mutex::new(totals));
    runtime.on_every_worker(move |worker, tasks| {
        let (index, peers) = (worker.index(), worker.peers());
        let mut errors = Vec::new();
        // Cameras are dealt round-robin in the spec's order: balanced, and
        // stable for a given configuration.
        let mut mine: Vec<CameraConfig> =
            spec.cameras.iter().enumerate().filter(|(i, _)| i % peers == index).map(|(_, c)| c.clone()).collect();
        // Every worker builds the dataflow, cameras or not (timely's rule);
        // one without cameras closes its input at once.
        let reader = if mine.is_empty() {
            None
        } else {
            match PlateReader::new(spec.reader.clone()) {
                Ok(reader) => Some(Rc::new(RefCell::new(reader))),
                Err(e) => {
                    let ids: Vec<&str> = mine.iter().map(|c| c.id.as_str()).collect();
                    let message = format!("cameras {}: the plate reader cannot start: {e}", ids.join(", "));
                    tracing::error!("{message}");
                    errors.push(message);
                    mine.clear();
                    None
                }
            }
        };
        let sender = sender.lock().map(|s| s.clone()).ok();
        let crops = crop_sender.lock().ok().and_then(|s| s.clone());
        let reads = Rc::new(RefCell::new(Vec::new()));
        let times = Rc::new(RefCell::new(StageTimes::default()));
        let failed = Rc::new(RefCell::new(Vec::new()));
        let probe = ProbeHandle::new();
        let input = build_dataflow(worker, &spec, &mine, reader, &by_camera, sender, crops, &reads, &times, &failed, &probe);
        let sources: Vec<Box<dyn FrameSource>> = mine
            .iter()
            .map(|c| {
                let stats = by_camera.get(&c.id).cloned().unwrap_or_else(|| Arc::new(CameraStats::new(&c.id)));
                (spec.open)(c, stats)
            })
            .collect();
        let Ok(totals) = totals.lock().map(|t| t.clone()) else { return };
        let done = vec![false; sources.len()];
        tasks.insert(
            id,
            CameraTask { sources, done, input: Some(input), probe, now_ms: 0, stop: Arc::clone(&stop), reads, times, failed, errors, totals: Some(totals) },
        );
    })
}

/// The worker's dataflow: frames in, reads out (to the sender, and kept
/// when the spec keeps reads).
#[allow(clippy::too_many_arguments)]
fn build_dataflow(
    worker: &mut Worker,
    spec: &VideoSpec,
    mine: &[CameraConfig],
    reader: Option<Rc<RefCell<PlateReader>>>,
    by_camera: &Arc<HashMap<String, Arc<CameraStats>>>,
    sender: Option<Sender<PlateRead>>,
    crops: Option<Sender<(String, PlateCrop)>>,
    reads: &Rc<RefCell<Vec<PlateRead>>>,
    times: &Rc<RefCell<StageTimes>>,
    failed: &Rc<RefCell<Vec<String>>>,
    probe: &ProbeHandle<u64>,
) -> InputHandle<u64, CapacityContainerBuilder<Vec<VideoEvent>>> {
    worker.dataflow::<u64, _, _>(|scope| {
        let (input, frames) = scope.new_input::<Vec<VideoEvent>>();
        let mut readers: HashMap<Arc<str>, CameraReader> = mine
            .iter()
            .map(|c| (Arc::from(c.id.as_str()), CameraReader::new(&spec.post_id, &spec.country, c.clone(), spec.video.clone())))
            .collect();
        let (stats, times, failed) = (Arc::clone(by_camera), Rc::clone(times), Rc::clone(failed));
        let live = spec.live.clone();
        frames
            .unary::<CapacityContainerBuilder<Vec<PlateRead>>, _, _, _>(Pipeline, "detect_track_recognise_vote", move |_, _| {
                move |input, output| {
                    input.for_each_stamp(|time, batches| {
                        let mut session = output.session(&time);
                        for batch in batches {
                            for event in batch.drain(..) {
                                let (camera, result) = match &event {
                                    VideoEvent::Frame(frame) => {
                                        let (Some(camera), Some(reader)) = (readers.get_mut(&frame.camera_id), &reader) else { continue };
                                        let before = camera.times().clone();
                                        let result = camera.process(frame, &mut reader.borrow_mut());
                                        if let Some(s) = stats.get(&*frame.camera_id) {
                                            s.frame_processed();
                                            let after = camera.times();
                                            if after.detections > before.detections {
                                                s.detect_seconds.observe((after.detect - before.detect).as_secs_f64());
                                            }
                                            if after.recognitions > before.recognitions {
                                                s.recognise_seconds.observe((after.recognise - before.recognise).as_secs_f64());
                                            }
                                        }
                                        if let Some(live) = live.as_ref().filter(|l| l.watching()) {
                                            live.put(LiveFrame {
                                                frame: frame.clone(),
                                                tracks: camera.live_tracks(),
                                                counting_line: camera.camera().counting_line,
                                                processed_wall_ms: wall_ms(),
                                                seq: 0,
                                            });
                                        }
                                        (camera, result)
                                    }
                                    VideoEvent::End(id) => {
                                        let Some(camera) = readers.get_mut(id) else { continue };
                                        let reads = camera.finish();
                                        times.borrow_mut().add(camera.times());
                                        (camera, Ok(reads))
                                    }
                                };
                                match result {
                                    Ok(reads) => {
                                        if let Some(crops) = &crops {
                                            for read in &reads {
                                                if let Some(crop) = camera.take_crop(&read.read_id) {
                                                    let _ = crops.send((read.read_id.clone(), crop));
                                                }
                                            }
                                        }
                                        session.give_iterator(reads.into_iter())
                                    }
                                    Err(e) => {
                                        let message = format!("camera {}: plate reading failed: {e}", camera.camera().id);
                                        tracing::error!("{message}");
                                        if let Some(s) = stats.get(&camera.camera().id) {
                                            s.set_error(message.clone());
                                        }
                                        failed.borrow_mut().push(message);
                                    }
                                }
                            }
                        }
                    });
                }
            })
            .inspect({
                let reads = Rc::clone(reads);
                let keep = spec.keep_reads;
                move |read: &PlateRead| {
                    if let Some(sender) = &sender {
                        let _ = sender.send(read.clone());
                    }
                    if keep {
                        reads.borrow_mut().push(read.clone());
                    }
                }
            })
            .probe_with(probe);
        input
    })
}

fn wall_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// One worker's cameras: polls their sources and feeds the frames into the
/// worker's dataflow; when every camera has ended (or the run is stopped),
/// closes the input, waits for the dataflow to drain and sends the totals.
struct CameraTask {
    sources: Vec<Box<dyn FrameSource>>,
    done: Vec<bool>,
    input: Option<InputHandle<u64, CapacityContainerBuilder<Vec<VideoEvent>>>>,
    probe: ProbeHandle<u64>,
    /// The latest frame time this worker has seen: its timely time.
    now_ms: u64,
    stop: Arc<AtomicBool>,
    reads: Rc<RefCell<Vec<PlateRead>>>,
    times: Rc<RefCell<StageTimes>>,
    failed: Rc<RefCell<Vec<String>>>,
    errors: Vec<String>,
    totals: Option<Sender<WorkerTotals>>,
}

impl Task for CameraTask {
    fn poll(&mut self, _: &mut Worker) -> Poll {
        let Some(input) = &mut self.input else {
            if !self.probe.done() {
                return Poll::Busy;
            }
            let mut errors = std::mem::take(&mut self.errors);
            errors.extend(self.failed.take());
            if let Some(totals) = self.totals.take() {
                let _ = totals.send(WorkerTotals { reads: self.reads.take(), times: self.times.borrow().clone(), errors });
            }
            return Poll::Done;
        };
        if self.stop.load(Ordering::Relaxed) {
            for (i, source) in self.sources.iter().enumerate() {
                if !self.done[i] {
                    input.send(VideoEvent::End(Arc::from(source.camera_id())));
                    self.done[i] = true;
                }
            }
        }
        let mut fed = false;
        for (i, source) in self.sources.iter().enumerate() {
            if self.done[i] {
                continue;
            }
            match source.try_next_event() {
                Some(FrameEvent::Frame(frame)) => {
                    self.now_ms = self.now_ms.max(frame.captured_at_ms.max(0) as u64);
                    if self.now_ms > *input.time() {
                        input.advance_to(self.now_ms);
                    }
                    input.send(VideoEvent::Frame(frame));
                    fed = true;
                }
                Some(FrameEvent::Failed(error)) => {
                    tracing::error!("{error}");
                    self.errors.push(error);
                    input.send(VideoEvent::End(Arc::from(source.camera_id())));
                    self.done[i] = true;
                }
                Some(FrameEvent::Ended) => {
                    input.send(VideoEvent::End(Arc::from(source.camera_id())));
                    self.done[i] = true;
                }
                // Finished without a last event (stopped): nothing more will come.
                None if source.is_finished() && source.try_next_event().is_none() => {
                    input.send(VideoEvent::End(Arc::from(source.camera_id())));
                    self.done[i] = true;
                }
                None => {}
            }
        }
        // No waiting for the probe: another worker's cameras (down, or on
        // another clock) must not hold this one back.
        input.flush();
        if self.done.iter().all(|d| *d) {
            self.sources.clear();
            self.input = None;
            return Poll::Busy;
        }
        if fed { Poll::Busy } else { Poll::Idle }
    }
}
