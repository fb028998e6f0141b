//! `borderflow serve --config post.toml`: a post as a service.
//!
//! One thread owns the embedded [`Engine`] and does everything that changes
//! it, in order: the post's own reads, the pre-arrival records the
//! neighbour sends, and the analysts' queries. The post's reads come from
//! its `[scenario]` when the config has one (ticks, as `run --follow`
//! does), else from its `[[camera]]`s ([`CameraFeed`], committed every
//! `pace` of wall time, as `run --source cameras` does). The network runs
//! on a tokio runtime beside it:
//!
//! - the exchange sender ([`ExchangeSender`]): each tick's exit reads are
//!   (or each commit's camera reads') hashed into pre-arrival records and
//!   put in the durable outbox *before*
//!   the reads are pushed into the engine, so a crash between the two
//!   only sends a record twice (the receiver drops repeats by `read_id`);
//! - the exchange receiver (`[serve] exchange_listen`, mutual TLS with the
//!   `[peer]` certificates), whose deliveries the engine thread logs and
//!   applies, then acknowledges;
//! - the Flight SQL server for analysts (`[serve] sql_listen`, see
//!   [`borderflow_connectors::flight_sql`]);
//! - the `[[feed]]` listeners of third-party ANPR cameras
//!   ([`borderflow_connectors::feed`]), whose reads the engine thread takes
//!   like the cameras' (exits into the exchange's outbox first), answering
//!   each request once its reads are logged;
//! - the outlets: the `[mqtt]` bus (reads, risk flags, camera health out;
//!   reads in) and the `[[webhook]]`s, fed from subscriptions to their views
//!   after every commit;
//! - `/metrics` (`[serve] metrics_listen`, [`borderflow_connectors::metrics`]);
//! - the operator console (`[serve] console_listen`,
//!   [`borderflow_connectors::console`]): the cameras' processed frames with
//!   their tracks, and the reads, risk flags and camera health the engine
//!   thread hands it after each commit.
//!
//! After a restart the engine replays its log, and the scenario resumes at
//! the first tick with a read the engine does not have. An unreachable peer
//! never stops the post: the sender retries, the outbox grows, and the
//! exchange's state is logged every few seconds and kept in
//! [`Engine::exchange_status`].

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::RecvTimeoutError;
use std::time::{Duration, Instant};

use borderflow_connectors::exchange::{Delivery, ExchangeSender, ExchangeService, SenderConfig, StatusHandle, TlsFiles, serve_exchange};
use borderflow_engine::{Direction, PlateRead, PostConfig, pre_arrival_records, reads_to_batch};
use borderflow_connectors::engine_handle::{EngineHandle, EngineRequest, EngineTables, FeedPush, Taken};
use borderflow_connectors::console::ConsoleHub;
use borderflow_connectors::metrics::{EngineState, PostMetrics, serve_metrics};
use borderflow_connectors::mqtt::Mqtt;
use borderflow_connectors::outbound::{added_rows, snapshot_rows};
use borderflow_connectors::webhook::Webhook;
use borderflow_engine::{Engine, EngineError};

use std::path::Path;

use crate::cli::{stop_on_signals, storage_url};
use crate::engine::Runtime;
use crate::cli::run::follow::{FollowOptions, first_watchlist, scenario_ticks};
use crate::cli::run::cameras::CameraFeed;

/// How `serve` runs.
#[derive(Clone)]
pub struct ServeOptions {
    /// The scenario's pace, or the cameras' time between commits (`pace`), and the engine's options.
    pub follow: FollowOptions,
    /// Log the exchange's status this often.
    pub status_every: Duration,
    /// Write the views' pending changes at least this often (besides every
    /// `sink_every_commits` commits), so that analysts see them in seconds
    /// when commits are few.
    pub flush_every: Duration,
    /// Timely workers for the cameras (a post without `[scenario]`).
    pub video_runtime: borderflow_engine::Runtime,
    /// Stream reader settings; each camera's own `[[camera]]` settings win.
    pub source: borderflow_connectors::CameraSourceOptions,
    /// Report every camera's counters this often.
    pub camera_health_every: Duration,
    /// Evidence clips for the console (a post with `[recording]`).
    pub clips: Option<borderflow_connectors::console::ClipExporter>,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            follow: FollowOptions::default(),
            status_every: Duration::from_secs(5),
            flush_every: Duration::from_secs(5),
            video_runtime: borderflow_engine::Runtime::default(),
            source: borderflow_connectors::CameraSourceOptions::default(),
            camera_health_every: Duration::from_secs(30),
            clips: None,
        }
    }
}

/// Runs the post until `stop` is set (see the module documentation).
/// `progress` gets one line per event worth telling (recovery, the end of
/// the scenario, listeners).
pub fn serve(config: PostConfig, options: &ServeOptions, stop: Arc<AtomicBool>, progress: &dyn Fn(&str)) -> Result<(), String> {
    let network = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("borderflow-net")
        .enable_all()
        .build()
        .map_err(|e| format!("starting the network runtime: {e}"))?;
    let (ticks, watchlist) = match &config.scenario {
        Some(_) => {
            let (ticks, watchlist) = scenario_ticks(&config, options.follow.tick_ms)?;
            (ticks, Some(watchlist))
        }
        None => (Vec::new(), None),
    };
    let on_cameras = config.scenario.is_none() && !config.cameras.is_empty();
    let serve_config = config.serve.clone().unwrap_or_default();
    let peer = config.peer.clone();
    let mut engine = Engine::open(config, options.follow.engine.clone()).map_err(|e| e.to_string())?;
    let recovery = engine.recovery().clone();
    progress(&format!(
        "recovered {} log records ({} reads) in {:.3}s; {} pre-arrival reads held",
        recovery.records,
        recovery.reads,
        recovery.duration.as_secs_f64(),
        engine.pre_arrival_reads()
    ));
    let post_id = engine.config().post.id.clone();
    let status = StatusHandle::new(peer.as_ref().map_or("", |p| p.post.as_str()));
    engine.attach_exchange(status.clone());
    let (requests, inbox) = std::sync::mpsc::channel::<EngineRequest>();
    let handle = EngineHandle::new(requests.clone());

    // The exchange: sender and receiver.
    let mut sender = None;
    if let Some(peer) = &peer {
        let tls = match (&peer.cert, &peer.key) {
            (Some(cert), Some(key)) => Some(TlsFiles { cert: cert.clone(), key: key.clone(), ca: peer.ca.clone() }),
            _ => None,
        };
        if let Some(endpoint) = &peer.endpoint {
            let config = SenderConfig { post_id: post_id.clone(), peer_post: peer.post.clone(), endpoint: endpoint.clone(), tls: tls.clone(), window: 64 };
            let started = network.block_on(ExchangeSender::start(engine.storage().clone(), config, status.clone())).map_err(|e| e.to_string())?;
            progress(&format!("sending pre-arrival records to {} at {endpoint}", peer.post));
            sender = Some(started);
        }
        if let Some(listen) = &serve_config.exchange_listen {
            let deliver_to = requests.clone();
            let deliver: borderflow_connectors::exchange::Deliver = Arc::new(move |d| deliver_to.send(EngineRequest::Deliver(d)).is_ok());
            let service = ExchangeService::new(&peer.post, deliver, status.clone()).with_key_versions(engine.exchange_keys().versions());
            let bound = network.block_on(serve_exchange(listen, tls.as_ref(), service)).map_err(|e| e.to_string())?;
            progress(&format!("receiving pre-arrival records from {} on {bound}{}", peer.post, if tls.is_some() { " (mutual TLS)" } else { " (plain text)" }));
        }
    }
    let metrics = Arc::new(PostMetrics::new(&post_id));
    if let Ok(mut wal) = metrics.wal.lock() {
        *wal = Some(engine.wal_stats());
    }
    if let Some(listen) = &serve_config.sql_listen {
        let started = borderflow_connectors::flight_sql::start(listen, &serve_config, engine.storage().clone(), &post_id, handle.clone(), metrics.sql_requests.clone());
        let bound = network.block_on(started)?;
        progress(&format!("Flight SQL for analysts on {bound}"));
    }

    // Third-party cameras' events, the message bus, webhooks.
    let mut feeds = Vec::new();
    for feed_config in engine.config().feeds.clone() {
        let country = engine.config().post.country.clone();
        let started = network.block_on(borderflow_connectors::feed::start(feed_config, &post_id, &country, handle.clone()))?;
        progress(&format!("taking plate events of feed {} on {}", started.id, started.bound));
        feeds.push(started);
    }
    let mqtt = engine.config().mqtt.clone().map(|config| {
        let _inside = network.enter();
        progress(&format!("publishing on MQTT broker {}:{} ({})", config.host, config.port, config.reads_topic));
        Mqtt::start(config, handle.clone())
    });
    let mut webhooks = Vec::new();
    let mut taps: Vec<(String, std::sync::mpsc::Receiver<arrow::array::RecordBatch>)> = Vec::new();
    for hook in engine.config().webhooks.clone() {
        if !engine.view_names().contains(&hook.view) {
            return Err(format!("webhook `{}`: the engine has no view `{}` (views: {})", hook.name, hook.view, engine.view_names().join(", ")));
        }
        if !taps.iter().any(|(view, _)| view == &hook.view) {
            taps.push((hook.view.clone(), engine.subscribe(&hook.view).map_err(|e| e.to_string())?));
        }
        let snapshot = engine.snapshot(&hook.view).map_err(|e| e.to_string())?;
        let rows = snapshot_rows(&hook.view, &snapshot)?;
        let (name, url) = (hook.name.clone(), hook.url.clone());
        let started = network.block_on(Webhook::start(hook, &post_id, engine.storage().clone(), rows))?;
        progress(&format!("posting {} rows to webhook {name} at {url} ({} waiting)", started.view, started.status().pending));
        webhooks.push(started);
    }
    // Live views only of cameras this process reads (a scenario stands in for them otherwise).
    let live_cameras = if on_cameras { engine.config().cameras.clone() } else { Vec::new() };
    let console = serve_config.console_listen.as_ref().map(|_| ConsoleHub::new(&post_id, live_cameras));
    if (mqtt.is_some() || console.is_some()) && engine.view_names().iter().any(|v| v == FLAGS_VIEW) && !taps.iter().any(|(view, _)| view == FLAGS_VIEW) {
        taps.push((FLAGS_VIEW.to_string(), engine.subscribe(FLAGS_VIEW).map_err(|e| e.to_string())?));
    }
    let outlets = Outlets { post_id: post_id.clone(), mqtt, webhooks, taps, console: console.clone(), metrics: metrics.clone() };
    if let (Ok(mut f), Ok(mut m), Ok(mut w)) = (metrics.feeds.lock(), metrics.mqtt.lock(), metrics.webhooks.lock()) {
        *f = feeds.clone();
        *m = outlets.mqtt.clone();
        *w = outlets.webhooks.clone();
    }
    if let Some(listen) = &serve_config.metrics_listen {
        let bound = network.block_on(serve_metrics(listen, metrics.clone()))?;
        progress(&format!("metrics on http://{bound}/metrics"));
    }
    if let (Some(listen), Some(hub)) = (&serve_config.console_listen, &console) {
        hub.publish_health(engine.camera_health());
        let started = borderflow_connectors::console::start(listen, &serve_config, engine.storage().clone(), handle.clone(), hub.clone(), options.clips.clone());
        let bound = network.block_on(started)?;
        let scheme = if serve_config.tls_cert.is_some() { "https" } else { "http" };
        progress(&format!("operator console on {scheme}://{bound}/"));
    }

    let mut feed = match on_cameras {
        true => {
            progress(&format!("reading {} camera(s) (the config has no [scenario])", engine.config().cameras.len()));
            let live = console.as_ref().map(|hub| hub.live.clone());
            let started = CameraFeed::start(&mut engine, options.video_runtime.clone(), options.source.clone(), options.camera_health_every, live, progress)?;
            if let Ok(mut stats) = metrics.cameras.lock() {
                *stats = started.camera_stats();
            }
            Some(started)
        }
        false => None,
    };
    // Camera reads taken and not yet pushed (a push failed: tried again at the next commit).
    let mut camera_reads: Vec<PlateRead> = Vec::new();

    // The engine thread's loop: ticks (or camera commits) at their pace, requests in between.
    let mut next = ticks.iter().position(|(time, reads)| {
        if reads.is_empty() {
            *time > engine.log_time_ms()
        } else {
            reads.iter().any(|r| !engine.has_read(&r.read_id))
        }
    });
    if let Some(i) = next
        && i > 0
    {
        progress(&format!("resuming the scenario at tick {i} of {}", ticks.len()));
    }
    let mut next_at = Instant::now();
    let mut status_at = Instant::now() + options.status_every;
    let mut flush_at = Instant::now() + options.flush_every;
    let mut console_health_at = Instant::now();
    let mut told_done = ticks.is_empty();
    // The `[watchlist]` file: read at the scenario's first tick, else now;
    // then every `reload`.
    let reload_every = engine.config().watchlist.as_ref().map(|w| w.reload);
    let mut watchlist_at = match (&watchlist, next) {
        (Some(_), Some(_)) => Instant::now() + reload_every.unwrap_or_default(),
        _ => Instant::now(),
    };
    let mut watchlist_error: Option<String> = None;
    while !stop.load(Ordering::SeqCst) {
        let wait = match next {
            Some(_) => next_at.saturating_duration_since(Instant::now()),
            None => Duration::from_millis(100),
        };
        match inbox.recv_timeout(wait.min(Duration::from_millis(100))) {
            Ok(request) => {
                // Take every request waiting, so that a backlog of
                // deliveries (a peer catching up) is one commit, not hundreds.
                // Likewise the feeds' events waiting: one commit for all.
                let mut deliveries = Vec::new();
                let mut pushes = Vec::new();
                let mut others = Vec::new();
                let mut next_request = Some(request);
                while let Some(request) = next_request.take() {
                    match request {
                        EngineRequest::Deliver(delivery) => deliveries.push(delivery),
                        EngineRequest::PushReads { push, reply } => pushes.push((push, reply)),
                        other => others.push(other),
                    }
                    if deliveries.len() < MAX_DELIVERIES_PER_COMMIT && pushes.len() < MAX_DELIVERIES_PER_COMMIT {
                        next_request = inbox.try_recv().ok();
                    }
                }
                if !deliveries.is_empty() {
                    let started = Instant::now();
                    deliver(&mut engine, deliveries);
                    metrics.commit("exchange", started.elapsed().as_secs_f64());
                }
                if !pushes.is_empty() {
                    let started = Instant::now();
                    push_feeds(&mut engine, sender.as_ref(), &network, &outlets, pushes);
                    metrics.commit("feeds", started.elapsed().as_secs_f64());
                }
                for request in others {
                    handle_request(&mut engine, request);
                }
                // On to the next tick, if it is due: deliveries never starve the post's own reads.
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
        if let Some(every) = reload_every
            && Instant::now() >= watchlist_at
        {
            watchlist_at = Instant::now() + every;
            // In the scenario's time while it runs, else the wall clock's.
            let reloaded = match next {
                Some(_) => engine.reload_watchlist_at(engine.log_time_ms() + 1),
                None => engine.reload_watchlist(),
            };
            match reloaded {
                Ok(Some(change)) => {
                    watchlist_error = None;
                    progress(&format!("watchlist: {} entries, {} new or changed, {} closed", change.entries, change.upserted, change.closed));
                }
                Ok(None) => watchlist_error = None,
                Err(error) => {
                    // The engine logs the refusal; the console hears of it
                    // once per refusal, not at every reload.
                    let text = error.to_string();
                    if watchlist_error.as_deref() != Some(text.as_str()) {
                        progress(&format!("watchlist not taken: {text}"));
                        watchlist_error = Some(text);
                    }
                }
            }
        }
        if Instant::now() >= status_at {
            status_at = Instant::now() + options.status_every;
            log_status(&engine);
            for feed in &feeds {
                feed.log();
            }
            outlets.log();
            outlets.publish_health(&engine);
        }
        if Instant::now() >= flush_at {
            flush_at = Instant::now() + options.flush_every;
            if engine.unflushed_commits() > 0
                && let Err(error) = engine.flush()
            {
                tracing::warn!(%error, "writing view changes failed; trying again later");
            }
        }
        outlets.drain();
        publish_state(&engine, &metrics);
        if let Some(hub) = &console
            && Instant::now() >= console_health_at
        {
            console_health_at = Instant::now() + CONSOLE_HEALTH_EVERY;
            hub.publish_health(engine.camera_health());
        }
        if let Some(cameras) = feed.as_mut() {
            if Instant::now() >= next_at {
                next_at = Instant::now() + options.follow.pace;
                let ended = cameras.is_finished();
                camera_reads.extend(cameras.take(&engine));
                if ended {
                    let (rest, video) = cameras.finish(&engine, false);
                    camera_reads.extend(rest);
                    for error in &video.errors {
                        progress(&format!("error: {error}"));
                    }
                }
                cameras.report(&engine, progress);
                let fresh: Vec<PlateRead> = camera_reads.iter().filter(|r| !engine.has_read(&r.read_id)).cloned().collect();
                let started = Instant::now();
                let pushed = send_and_push(&mut engine, sender.as_ref(), &network, &camera_reads);
                if !camera_reads.is_empty() {
                    metrics.commit("cameras", started.elapsed().as_secs_f64());
                }
                match pushed {
                    Ok(()) => {
                        outlets.publish_reads(&fresh);
                        camera_reads.clear();
                    }
                    Err(error) => tracing::warn!(%error, reads = camera_reads.len(), "camera reads not pushed; trying again at the next commit"),
                }
                if ended {
                    progress(&format!("cameras ended: {} reads; serving", engine.live_reads()));
                    feed = None;
                }
            }
            continue;
        }
        let Some(i) = next else {
            if !told_done {
                told_done = true;
                progress(&format!("scenario done: {} reads; serving", engine.live_reads()));
            }
            continue;
        };
        if Instant::now() < next_at {
            continue;
        }
        let (time, reads) = &ticks[i];
        if let Some(sender) = &sender {
            let exits: Vec<PlateRead> = reads.iter().filter(|r| r.direction == Direction::Exit).cloned().collect();
            if !exits.is_empty() {
                let batch = pre_arrival_records(&exits, engine.exchange_keys());
                if let Err(error) = network.block_on(sender.send(batch)) {
                    tracing::warn!(%error, "the exchange outbox could not take a tick's records; trying again");
                    next_at = Instant::now() + Duration::from_millis(500);
                    continue;
                }
            }
        }
        let time = (*time).max(engine.log_time_ms() + 1);
        let started = Instant::now();
        let pushed = match (i, &watchlist) {
            (0, Some(watchlist)) => first_watchlist(&mut engine, watchlist, time),
            _ => engine.push_reads_at(&reads_to_batch(reads), time),
        };
        metrics.commit("scenario", started.elapsed().as_secs_f64());
        match pushed {
            Ok(_) => {
                outlets.publish_reads(reads);
                next = (i + 1 < ticks.len()).then_some(i + 1);
                next_at += options.follow.pace;
                if next_at < Instant::now() {
                    next_at = Instant::now();
                }
            }
            Err(error @ (EngineError::Wal(_) | EngineError::Storage(_) | EngineError::Sink { .. })) => {
                tracing::warn!(%error, "push failed; retrying");
                next_at = Instant::now() + Duration::from_millis(500);
            }
            Err(error) => return Err(error.to_string()),
        }
    }
    if let Some(mut cameras) = feed {
        let (rest, _) = cameras.finish(&engine, true);
        camera_reads.extend(rest);
        if let Err(error) = send_and_push(&mut engine, sender.as_ref(), &network, &camera_reads) {
            tracing::warn!(%error, reads = camera_reads.len(), "the cameras' last reads were not pushed");
        }
    }
    log_status(&engine);
    outlets.drain();
    outlets.log();
    engine.shutdown().map_err(|e| e.to_string())?;
    network.shutdown_timeout(Duration::from_secs(1));
    Ok(())
}

/// Puts the exit reads' pre-arrival records in the exchange's outbox, then
/// pushes the reads into the engine (the same order as the scenario's
/// ticks: a crash between the two only sends a record twice).
fn send_and_push(engine: &mut Engine, sender: Option<&ExchangeSender>, network: &tokio::runtime::Runtime, reads: &[PlateRead]) -> Result<(), String> {
    if reads.is_empty() {
        return Ok(());
    }
    if let Some(sender) = sender {
        let exits: Vec<PlateRead> = reads.iter().filter(|r| r.direction == Direction::Exit).cloned().collect();
        if !exits.is_empty() {
            network.block_on(sender.send(pre_arrival_records(&exits, engine.exchange_keys()))).map_err(|e| format!("exchange outbox: {e}"))?;
        }
    }
    engine.push_reads(&reads_to_batch(reads)).map(|_| ()).map_err(|e| e.to_string())
}

/// What `/metrics` reports of the engine, as of now.
fn publish_state(engine: &Engine, metrics: &PostMetrics) {
    if let Ok(mut state) = metrics.state.lock() {
        *state = EngineState {
            live_reads: engine.live_reads() as u64,
            pre_arrival_reads: engine.pre_arrival_reads() as u64,
            cameras: engine.camera_health(),
            exchange: engine.exchange_status(),
        };
    }
}

/// The view whose new rows go to the message bus and the console as risk flags.
const FLAGS_VIEW: &str = "risk_flags";

/// How often the console hears every camera's health.
const CONSOLE_HEALTH_EVERY: Duration = Duration::from_secs(2);

/// Where reads and view rows go out of the post besides its store: the
/// message bus and the webhooks, fed from subscriptions to their views.
struct Outlets {
    post_id: String,
    mqtt: Option<Mqtt>,
    webhooks: Vec<Webhook>,
    taps: Vec<(String, std::sync::mpsc::Receiver<arrow::array::RecordBatch>)>,
    console: Option<Arc<ConsoleHub>>,
    metrics: Arc<PostMetrics>,
}

impl Outlets {
    /// Hands the rows the views gained since the last call to their outlets.
    fn drain(&self) {
        for (view, changes) in &self.taps {
            for change in changes.try_iter() {
                let rows = match added_rows(view, &change) {
                    Ok(rows) if !rows.is_empty() => rows,
                    Ok(_) => continue,
                    Err(error) => {
                        tracing::warn!(view = %view, %error, "view changes not sent out");
                        continue;
                    }
                };
                if view == FLAGS_VIEW
                    && let Some(mqtt) = &self.mqtt
                {
                    mqtt.publish_flags(&self.post_id, &rows);
                }
                if view == FLAGS_VIEW
                    && let Some(console) = &self.console
                {
                    console.publish_flags(&rows);
                }
                for hook in self.webhooks.iter().filter(|h| &h.view == view) {
                    hook.send(rows.clone());
                }
            }
        }
    }

    fn publish_reads(&self, reads: &[PlateRead]) {
        self.metrics.count_reads(reads);
        if let Some(mqtt) = &self.mqtt {
            mqtt.publish_reads(reads);
        }
        if let Some(console) = &self.console {
            console.publish_reads(reads);
        }
    }

    fn publish_health(&self, engine: &Engine) {
        if let Some(mqtt) = &self.mqtt {
            for health in engine.camera_health() {
                if let Ok(value) = serde_json::to_value(&health) {
                    mqtt.publish_health(&health.camera_id, value);
                }
            }
        }
    }

    fn log(&self) {
        if let Some(mqtt) = &self.mqtt {
            let c = &mqtt.counters;
            tracing::info!(
                pending = mqtt.pending(),
                published = c.published.load(std::sync::atomic::Ordering::Relaxed),
                dropped = c.dropped.load(std::sync::atomic::Ordering::Relaxed),
                reads_in = c.reads_in.load(std::sync::atomic::Ordering::Relaxed),
                malformed_in = c.malformed_in.load(std::sync::atomic::Ordering::Relaxed),
                disconnects = c.disconnects.load(std::sync::atomic::Ordering::Relaxed),
                "mqtt status"
            );
        }
        for hook in &self.webhooks {
            let s = hook.status();
            tracing::info!(webhook = %s.name, pending = s.pending, delivered = s.delivered, refused = s.refused, failures = s.failures, last_error = ?s.last_error, "webhook status");
        }
    }
}

/// Takes reads from the feeds and the bus, all waiting pushes in one
/// commit: stores their crops, puts the exits' pre-arrival records in the
/// exchange's outbox, logs and applies them, publishes the new ones, and
/// answers each push once its reads are in the log.
fn push_feeds(
    engine: &mut Engine,
    sender: Option<&ExchangeSender>,
    network: &tokio::runtime::Runtime,
    outlets: &Outlets,
    pushes: Vec<(FeedPush, tokio::sync::oneshot::Sender<Result<Taken, String>>)>,
) {
    if pushes.is_empty() {
        return;
    }
    let mut seen = std::collections::HashSet::new();
    let mut all: Vec<PlateRead> = Vec::new();
    // Per push: its reads to take, and how many it repeated.
    let mut parts: Vec<(Vec<String>, usize)> = Vec::with_capacity(pushes.len());
    let mut replies = Vec::with_capacity(pushes.len());
    for (FeedPush { source, reads, crops }, reply) in pushes {
        let before = reads.len();
        let mut mine: Vec<PlateRead> = reads.into_iter().filter(|r| !engine.has_read(&r.read_id) && seen.insert(r.read_id.clone())).collect();
        let repeated = before - mine.len();
        for (read_id, jpeg) in crops {
            if let Some(read) = mine.iter_mut().find(|r| r.read_id == read_id) {
                match engine.put_object(&borderflow_engine::history::crop_path(&read.post_id, read.captured_at_ms, &read_id), jpeg) {
                    Ok(url) => read.crop_uri = Some(url),
                    Err(error) => tracing::warn!(%source, %read_id, %error, "plate crop not stored; the read is taken without it"),
                }
            }
        }
        parts.push((mine.iter().map(|r| r.read_id.clone()).collect(), repeated));
        all.extend(mine);
        replies.push(reply);
    }
    let pushed = send_and_push(engine, sender, network, &all);
    // Those the engine holds now (it drops reads older than the reads' retention).
    let fresh: Vec<PlateRead> = match &pushed {
        Ok(()) => all.into_iter().filter(|r| engine.has_read(&r.read_id)).collect(),
        Err(_) => Vec::new(),
    };
    outlets.publish_reads(&fresh);
    for ((ids, repeated), reply) in parts.into_iter().zip(replies) {
        let answer = match &pushed {
            Ok(()) => Ok(Taken { new: ids.iter().filter(|id| engine.has_read(id)).count(), repeated }),
            Err(error) => Err(error.clone()),
        };
        let _ = reply.send(answer);
    }
}

/// Deliveries applied in one commit, at most.
pub const MAX_DELIVERIES_PER_COMMIT: usize = 512;

/// Applies deliveries in one commit (what `serve` does with a backlog of
/// them; public for the exchange benchmark): a read repeated across them (sent
/// again after a reconnect) is kept from its first delivery only, and the
/// engine drops what it holds already. Each delivery is answered with its
/// own (new, repeated) rows.
pub fn deliver(engine: &mut Engine, deliveries: Vec<Delivery>) {
    if deliveries.is_empty() {
        return;
    }
    let mut seen = std::collections::HashSet::new();
    let mut parts = Vec::with_capacity(deliveries.len());
    for delivery in &deliveries {
        let ids = borderflow_connectors::exchange::batch_read_ids(&delivery.batch);
        let fresh: std::collections::HashSet<&String> = ids.iter().filter(|id| !seen.contains(*id)).collect();
        let keep: arrow::array::BooleanArray = match delivery.batch.column(0).as_any().downcast_ref::<arrow::array::StringArray>() {
            Some(column) => column.iter().map(|id| Some(id.is_some_and(|id| fresh.contains(&id.to_string())))).collect(),
            None => arrow::array::BooleanArray::from(vec![false; delivery.batch.num_rows()]),
        };
        let part = arrow::compute::filter_record_batch(&delivery.batch, &keep).unwrap_or_else(|_| delivery.batch.slice(0, 0));
        seen.extend(ids);
        parts.push(part);
    }
    let schema = borderflow_engine::pre_arrival_schema();
    let outcome = arrow::compute::concat_batches(&schema, &parts)
        .map_err(|e| e.to_string())
        .and_then(|all| engine.push_pre_arrival(&all).map_err(|e| e.to_string()));
    match outcome {
        Ok((new, _)) => {
            // Split the new rows over the deliveries in order (for the counters).
            let mut left = new;
            for (delivery, part) in deliveries.into_iter().zip(&parts) {
                let mine = part.num_rows().min(left);
                left -= mine;
                let _ = delivery.done.send(Ok((mine, delivery.batch.num_rows() - mine)));
            }
        }
        Err(error) => {
            tracing::warn!(%error, "pre-arrival records not taken; the peer will send them again");
            for delivery in deliveries {
                let _ = delivery.done.send(Err(format!("pre-arrival records from `{}`: {error}", delivery.from_post)));
            }
        }
    }
}

fn handle_request(engine: &mut Engine, request: EngineRequest) {
    match request {
        EngineRequest::Deliver(delivery) => deliver(engine, vec![delivery]),
        // The serve loop takes pushes itself (they go through the exchange's outbox first).
        EngineRequest::PushReads { reply, .. } => {
            let _ = reply.send(Err("reads are taken by the serve loop".to_string()));
        }
        EngineRequest::Sql { sql, reply } => {
            let _ = reply.send(engine.sql(&sql).map_err(|e| e.to_string()));
        }
        EngineRequest::Tables { reply } => {
            let tables = || -> Result<EngineTables, EngineError> {
                let mut held = EngineTables { tables: Vec::new(), views: Vec::new(), keys: engine.exchange_keys().clone() };
                for name in engine.table_names() {
                    held.tables.push((name.clone(), engine.table(&name)?));
                }
                for name in engine.view_names() {
                    held.views.push((name.clone(), engine.snapshot(&name)?));
                }
                Ok(held)
            };
            let _ = reply.send(tables().map_err(|e| e.to_string()));
        }
    }
}

fn log_status(engine: &Engine) {
    if let Some(status) = engine.exchange_status() {
        tracing::info!(
            peer = %status.peer,
            state = status.peer_state.as_str(),
            outbox_batches = status.outbox_batches,
            outbox_rows = status.outbox_rows,
            oldest_pending_ms = status.oldest_pending_ms,
            last_ack_lag_ms = ?status.last_ack_lag_ms,
            sent_batches = status.sent_batches,
            received_rows = status.received_rows,
            duplicate_rows = status.duplicate_rows,
            refused = status.refused,
            unknown_key_rows = status.unknown_key_rows,
            last_error = ?status.last_error,
            "exchange status"
        );
    }
}

/// `borderflow serve`: runs the post as a service until SIGINT or SIGTERM.
pub fn command(runtime: Runtime, config_path: &Path, storage: Option<&str>, pace_ms: u64, tick_ms: u64, sink_every: u64, standard_views: bool) -> Result<(), String> {
        let mut config = PostConfig::from_file(config_path).map_err(|e| e.to_string())?;
    if let Some(storage) = storage {
        config.storage.url = storage_url(storage)?;
    }
    let mut options = ServeOptions::default();
    options.follow.pace = Duration::from_millis(pace_ms);
    options.follow.tick_ms = tick_ms.max(1);
    options.follow.engine.runtime = runtime.clone();
    options.follow.engine.sink_every_commits = sink_every.max(1);
    options.follow.engine.standard_views = standard_views;
    options.video_runtime = runtime;
    if config.recording.is_some() {
        options.clips = Some(console_clips(config.clone(), config_path.to_path_buf()));
    }
    let stop = stop_on_signals();
    println!("Borderflow post {} ({}) serving, storage {}", config.post.id, config.post.name, config.storage.url);
    serve(config, &options, stop, &|line| println!("{line}")).map_err(|e| format!("{}: {e}", config_path.display()))?;
    println!("stopped");
    Ok(())
}

/// The console's evidence clips: `borderflow clip`'s export (its sidecar
/// and audit record, exported by `console:<user>`) into a folder of its
/// own, the MP4 handed back and the folder removed.
fn console_clips(config: PostConfig, config_path: std::path::PathBuf) -> borderflow_connectors::console::ClipExporter {
    Arc::new(move |read_id: &str, user: &str| {
        let folder = std::env::temp_dir().join(format!("borderflow-clip-{}-{}", std::process::id(), ulid::Ulid::new()));
        let request = crate::cli::clip::ClipRequest {
            config: config_path.clone(),
            read_id: read_id.to_string(),
            before: Duration::from_secs(5),
            after: Duration::from_secs(5),
            out: Some(folder.join(format!("{read_id}.mp4"))),
            user: Some(format!("console:{user}")),
        };
        let exported = crate::cli::clip::export_from(&config, &request).and_then(|export| {
            std::fs::read(&export.clip.path).map_err(|e| format!("{}: {e}", export.clip.path.display()))
        });
        let _ = std::fs::remove_dir_all(&folder);
        exported
    })
}
