//! The pre-arrival exchange over loopback with mutual TLS: records per
//! second, and the end-to-end latency from a read at one post (hashed, put
//! in the durable outbox) to its pre-arrival records applied at the
//! neighbour (received over Arrow Flight, logged durably, in the engine's
//! `pre_arrival` table). Prints one JSON object. Run with
//! `cargo bench --profile dev --bench exchange` (`BENCH_READS` for the
//! throughput run, default 20 000 exit reads in batches of `BENCH_BATCH`
//! 100; `BENCH_LATENCY_READS`, default 1 000, sent one by one every
//! `BENCH_GAP_MS`, default 5 ms, for the latency run).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use borderflow::{Engine, EngineOptions};
use borderflow_connectors::exchange::{Deliver, Delivery, ExchangeSender, ExchangeService, SenderConfig, StatusHandle, TlsFiles, serve_exchange};
use borderflow_connectors::scenario::{ScenarioConfig, generate};
use borderflow_engine::{Direction, ExchangeKeys, PlateRead, PostConfig, Storage, pre_arrival_records};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};

fn env(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn exit_reads(n: usize) -> Vec<PlateRead> {
    let day = generate(&ScenarioConfig { traffic_scale: 2.0, ..ScenarioConfig::default() });
    let base: Vec<PlateRead> = day.reads.into_iter().filter(|r| r.direction == Direction::Exit).collect();
    (0..n)
        .map(|i| {
            let mut read = base[i % base.len()].clone();
            read.read_id = format!("{}-{i}", read.read_id);
            read.post_id = "mohyliv-podilskyi".into();
            read
        })
        .collect()
}

/// A CA and a leaf for 127.0.0.1, written to `dir`.
fn certificates(dir: &std::path::Path, name: &str) -> TlsFiles {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
    params.distinguished_name.push(DnType::CommonName, format!("{name} CA"));
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().expect("key")).expect("CA");
    let mut leaf = CertificateParams::new(vec!["127.0.0.1".to_string()]).expect("params");
    leaf.distinguished_name.push(DnType::CommonName, name);
    let key = KeyPair::generate().expect("key");
    let cert = leaf.signed_by(&key, &ca).expect("leaf");
    std::fs::write(dir.join(format!("{name}-ca.pem")), ca.pem()).expect("write");
    std::fs::write(dir.join(format!("{name}.pem")), cert.pem()).expect("write");
    std::fs::write(dir.join(format!("{name}.key")), key.serialize_pem()).expect("write");
    TlsFiles { cert: dir.join(format!("{name}.pem")), key: dir.join(format!("{name}.key")), ca: None }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn main() {
    let total = env("BENCH_READS", 20_000);
    let batch = env("BENCH_BATCH", 100).max(1);
    let latency_reads = env("BENCH_LATENCY_READS", 1_000);
    let gap = Duration::from_millis(env("BENCH_GAP_MS", 5) as u64);
    let dir = std::env::temp_dir().join(format!("borderflow-bench-exchange-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("bench folder");
    let md = certificates(&dir, "otaci");
    let ua = certificates(&dir, "mohyliv-podilskyi");
    let md_tls = TlsFiles { ca: Some(dir.join("mohyliv-podilskyi-ca.pem")), ..md };
    let ua_tls = TlsFiles { ca: Some(dir.join("otaci-ca.pem")), ..ua };

    // The receiving post: an engine on its own thread, fed by the Flight service.
    let config_text = "[post]\nid = \"otaci\"\nname = \"Otaci\"\ncountry = \"MD\"\ncrossing = \"otaci-mohyliv-podilskyi\"\n\
        [storage]\nurl = \"file://./otaci\"\nretention = { reads = \"3650d\" }\n";
    let config = PostConfig::from_toml(config_text, &dir.join("otaci.toml")).expect("config");
    let arrived: Arc<Mutex<HashMap<String, Instant>>> = Arc::new(Mutex::new(HashMap::new()));
    let (to_engine, inbox) = std::sync::mpsc::channel::<Delivery>();
    let arrivals = arrived.clone();
    let applying = Arc::new(Mutex::new((0usize, Duration::ZERO)));
    let applied = applying.clone();
    std::thread::spawn(move || {
        let mut engine = Engine::open(config, EngineOptions::default()).expect("engine");
        // As `serve` does: every delivery waiting is applied in one commit.
        while let Ok(first) = inbox.recv() {
            let mut deliveries = vec![first];
            while deliveries.len() < borderflow::cli::serve::MAX_DELIVERIES_PER_COMMIT {
                match inbox.try_recv() {
                    Ok(more) => deliveries.push(more),
                    Err(_) => break,
                }
            }
            let ids: Vec<String> = deliveries.iter().flat_map(|d| borderflow_connectors::exchange::batch_read_ids(&d.batch)).collect();
            let apply_started = Instant::now();
            borderflow::cli::serve::deliver(&mut engine, deliveries);
            if let Ok(mut applied) = applied.lock() {
                applied.0 += 1;
                applied.1 += apply_started.elapsed();
            }
            let now = Instant::now();
            let mut arrivals = arrivals.lock().expect("arrivals");
            for id in ids {
                arrivals.entry(id).or_insert(now);
            }
        }
    });
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("port").local_addr().expect("addr").port();
    let deliver: Deliver = Arc::new(move |d| to_engine.send(d).is_ok());
    let service = ExchangeService::new("mohyliv-podilskyi", deliver, StatusHandle::new("mohyliv-podilskyi"));
    runtime.block_on(serve_exchange(&format!("127.0.0.1:{port}"), Some(&md_tls), service)).expect("receiver");

    // The sending post.
    let store = borderflow_engine::StorageConfig { url: format!("file://{}/ua", dir.display()), retention: Default::default(), s3: Default::default() };
    let storage = Storage::open(&store).expect("store");
    let sender_config = SenderConfig {
        post_id: "mohyliv-podilskyi".into(),
        peer_post: "otaci".into(),
        endpoint: format!("https://127.0.0.1:{port}"),
        tls: Some(ua_tls),
        window: 64,
    };
    let status = StatusHandle::new("otaci");
    let sender = runtime.block_on(ExchangeSender::start(storage, sender_config, status.clone())).expect("sender");
    let keys = ExchangeKeys::single(b"bench key");

    // Throughput: every read, in batches, as fast as the outbox takes them.
    let reads = exit_reads(total + latency_reads);
    let (bulk, singles) = reads.split_at(total);
    let started = Instant::now();
    let mut rows = 0;
    let (mut hashing, mut appending) = (Duration::ZERO, Duration::ZERO);
    for chunk in bulk.chunks(batch) {
        let hashed = Instant::now();
        let records = pre_arrival_records(chunk, &keys);
        hashing += hashed.elapsed();
        rows += records.num_rows();
        let appended = Instant::now();
        runtime.block_on(sender.send(records)).expect("send");
        appending += appended.elapsed();
    }
    let batches = bulk.chunks(batch).len().max(1) as f64;
    while arrived.lock().expect("arrivals").len() < total {
        assert!(started.elapsed() < Duration::from_secs(600), "throughput run stalled: {:?}", status.get());
        std::thread::sleep(Duration::from_millis(2));
    }
    let bulk_s = started.elapsed().as_secs_f64();

    // Latency: one read at a time, from its hashing to its arrival.
    let mut sent_at = Vec::with_capacity(singles.len());
    for read in singles {
        let at = Instant::now();
        runtime.block_on(sender.send(pre_arrival_records(std::slice::from_ref(read), &keys))).expect("send");
        sent_at.push((read.read_id.clone(), at));
        std::thread::sleep(gap);
    }
    let waited = Instant::now();
    while arrived.lock().expect("arrivals").len() < total + latency_reads {
        assert!(waited.elapsed() < Duration::from_secs(120), "latency run stalled: {:?}", status.get());
        std::thread::sleep(Duration::from_millis(2));
    }
    let arrivals = arrived.lock().expect("arrivals");
    let mut latencies: Vec<f64> = sent_at.iter().map(|(id, at)| arrivals[id].duration_since(*at).as_secs_f64() * 1000.0).collect();
    latencies.sort_by(|a, b| a.total_cmp(b));
    println!(
        "{}",
        serde_json::json!({
            "bench": "exchange",
            "transport": "Arrow Flight DoPut over loopback, mutual TLS (rustls, ring)",
            "durability": "sender outbox and receiver log fdatasync'd before acknowledging",
            "throughput": {
                "reads": total,
                "batch_reads": batch,
                "pre_arrival_rows": rows,
                "seconds": bulk_s,
                "reads_per_s": total as f64 / bulk_s,
                "sender_hash_ms_per_batch": hashing.as_secs_f64() * 1000.0 / batches,
                "outbox_append_ms_per_batch": appending.as_secs_f64() * 1000.0 / batches,
                "rows_per_s": rows as f64 / bulk_s,
            },
            "receiver_ms_per_commit": applying.lock().map(|a| a.1.as_secs_f64() * 1000.0 / a.0.max(1) as f64).unwrap_or(f64::NAN),
            "latency_ms": {
                "reads": latencies.len(),
                "gap_ms": gap.as_millis() as u64,
                "p50": percentile(&latencies, 0.50),
                "p99": percentile(&latencies, 0.99),
                "max": percentile(&latencies, 1.0),
            },
        })
    );
    let _ = std::fs::remove_dir_all(&dir);
}
