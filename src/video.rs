//! Cameras into plate reads on timely workers.
//!
//! Each camera belongs to one worker (dealt round-robin in the order of the
//! spec's cameras, so a post's cameras spread evenly); the worker
//! opens its cameras' sources, feeds their frames into its own dataflow and
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

use borderflow_connectors::{CameraEvent, CameraSource, CameraSourceOptions};
use borderflow_engine::{CameraConfig, CameraHealth, CameraStats, Frame, PlateRead, Runtime};
use borderflow_operators::{CameraReader, PlateCrop, PlateReader, PlateReaderOptions, StageTimes, VideoOptions};
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::generic::operator::Operator;
use timely::dataflow::operators::{Input, Inspect, Probe};
use timely::dataflow::ProbeHandle;

/// What to run.
#[derive(Clone, Debug)]
pub struct VideoSpec {
    pub post_id: String,
    /// The post's country (ISO 3166 alpha-2).
    pub country: String,
    pub cameras: Vec<CameraConfig>,
    pub source: CameraSourceOptions,
    pub video: VideoOptions,
    pub reader: PlateReaderOptions,
    pub runtime: Runtime,
    /// Keep every read for the final report (offline runs). A live post
    /// takes its reads from [`VideoRun::reads`] and keeps none here, so a
    /// run of months does not grow without bound.
    pub keep_reads: bool,
}

impl VideoSpec {
    /// Defaults for a post: the plate reader prefers the post's country and
    /// reads one pass (tracks give it many looks at each plate).
    pub fn new(post_id: &str, country: &str, cameras: Vec<CameraConfig>, runtime: Runtime) -> Self {
        // A tracked plate is read in many frames and the readings vote, which
        // does what a second recognizer does for a single photo.
        let reader = PlateReaderOptions { prefer_country: Some(country.to_string()), refine_regions: 0, second_opinions: 0, ..Default::default() };
        VideoSpec {
            post_id: post_id.to_string(),
            country: country.to_string(),
            cameras,
            source: CameraSourceOptions::default(),
            video: VideoOptions::default(),
            reader,
            runtime,
            keep_reads: true,
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
    thread: JoinHandle<VideoReport>,
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
        let stats: Vec<Arc<CameraStats>> = spec.cameras.iter().map(|c| Arc::new(CameraStats::new(&c.id))).collect();
        let stop = Arc::new(AtomicBool::new(false));
        let (sender, reads) = channel();
        let keep_reads = spec.keep_reads;
        let shared = (Arc::new(spec), stats.clone(), Arc::clone(&stop));
        let thread = std::thread::spawn(move || run(shared.0, shared.1, shared.2, sender, crops));
        VideoRun { stats, stop, reads, keep_reads, thread }
    }

    /// Each camera's health now.
    pub fn camera_health(&self) -> Vec<CameraHealth> {
        self.stats.iter().map(|s| s.health()).collect()
    }

    /// Each camera's live counters (for an engine to report, see
    /// [`crate::Engine::attach_cameras`]).
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
        report
    }

    /// Stops every camera, then returns the report.
    pub fn stop(self) -> VideoReport {
        self.stop.store(true, Ordering::Relaxed);
        self.wait()
    }
}

/// Runs `spec` to the end on this thread.
pub fn run_video(spec: VideoSpec) -> VideoReport {
    VideoRun::start(spec).wait()
}

fn run(
    spec: Arc<VideoSpec>,
    stats: Vec<Arc<CameraStats>>,
    stop: Arc<AtomicBool>,
    sender: Sender<PlateRead>,
    crop_sender: Option<Sender<(String, PlateCrop)>>,
) -> VideoReport {
    let started = Instant::now();
    let errors = Arc::new(Mutex::new(Vec::<String>::new()));
    let totals = Arc::new(Mutex::new((Vec::<PlateRead>::new(), StageTimes::default())));
    let by_camera: Arc<HashMap<String, Arc<CameraStats>>> =
        Arc::new(stats.iter().map(|s| (s.camera_id().to_string(), Arc::clone(s))).collect());
    let (worker_errors, worker_totals) = (Arc::clone(&errors), Arc::clone(&totals));
    let sender = Mutex::new(sender);
    let crop_sender = Mutex::new(crop_sender);
    let result = timely::execute(spec.runtime.timely_config(), move |worker| {
        let (index, peers) = (worker.index(), worker.peers());
        // Cameras are dealt round-robin in the spec's order: balanced, and
        // stable for a given configuration.
        let mine: Vec<CameraConfig> =
            spec.cameras.iter().enumerate().filter(|(i, _)| i % peers == index).map(|(_, c)| c.clone()).collect();
        let report_error = |message: String| {
            tracing::error!("{message}");
            if let Ok(mut e) = worker_errors.lock() {
                e.push(message);
            }
        };
        // Every worker builds the dataflow, cameras or not (timely's rule);
        // one without cameras closes its input at once.
        let mut mine = mine;
        let reader = if mine.is_empty() {
            None
        } else {
            match PlateReader::new(spec.reader.clone()) {
                Ok(reader) => Some(Rc::new(RefCell::new(reader))),
                Err(e) => {
                    let ids: Vec<&str> = mine.iter().map(|c| c.id.as_str()).collect();
                    report_error(format!("cameras {}: the plate reader cannot start: {e}", ids.join(", ")));
                    mine.clear();
                    None
                }
            }
        };
        let sender = sender.lock().map(|s| s.clone()).ok();
        let crops = crop_sender.lock().ok().and_then(|s| s.clone());
        let reads = Rc::new(RefCell::new(Vec::new()));
        let times = Rc::new(RefCell::new(StageTimes::default()));
        let probe = ProbeHandle::new();

        let mut input = worker.dataflow::<u64, _, _>(|scope| {
            let (input, frames) = scope.new_input::<Vec<VideoEvent>>();
            let mut readers: HashMap<Arc<str>, CameraReader> = mine
                .iter()
                .map(|c| (Arc::from(c.id.as_str()), CameraReader::new(&spec.post_id, &spec.country, c.clone(), spec.video.clone())))
                .collect();
            let (stats, times, failed) = (Arc::clone(&by_camera), Rc::clone(&times), Arc::clone(&worker_errors));
            let reader = reader.clone();
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
                                            let result = camera.process(frame, &mut reader.borrow_mut());
                                            if let Some(s) = stats.get(&*frame.camera_id) {
                                                s.frame_processed();
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
                                            if let Ok(mut f) = failed.lock() {
                                                f.push(message);
                                            }
                                        }
                                    }
                                }
                            }
                        });
                    }
                })
                .inspect({
                    let reads = Rc::clone(&reads);
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
                .probe_with(&probe);
            input
        });

        let sources: Vec<CameraSource> = mine
            .iter()
            .map(|c| {
                let stats = by_camera.get(&c.id).cloned().unwrap_or_else(|| Arc::new(CameraStats::new(&c.id)));
                CameraSource::open_with_stats(c, spec.source.clone(), stats)
            })
            .collect();
        let mut done = vec![false; sources.len()];
        let mut now_ms = 0u64;
        while done.iter().any(|d| !d) {
            if stop.load(Ordering::Relaxed) {
                for (i, source) in sources.iter().enumerate() {
                    if !done[i] {
                        input.send(VideoEvent::End(Arc::from(source.camera_id())));
                        done[i] = true;
                    }
                }
                break;
            }
            let mut fed = false;
            for (i, source) in sources.iter().enumerate() {
                if done[i] {
                    continue;
                }
                match source.try_next_event() {
                    Some(CameraEvent::Frame(frame)) => {
                        now_ms = now_ms.max(frame.captured_at_ms.max(0) as u64);
                        if now_ms > *input.time() {
                            input.advance_to(now_ms);
                        }
                        input.send(VideoEvent::Frame(frame));
                        fed = true;
                    }
                    Some(CameraEvent::Failed(error)) => {
                        report_error(error.to_string());
                        input.send(VideoEvent::End(Arc::from(source.camera_id())));
                        done[i] = true;
                    }
                    Some(CameraEvent::Ended) => {
                        input.send(VideoEvent::End(Arc::from(source.camera_id())));
                        done[i] = true;
                    }
                    None if source.is_finished() => {
                        // Finished without a last event (stopped): nothing more will come.
                        if source.try_next_event().is_none() {
                            input.send(VideoEvent::End(Arc::from(source.camera_id())));
                            done[i] = true;
                        }
                    }
                    None => {}
                }
            }
            // Step without waiting for the probe: another worker's cameras
            // (down, or on another clock) must not hold this one back.
            input.flush();
            worker.step();
            if !fed {
                std::thread::sleep(Duration::from_millis(2));
            }
        }
        drop(sources);
        input.close();
        while worker.step() {}
        if let Ok(mut t) = worker_totals.lock() {
            t.0.extend(reads.take());
            t.1.add(&times.borrow());
        }
    });
    let mut report = VideoReport::default();
    match result {
        Ok(guards) => {
            for outcome in guards.join() {
                if let Err(e) = outcome {
                    report.errors.push(format!("a video worker failed: {e}"));
                }
            }
        }
        Err(e) => report.errors.push(format!("the video workers could not start: {e}")),
    }
    if let Ok(mut e) = errors.lock() {
        report.errors.extend(e.drain(..));
    }
    if let Ok(mut t) = totals.lock() {
        report.reads = std::mem::take(&mut t.0);
        report.times = t.1.clone();
    }
    report.reads.sort_by(|a, b| (a.captured_at_ms, &a.camera_id).cmp(&(b.captured_at_ms, &b.camera_id)));
    report.health = stats.iter().map(|s| s.health()).collect();
    report.wall = started.elapsed();
    report
}
