//! `/metrics` of a serving post (`[serve] metrics_listen`), in the
//! OpenMetrics text format Prometheus scrapes (prometheus-client).
//!
//! The engine thread publishes what it knows after each turn of its loop
//! into an [`EngineState`] (reads held, camera health, the exchange's
//! status) and times each commit into [`PostMetrics::commit_seconds`]; the
//! connectors' own counters (feeds, webhooks, the bus) are read at the
//! scrape. No metric carries a plate: labels are cameras, feeds, webhooks,
//! peers and sources.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use borderflow_types::{CameraHealth, CameraState, CameraStats, ExchangeStatus, PeerState, WalStats};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::feed::FeedHandle;
use crate::mqtt::Mqtt;
use crate::webhook::Webhook;

type Labels = Vec<(String, String)>;

/// What the engine thread last published.
#[derive(Clone, Debug, Default)]
pub struct EngineState {
    pub live_reads: u64,
    pub pre_arrival_reads: u64,
    pub cameras: Vec<CameraHealth>,
    pub exchange: Option<ExchangeStatus>,
}

/// Everything `/metrics` reports.
pub struct PostMetrics {
    pub post_id: String,
    pub state: Mutex<EngineState>,
    /// Seconds per commit (log append, apply, views), by what was committed:
    /// `scenario`, `cameras`, `feeds`, `exchange`.
    pub commit_seconds: Family<Labels, Histogram>,
    pub feeds: Mutex<Vec<FeedHandle>>,
    pub mqtt: Mutex<Option<Mqtt>>,
    pub webhooks: Mutex<Vec<Webhook>>,
    /// The cameras' live counters, for their detection and recognition times.
    pub cameras: Mutex<Vec<Arc<CameraStats>>>,
    /// The Flight SQL server's requests by kind and outcome.
    pub sql_requests: crate::flight_sql::RequestCounts,
    /// The write-ahead log's appends.
    pub wal: Mutex<Option<Arc<WalStats>>>,
    /// Reads the engine took, by camera (the post's cameras, feeds' cameras, the scenario's).
    pub reads: Family<Labels, Counter>,
}

fn commit_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 16))
}

impl PostMetrics {
    pub fn new(post_id: &str) -> PostMetrics {
        PostMetrics {
            post_id: post_id.to_string(),
            state: Mutex::new(EngineState::default()),
            commit_seconds: Family::new_with_constructor(commit_histogram as fn() -> Histogram),
            feeds: Mutex::default(),
            mqtt: Mutex::default(),
            webhooks: Mutex::default(),
            cameras: Mutex::default(),
            sql_requests: Default::default(),
            wal: Mutex::default(),
            reads: Family::default(),
        }
    }

    /// Counts reads the engine has just taken.
    pub fn count_reads(&self, reads: &[borderflow_types::PlateRead]) {
        for read in reads {
            self.reads.get_or_create(&vec![("camera".to_string(), read.camera_id.clone())]).inc();
        }
    }

    /// Notes a commit of `source` that took `seconds`.
    pub fn commit(&self, source: &str, seconds: f64) {
        self.commit_seconds.get_or_create(&vec![("source".to_string(), source.to_string())]).observe(seconds);
    }

    /// The metrics now, as OpenMetrics text.
    pub fn render(&self) -> String {
        let mut registry = Registry::with_prefix("borderflow");
        let state = self.state.lock().map(|s| s.clone()).unwrap_or_default();
        let post = || vec![("post".to_string(), self.post_id.clone())];
        gauge(&mut registry, "reads_held", "Reads the engine holds (within the reads' retention)", &[(post(), state.live_reads as i64)]);
        gauge(&mut registry, "pre_arrival_reads_held", "Pre-arrival reads from the neighbour the engine holds", &[(post(), state.pre_arrival_reads as i64)]);
        registry.register("commit_seconds", "Seconds per commit, by what was committed", self.commit_seconds.clone());
        if let Some(wal) = self.wal.lock().ok().and_then(|w| w.clone()) {
            counter(&mut registry, "wal_bytes", "Bytes appended to the write-ahead log", &[(post(), wal.bytes.load(Ordering::Relaxed))]);
            counter(&mut registry, "wal_records", "Records appended to the write-ahead log", &[(post(), wal.records.load(Ordering::Relaxed))]);
            registry.register("wal_sync_seconds", "Seconds per append until it is durable (write and fsync)", wal.sync_seconds.clone());
        }
        registry.register("reads", "Reads the engine took, by camera", self.reads.clone());
        registry.register("sql_requests", "Flight SQL requests, by request and outcome (ok, refused, error)", self.sql_requests.clone());

        let camera = |c: &CameraHealth| vec![("camera".to_string(), c.camera_id.clone())];
        let cams = &state.cameras;
        counter(&mut registry, "camera_frames_in", "Frames the camera delivered", &cams.iter().map(|c| (camera(c), c.frames_in)).collect::<Vec<_>>());
        counter(&mut registry, "camera_frames_processed", "Frames the operators processed", &cams.iter().map(|c| (camera(c), c.frames_processed)).collect::<Vec<_>>());
        counter(&mut registry, "camera_frames_dropped", "Frames dropped because the engine was behind", &cams.iter().map(|c| (camera(c), c.frames_dropped)).collect::<Vec<_>>());
        counter(&mut registry, "camera_frames_skipped", "Frames skipped by max_fps", &cams.iter().map(|c| (camera(c), c.frames_skipped)).collect::<Vec<_>>());
        counter(&mut registry, "camera_reconnects", "Times the camera's stream was reopened", &cams.iter().map(|c| (camera(c), c.reconnects)).collect::<Vec<_>>());
        gauge(&mut registry, "camera_up", "1 when the camera delivers frames", &cams.iter().map(|c| (camera(c), i64::from(c.state == CameraState::Up))).collect::<Vec<_>>());
        counter(&mut registry, "camera_segments_recorded", "Video segments the camera's recording closed", &cams.iter().map(|c| (camera(c), c.segments_recorded)).collect::<Vec<_>>());
        counter(&mut registry, "camera_recorded_bytes", "Bytes of video the camera's recording wrote", &cams.iter().map(|c| (camera(c), c.recorded_bytes)).collect::<Vec<_>>());
        counter(&mut registry, "camera_recording_errors", "Recording failures and video dropped because the disk fell behind", &cams.iter().map(|c| (camera(c), c.recording_errors)).collect::<Vec<_>>());
        let stats = self.cameras.lock().map(|c| c.clone()).unwrap_or_default();
        registry.register_collector(Box::new(CameraHistograms { name: "camera_detect_seconds", help: "Seconds the plate detector took per detected frame", cameras: stats.clone(), of: |s| &s.detect_seconds }));
        registry.register_collector(Box::new(CameraHistograms { name: "camera_recognise_seconds", help: "Seconds plate recognition took per frame with plates to read", cameras: stats, of: |s| &s.recognise_seconds }));

        if let Some(x) = &state.exchange {
            let peer = || vec![("peer".to_string(), x.peer.clone())];
            gauge(&mut registry, "exchange_peer_up", "1 when the neighbour's post is connected", &[(peer(), i64::from(x.peer_state == PeerState::Connected))]);
            gauge(&mut registry, "exchange_outbox_batches", "Pre-arrival batches waiting for the neighbour", &[(peer(), x.outbox_batches as i64)]);
            gauge(&mut registry, "exchange_outbox_rows", "Pre-arrival rows waiting for the neighbour", &[(peer(), x.outbox_rows as i64)]);
            counter(&mut registry, "exchange_sent_batches", "Pre-arrival batches sent", &[(peer(), x.sent_batches)]);
            counter(&mut registry, "exchange_acked_batches", "Pre-arrival batches the neighbour acknowledged (through this sequence number)", &[(peer(), x.acked_through)]);
            counter(&mut registry, "exchange_received_rows", "Pre-arrival rows received from the neighbour", &[(peer(), x.received_rows)]);
            counter(&mut registry, "exchange_duplicate_rows", "Pre-arrival rows received again", &[(peer(), x.duplicate_rows)]);
            counter(&mut registry, "exchange_refused", "Exchange requests refused", &[(peer(), x.refused)]);
        }

        let feeds = self.feeds.lock().map(|f| f.clone()).unwrap_or_default();
        let feed = |f: &FeedHandle| vec![("feed".to_string(), f.id.clone())];
        for (name, help, value) in [
            ("feed_requests", "Requests a feed answered", (|f: &FeedHandle| f.counters.requests.load(Ordering::Relaxed)) as fn(&FeedHandle) -> u64),
            ("feed_reads", "Reads a feed's events gave the engine", |f| f.counters.reads.load(Ordering::Relaxed)),
            ("feed_repeated", "Events the engine held already", |f| f.counters.repeated.load(Ordering::Relaxed)),
            ("feed_ignored", "Heartbeats, other alarms, vehicles without a plate", |f| f.counters.ignored.load(Ordering::Relaxed)),
            ("feed_malformed", "Requests refused as malformed (4xx)", |f| f.counters.malformed.load(Ordering::Relaxed)),
            ("feed_unauthorized", "Requests without a valid token or certificate", |f| f.counters.unauthorized.load(Ordering::Relaxed)),
            ("feed_unavailable", "Requests the engine could not take (503)", |f| f.counters.unavailable.load(Ordering::Relaxed)),
        ] {
            counter(&mut registry, name, help, &feeds.iter().map(|f| (feed(f), value(f))).collect::<Vec<_>>());
        }

        let hooks: Vec<_> = self.webhooks.lock().map(|w| w.iter().map(Webhook::status).collect()).unwrap_or_default();
        let hook = |name: &str| vec![("webhook".to_string(), name.to_string())];
        gauge(&mut registry, "webhook_pending", "Rows waiting for delivery", &hooks.iter().map(|s| (hook(&s.name), s.pending as i64)).collect::<Vec<_>>());
        counter(&mut registry, "webhook_delivered", "Rows delivered", &hooks.iter().map(|s| (hook(&s.name), s.delivered)).collect::<Vec<_>>());
        counter(&mut registry, "webhook_refused", "Rows the receiver refused for good", &hooks.iter().map(|s| (hook(&s.name), s.refused)).collect::<Vec<_>>());
        counter(&mut registry, "webhook_failures", "Failed deliveries (each tried again)", &hooks.iter().map(|s| (hook(&s.name), s.failures)).collect::<Vec<_>>());

        if let Ok(mqtt) = self.mqtt.lock()
            && let Some(mqtt) = mqtt.as_ref()
        {
            let c = &mqtt.counters;
            gauge(&mut registry, "mqtt_pending", "Messages waiting for the broker's acknowledgement", &[(post(), mqtt.pending() as i64)]);
            counter(&mut registry, "mqtt_published", "Messages the broker acknowledged", &[(post(), c.published.load(Ordering::Relaxed))]);
            counter(&mut registry, "mqtt_dropped", "Messages dropped with the outbox full", &[(post(), c.dropped.load(Ordering::Relaxed))]);
            counter(&mut registry, "mqtt_reads_in", "Reads taken from the input topic", &[(post(), c.reads_in.load(Ordering::Relaxed))]);
            counter(&mut registry, "mqtt_malformed_in", "Input messages that were not reads", &[(post(), c.malformed_in.load(Ordering::Relaxed))]);
            counter(&mut registry, "mqtt_disconnects", "Connections to the broker lost", &[(post(), c.disconnects.load(Ordering::Relaxed))]);
        }

        let mut text = String::new();
        // Writing into a String does not fail.
        let _ = encode(&mut text, &registry);
        text
    }
}

/// One histogram a camera, kept by the camera's workers in its
/// [`CameraStats`], written as one family labelled by camera (a
/// collector: the histograms are the workers', not copies).
struct CameraHistograms {
    name: &'static str,
    help: &'static str,
    cameras: Vec<Arc<CameraStats>>,
    of: fn(&CameraStats) -> &Histogram,
}

impl std::fmt::Debug for CameraHistograms {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CameraHistograms").field("name", &self.name).finish()
    }
}

impl Collector for CameraHistograms {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        if self.cameras.is_empty() {
            return Ok(());
        }
        let mut family = encoder.encode_descriptor(self.name, self.help, None, prometheus_client::metrics::MetricType::Histogram)?;
        for stats in &self.cameras {
            let labels = vec![("camera".to_string(), stats.camera_id().to_string())];
            (self.of)(stats).encode(family.encode_family(&labels)?)?;
        }
        Ok(())
    }
}

fn counter(registry: &mut Registry, name: &str, help: &str, values: &[(Labels, u64)]) {
    let family = Family::<Labels, Counter>::default();
    for (labels, value) in values {
        family.get_or_create(labels).inc_by(*value);
    }
    registry.register(name, help, family);
}

fn gauge(registry: &mut Registry, name: &str, help: &str, values: &[(Labels, i64)]) {
    let family = Family::<Labels, Gauge>::default();
    for (labels, value) in values {
        family.get_or_create(labels).set(*value);
    }
    registry.register(name, help, family);
}

/// Serves `GET /metrics` on `listen` (on the current tokio runtime).
pub async fn serve_metrics(listen: &str, metrics: Arc<PostMetrics>) -> Result<SocketAddr, String> {
    let listener = tokio::net::TcpListener::bind(listen).await.map_err(|e| format!("metrics: listening on {listen}: {e}"))?;
    let bound = listener.local_addr().map_err(|e| e.to_string())?;
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let metrics = metrics.clone();
            async move { ([(axum::http::header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], metrics.render()) }
        }),
    );
    tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, app).await {
            tracing::warn!(%error, "the metrics endpoint stopped");
        }
    });
    Ok(bound)
}
