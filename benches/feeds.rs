//! Third-party ANPR events over HTTP into a serving post: events per second
//! the JSON feed sustains (each answered once its read is in the
//! write-ahead log), and the latency from an event's POST to its risk flag
//! arriving at a webhook. The post runs in this process (`serve` with the
//! standard views), everything on 127.0.0.1. Prints one JSON object.
//!
//! `cargo bench --profile dev --bench feeds` (`BENCH_EVENTS`, default 5 000,
//! posted by `BENCH_CLIENTS` concurrent cameras, default 8; `BENCH_FLAGS`,
//! default 100 watchlisted events one every `BENCH_GAP_MS`, default 20 ms,
//! for the latency).

use std::collections::HashMap;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use borderflow::cli::serve::{ServeOptions, serve};
use borderflow_engine::PostConfig;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn main() {
    let events = env("BENCH_EVENTS", 5_000);
    let clients = env("BENCH_CLIENTS", 8).max(1);
    let flags = env("BENCH_FLAGS", 100);
    let gap = Duration::from_millis(env("BENCH_GAP_MS", 20) as u64);
    let dir = tempfile_dir();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");

    // The webhook receiver notes when each watchlisted plate's flag arrives.
    let arrived: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).expect("bind");
    let hook_port = listener.local_addr().expect("addr").port();
    let store = arrived.clone();
    let app = axum::Router::new().route(
        "/flags",
        axum::routing::post(move |body: String| {
            let store = store.clone();
            async move {
                if let Ok(value) = serde_json::from_str::<serde_json::Value>(&body)
                    && value["row"]["rule"] == "watchlist_hit"
                    && let Some(plate) = value["row"]["plate_norm"].as_str()
                {
                    store.lock().expect("arrived").entry(plate.to_string()).or_insert_with(Instant::now);
                }
                axum::http::StatusCode::OK
            }
        }),
    );
    runtime.spawn(async move { axum::serve(listener, app).await });

    let feed_port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let watchlist: String = (0..flags).map(|i| format!("WL{i:04}AA,bench,3\n")).collect();
    std::fs::write(dir.join("watchlist.csv"), format!("plate,reason,severity\n{watchlist}")).expect("watchlist");
    let text = format!(
        r#"
[post]
id = "otaci"
name = "Otaci"
country = "MD"
crossing = "otaci-mohyliv-podilskyi"

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

[[webhook]]
name = "bench"
url = "http://127.0.0.1:{hook_port}/flags"
"#
    );
    let path = dir.join("post.toml");
    std::fs::write(&path, text).expect("config");
    let config = PostConfig::from_file(&path).expect("config");
    let stop = Arc::new(AtomicBool::new(false));
    let mut options = ServeOptions::default();
    options.follow.engine.standard_views = true;
    let stopper = stop.clone();
    let post = std::thread::spawn(move || serve(config, &options, stopper, &|_| {}));
    let url = format!("http://127.0.0.1:{feed_port}/");
    let client = reqwest::Client::new();
    runtime.block_on(async {
        let started = Instant::now();
        while client.post(&url).body("[]").send().await.is_err() {
            assert!(started.elapsed() < Duration::from_secs(60), "the feed did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    let base_ms: i64 = 1_795_766_400_000; // 2026-11-27 UTC

    // Throughput: `clients` cameras posting one event per request, each waiting for its answer.
    let started = Instant::now();
    let latencies: Vec<f64> = runtime.block_on(async {
        let mut tasks = Vec::new();
        for c in 0..clients {
            let (client, url) = (client.clone(), url.clone());
            tasks.push(tokio::spawn(async move {
                let mut took = Vec::new();
                for i in (c..events).step_by(clients) {
                    let body = serde_json::json!({ "id": format!("e{i}"), "camera": "gate-1", "time": base_ms + i as i64 * 1000, "plate": format!("T{:06}", i) });
                    let sent = Instant::now();
                    let answer = client.post(&url).header("content-type", "application/json").body(body.to_string()).send().await.expect("answer");
                    assert!(answer.status().is_success(), "{}", answer.status());
                    took.push(sent.elapsed().as_secs_f64() * 1000.0);
                }
                took
            }));
        }
        let mut all = Vec::new();
        for task in tasks {
            all.extend(task.await.expect("client"));
        }
        all
    });
    let seconds = started.elapsed().as_secs_f64();
    let mut answer_ms = latencies;
    answer_ms.sort_by(f64::total_cmp);

    // Latency: one watchlisted event at a time, POST to the flag at the webhook.
    let mut sent_at = HashMap::new();
    runtime.block_on(async {
        for i in 0..flags {
            let plate = format!("WL{i:04}AA");
            let body = serde_json::json!({ "id": format!("w{i}"), "camera": "gate-1", "time": base_ms + (events + i) as i64 * 1000, "plate": plate });
            sent_at.insert(plate, Instant::now());
            let answer = client.post(&url).header("content-type", "application/json").body(body.to_string()).send().await.expect("answer");
            assert!(answer.status().is_success());
            tokio::time::sleep(gap).await;
        }
    });
    let waited = Instant::now();
    while arrived.lock().expect("arrived").len() < flags && waited.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(50));
    }
    let arrived = arrived.lock().expect("arrived").clone();
    let mut flag_ms: Vec<f64> = sent_at.iter().filter_map(|(plate, sent)| Some(arrived.get(plate)?.duration_since(*sent).as_secs_f64() * 1000.0)).collect();
    flag_ms.sort_by(f64::total_cmp);
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    post.join().expect("serve thread").expect("serve");
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let report = serde_json::json!({
        "bench": "feeds",
        "events": events,
        "clients": clients,
        "events_per_s": events as f64 / seconds,
        "answer_ms_p50": percentile(&answer_ms, 0.5),
        "answer_ms_p99": percentile(&answer_ms, 0.99),
        "flags": flags,
        "flags_arrived": flag_ms.len(),
        "event_to_flag_ms_p50": percentile(&flag_ms, 0.5),
        "event_to_flag_ms_p99": percentile(&flag_ms, 0.99),
        "load_average": load.split_whitespace().take(3).collect::<Vec<_>>().join(" "),
    });
    println!("{report}");
    let _ = std::fs::remove_dir_all(&dir);
}

fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("borderflow-bench-feeds-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    dir
}
