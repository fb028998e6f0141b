//! A post on a message bus: `borderflow serve` with `[mqtt]` against a real
//! mosquitto broker started here on 127.0.0.1. Reads (from a feed and from
//! the input topic) and risk flags arrive on their topics; a read published
//! to the input topic reaches the views; a malformed message is dropped and
//! said; with the broker stopped for 30 s while events keep coming,
//! nothing is lost: the outbox sends everything once the broker is back;
//! and a camera's health is there, retained, for a console that subscribes
//! late.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};

const ANALYST: &str = "analyst-token-mq";

/// Messages the control room got: (topic, payload).
type Messages = Arc<Mutex<Vec<(String, serde_json::Value)>>>;

fn mosquitto_binary() -> PathBuf {
    ["/usr/sbin/mosquitto", "/usr/bin/mosquitto"].iter().map(PathBuf::from).find(|p| p.exists()).expect("mosquitto is installed by scripts/setup")
}

/// A broker on `port` that keeps sessions on disk (so a stop and start
/// keeps the control room's subscription, as a production broker does).
fn start_broker(dir: &Path, port: u16) -> (Child, Arc<Mutex<String>>) {
    let conf = dir.join("mosquitto.conf");
    std::fs::write(&conf, format!("listener {port} 127.0.0.1\nallow_anonymous true\npersistence true\npersistence_location {}/\n", dir.display())).expect("conf");
    let (child, log) = common::spawn_logged(Command::new(mosquitto_binary()).arg("-c").arg(&conf));
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(started.elapsed() < Duration::from_secs(10), "mosquitto did not start:\n{}", log.lock().expect("log"));
        std::thread::sleep(Duration::from_millis(50));
    }
    (child, log)
}

fn stop(child: &mut Child) {
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    child.wait().expect("stops");
}

/// The control room: a persistent session subscribed to the post's topics.
fn control_room(runtime: &tokio::runtime::Runtime, port: u16) -> (AsyncClient, Messages) {
    let mut options = MqttOptions::new("control-room", "127.0.0.1", port);
    options.set_clean_session(false);
    options.set_keep_alive(Duration::from_secs(5));
    let (client, mut events) = AsyncClient::new(options, 100);
    let messages: Messages = Arc::default();
    let store = messages.clone();
    let subscriber = client.clone();
    runtime.spawn(async move {
        loop {
            match events.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    let _ = subscriber.subscribe("borderflow/otaci/#", QoS::AtLeastOnce).await;
                }
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    let value = serde_json::from_slice(&p.payload).unwrap_or(serde_json::Value::Null);
                    store.lock().expect("messages").push((p.topic.clone(), value));
                }
                Ok(_) => {}
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
    });
    (client, messages)
}

fn read_ids_on(messages: &Messages, topic: &str) -> BTreeSet<String> {
    messages.lock().expect("messages").iter().filter(|(t, _)| t == topic).filter_map(|(_, v)| v["read_id"].as_str().map(str::to_string)).collect()
}

fn wait_until(what: &str, limit: Duration, log: &Arc<Mutex<String>>, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < limit, "{what} did not happen within {limit:?}; post log:\n{}", log.lock().expect("log"));
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn post_event(runtime: &tokio::runtime::Runtime, port: u16, id: &str, plate: &str, minute: u32) -> String {
    let body = serde_json::json!({ "id": id, "camera": "gate-1", "time": format!("2026-11-27T09:{minute:02}:00Z"), "plate": plate });
    runtime.block_on(async {
        let answer = reqwest::Client::new().post(format!("http://127.0.0.1:{port}/")).json_body(&body).send().await.expect("the feed answers");
        assert_eq!(answer.status().as_u16(), 200);
        let value: serde_json::Value = serde_json::from_str(&answer.text().await.expect("body")).expect("JSON");
        value["read_ids"][0].as_str().expect("a read id").to_string()
    })
}

/// reqwest's `json` needs a feature the engine does not use; the body by hand.
trait JsonBody {
    fn json_body(self, value: &serde_json::Value) -> Self;
}

impl JsonBody for reqwest::RequestBuilder {
    fn json_body(self, value: &serde_json::Value) -> Self {
        self.header("content-type", "application/json").body(value.to_string())
    }
}

#[test]
fn reads_and_flags_go_out_on_the_bus_and_reads_come_in() {
    let dir = tempfile::tempdir().expect("dir");
    let broker_dir = dir.path().join("broker");
    std::fs::create_dir_all(&broker_dir).expect("broker dir");
    let (mqtt_port, sql_port, feed_port, no_camera_port, metrics_port) = (common::free_port(), common::free_port(), common::free_port(), common::free_port(), common::free_port());
    // A folder of three still images as a second camera: its frame counters move.
    let stills = dir.path().join("stills");
    std::fs::create_dir_all(&stills).expect("stills");
    let jpeg = std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/feeds/plate.jpg")).expect("jpeg");
    for i in 0..3 {
        std::fs::write(stills.join(format!("{i:03}.jpg")), &jpeg).expect("still");
    }
    let (mut broker, _) = start_broker(&broker_dir, mqtt_port);
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("runtime");
    let (client, messages) = control_room(&runtime, mqtt_port);

    common::write_tokens(dir.path(), &[("analyst", ANALYST)]);
    std::fs::write(dir.path().join("watchlist.csv"), "plate,reason,severity\nAB1234CD,stolen vehicle report,3\n").expect("watchlist");
    let config = dir.path().join("post.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[post]
id = "otaci"
name = "Otaci"
country = "MD"
crossing = "otaci-mohyliv-podilskyi"

[serve]
sql_listen = "127.0.0.1:{sql_port}"
metrics_listen = "127.0.0.1:{metrics_port}"
tokens = "tokens.toml"

[storage]
url = "file://./data"

[watchlist]
path = "watchlist.csv"

[[feed]]
id = "gate"
format = "json"
listen = "127.0.0.1:{feed_port}"

[[feed.camera]]
device = "gate-1"
id = "otaci-gate-exit-1"
lane = 1
direction = "exit"
point = "departure"

[feed.fields]
event_id = "/id"
camera = "/camera"
plate = "/plate"
time = "/time"

# A camera whose stream server is not there: its health goes out, retained.
[[camera]]
id = "otaci-lane-9"
uri = "rtsp://127.0.0.1:{no_camera_port}/lane-9"
lane = 9
direction = "entry"
point = "arrival"
counting_line = [[0.05, 0.6], [0.95, 0.6]]
from_side = "top"
stall_timeout_ms = 1000

[[camera]]
id = "otaci-stills-8"
uri = "dir://stills"
lane = 8
direction = "exit"
point = "departure"
counting_line = [[0.05, 0.6], [0.95, 0.6]]
from_side = "top"
image_interval_ms = 200

[mqtt]
broker = "mqtt://127.0.0.1:{mqtt_port}"
input_topic = "borderflow/otaci/reads/in"
buffer = 1000
"#
        ),
    )
    .expect("config");
    let (mut post, log) = common::spawn_logged(
        Command::new(env!("CARGO_BIN_EXE_borderflow")).args(["--workers", "1", "serve", "--standard-views", "--config"]).arg(&config),
    );
    wait_until("the feed listening", Duration::from_secs(60), &log, || log.lock().expect("log").contains("taking plate events of feed gate"));
    // The control room is subscribed before the post publishes anything.
    wait_until("the control room subscribed", Duration::from_secs(20), &log, || {
        runtime.block_on(client.publish("borderflow/otaci/probe", QoS::AtLeastOnce, false, "{}")).is_ok() && {
            std::thread::sleep(Duration::from_millis(200));
            messages.lock().expect("messages").iter().any(|(t, _)| t == "borderflow/otaci/probe")
        }
    });

    // A camera's read goes out on the reads topic, its watchlist flag on the flags topic.
    let watchlisted = post_event(&runtime, feed_port, "e-1", "AB 1234 CD", 0);
    wait_until("the read on the bus", Duration::from_secs(20), &log, || read_ids_on(&messages, "borderflow/otaci/reads").contains(&watchlisted));
    wait_until("the flag on the bus", Duration::from_secs(20), &log, || {
        messages.lock().expect("messages").iter().any(|(t, v)| t == "borderflow/otaci/risk_flags" && v["row"]["rule"] == "watchlist_hit" && v["row"]["evidence"] == watchlisted.as_str())
    });

    // A read published by another system reaches the views (and goes out like the others).
    let mut read: serde_json::Value = messages.lock().expect("messages").iter().find(|(t, _)| t == "borderflow/otaci/reads").expect("a read").1.clone();
    let bus_read_id = "01KB0000000000000000000BUS";
    read["read_id"] = bus_read_id.into();
    read["camera_id"] = "otaci-bus-1".into();
    read["plate_text"] = "KLM 777".into();
    read["plate_norm"] = "KLM777".into();
    runtime.block_on(client.publish("borderflow/otaci/reads/in", QoS::AtLeastOnce, false, read.to_string())).expect("published");
    runtime.block_on(client.publish("borderflow/otaci/reads/in", QoS::AtLeastOnce, false, "{\"read_id\": 7}")).expect("published");
    wait_until("the bus read on the reads topic", Duration::from_secs(20), &log, || read_ids_on(&messages, "borderflow/otaci/reads").contains(bus_read_id));
    wait_until("the malformed message said", Duration::from_secs(20), &log, || log.lock().expect("log").contains("MQTT message is not a read"));
    let output = Command::new(env!("CARGO_BIN_EXE_borderflow"))
        .args(["sql", "SELECT camera_id, plate_norm FROM reads ORDER BY plate_norm", "--server", &format!("grpc://127.0.0.1:{sql_port}"), "--format", "csv"])
        .env("BORDERFLOW_TOKEN", ANALYST)
        .output()
        .expect("sql");
    assert_eq!(String::from_utf8_lossy(&output.stdout), "camera_id,plate_norm\notaci-gate-exit-1,AB1234CD\notaci-bus-1,KLM777\n", "{}", String::from_utf8_lossy(&output.stderr));

    // The broker goes away for 30 s; the cameras' events keep coming and are answered.
    stop(&mut broker);
    let down = Instant::now();
    let mut while_down = BTreeSet::new();
    for i in 0..20 {
        while_down.insert(post_event(&runtime, feed_port, &format!("down-{i}"), &format!("C {:03} XYZ", 100 + i), 10 + i));
        std::thread::sleep(Duration::from_millis(500));
    }
    while down.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(200));
    }
    wait_until("the post to see the broker gone", Duration::from_secs(5), &log, || log.lock().expect("log").contains("MQTT connection lost"));
    let (mut broker, _) = start_broker(&broker_dir, mqtt_port);
    wait_until("every read taken while the broker was away", Duration::from_secs(40), &log, || while_down.is_subset(&read_ids_on(&messages, "borderflow/otaci/reads")));

    // The camera's health, retained: a client that subscribes now gets it at once.
    let mut options = MqttOptions::new("late-console", "127.0.0.1", mqtt_port);
    options.set_keep_alive(Duration::from_secs(5));
    let (late, mut events) = AsyncClient::new(options, 10);
    let health = runtime.block_on(async {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let event = tokio::time::timeout_at(deadline, events.poll()).await.expect("a retained health message within 20 s");
            match event {
                Ok(Event::Incoming(Packet::ConnAck(_))) => late.subscribe("borderflow/otaci/health/#", QoS::AtLeastOnce).await.expect("subscribe"),
                Ok(Event::Incoming(Packet::Publish(p))) if p.topic.ends_with("/otaci-lane-9") => {
                    break (p.topic.clone(), p.retain, serde_json::from_slice::<serde_json::Value>(&p.payload).expect("JSON"));
                }
                Ok(_) => {}
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
    });
    assert_eq!((health.0.as_str(), health.1), ("borderflow/otaci/health/otaci-lane-9", true), "{health:?}");
    assert_eq!(health.2["camera_id"], "otaci-lane-9", "{health:?}");
    assert!(health.2["state"].is_string() && health.2["reconnects"].is_u64(), "{health:?}");

    // /metrics: the cameras' counters moved as frames came and the stream failed; the bus's as messages went.
    let metrics = common::scrape(metrics_port);
    let sample = |name: &str, label: &str| metrics.lines().find(|l| l.starts_with(&format!("{name}{{")) && l.contains(&format!("\"{label}\""))).and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok());
    assert_eq!(sample("borderflow_camera_frames_in_total", "otaci-stills-8"), Some(3.0), "{metrics}");
    assert_eq!(sample("borderflow_camera_frames_processed_total", "otaci-stills-8"), Some(3.0), "{metrics}");
    assert_eq!(sample("borderflow_camera_up", "otaci-lane-9"), Some(0.0), "{metrics}");
    assert!(sample("borderflow_camera_reconnects_total", "otaci-lane-9").is_some_and(|n| n >= 1.0), "{metrics}");
    assert!(sample("borderflow_mqtt_published_total", "otaci").is_some_and(|n| n >= 22.0), "{metrics}");
    assert!(sample("borderflow_mqtt_disconnects_total", "otaci").is_some_and(|n| n >= 1.0), "{metrics}");
    assert_eq!(sample("borderflow_mqtt_malformed_in_total", "otaci"), Some(1.0), "{metrics}");
    // The log's appends and the analyst's query.
    assert!(sample("borderflow_wal_bytes_total", "otaci").is_some_and(|n| n > 1000.0), "{metrics}");
    assert!(sample("borderflow_wal_records_total", "otaci").is_some_and(|n| n >= 2.0), "{metrics}");
    let synced = metrics.lines().find(|l| l.starts_with("borderflow_wal_sync_seconds_count ")).and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok());
    assert!(synced.is_some_and(|n| n >= 2.0), "{metrics}");
    let ok_queries = metrics.lines().find(|l| l.starts_with("borderflow_sql_requests_total{") && l.contains("request=\"StatementQuery\"") && l.contains("outcome=\"ok\""));
    assert!(ok_queries.and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok()).is_some_and(|n| n >= 1.0), "{metrics}");

    stop(&mut post);
    stop(&mut broker);
}

