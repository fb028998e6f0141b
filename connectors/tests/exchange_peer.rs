//! The exchange's sender against receivers in this process, over mutual TLS
//! with certificates made here (rcgen): a server whose certificate (from the
//! peer's authority) names another post is refused, logged and reported as
//! the peer state; and an hour of the busiest post's exit traffic, queued in
//! the outbox while the peer is down long enough for the reconnect backoff
//! to reach its cap, reaches the peer once it is back, every record once
//! and in order, within the cap of its return.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use borderflow_connectors::exchange::{
    Deliver, ExchangeSender, ExchangeService, ExchangeStatus, PeerState, RECONNECT_FIRST, RECONNECT_MAX, SenderConfig, StatusHandle, TlsFiles,
    batch_read_ids, reconnect_delay, serve_exchange,
};
use borderflow_connectors::scenario::{ScenarioConfig, generate};
use borderflow_types::config::{Retention, S3Config, StorageConfig};
use borderflow_engine::Storage;
use borderflow_types::{CROSSINGS, Direction, ExchangeKeys, PlateRead, pre_arrival_records};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};

const HOUR_MS: i64 = 3_600_000;

/// Everything the exchange logs in this test binary (both tests share it).
fn log() -> &'static Arc<Mutex<Vec<u8>>> {
    static LOG: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOG.get_or_init(|| {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_max_level(tracing::Level::DEBUG)
            .with_writer(move || LogWriter(writer.clone()))
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("one subscriber");
        buffer
    })
}

struct LogWriter(Arc<Mutex<Vec<u8>>>);

impl Write for LogWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log").extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The lines of the log that contain every one of `parts`.
fn log_lines(parts: &[&str]) -> Vec<String> {
    let text = String::from_utf8_lossy(&log().lock().expect("log")).to_string();
    text.lines().filter(|l| parts.iter().all(|p| l.contains(p))).map(str::to_string).collect()
}

/// A customs service's authority; its leaves are for 127.0.0.1, named `name`.
struct Authority(CertifiedIssuer<'static, KeyPair>);

impl Authority {
    fn new(name: &str) -> Authority {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        Authority(CertifiedIssuer::self_signed(params, KeyPair::generate().expect("CA key")).expect("CA certificate"))
    }

    fn write(&self, path: &Path) -> PathBuf {
        std::fs::write(path, self.0.pem()).expect("write CA");
        path.to_path_buf()
    }

    /// `<dir>/<name>.pem` and `.key`.
    fn leaf(&self, dir: &Path, name: &str) -> (PathBuf, PathBuf) {
        let mut params = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).expect("leaf params");
        params.distinguished_name.push(DnType::CommonName, name);
        let key = KeyPair::generate().expect("leaf key");
        let cert = params.signed_by(&key, &self.0).expect("leaf certificate");
        let (cert_path, key_path) = (dir.join(format!("{name}.pem")), dir.join(format!("{name}.key")));
        std::fs::write(&cert_path, cert.pem()).expect("write cert");
        std::fs::write(&key_path, key.serialize_pem()).expect("write key");
        (cert_path, key_path)
    }
}

/// Mohyliv-Podilskyi (UA) sends to Otaci (MD): the certificates of both
/// sides, and one more of the Moldovan authority for another post (Criva).
struct Certs {
    _dir: tempfile::TempDir,
    ua_ca: PathBuf,
    md_ca: PathBuf,
    dir: PathBuf,
}

fn certs() -> Certs {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().to_path_buf();
    let (md, ua) = (Authority::new("MD customs test CA"), Authority::new("UA customs test CA"));
    let md_ca = md.write(&path.join("md-ca.pem"));
    let ua_ca = ua.write(&path.join("ua-ca.pem"));
    md.leaf(&path, "otaci");
    md.leaf(&path, "criva");
    ua.leaf(&path, "mohyliv-podilskyi");
    Certs { _dir: dir, ua_ca, md_ca, dir: path }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

/// What a receiver was given, in order: each batch's read ids.
type Received = Arc<Mutex<Vec<Vec<String>>>>;

/// Starts a receiver for Mohyliv-Podilskyi's records on `port` that
/// presents the Moldovan certificate `name` and takes every batch at once.
async fn receiver(certs: &Certs, name: &str, port: u16) -> (SocketAddr, Received) {
    let received: Received = Arc::default();
    let into = received.clone();
    let deliver: Deliver = Arc::new(move |delivery| {
        into.lock().expect("received").push(batch_read_ids(&delivery.batch));
        let _ = delivery.done.send(Ok((delivery.batch.num_rows(), 0)));
        true
    });
    let tls = TlsFiles { cert: certs.dir.join(format!("{name}.pem")), key: certs.dir.join(format!("{name}.key")), ca: Some(certs.ua_ca.clone()) };
    let service = ExchangeService::new("mohyliv-podilskyi", deliver, StatusHandle::new("mohyliv-podilskyi"));
    let bound = serve_exchange(&format!("127.0.0.1:{port}"), Some(&tls), service).await.expect("receiver");
    (bound, received)
}

/// Mohyliv-Podilskyi's sender to Otaci at `port`, with its outbox in `store`.
async fn sender(certs: &Certs, store: &Path, port: u16) -> (ExchangeSender, StatusHandle) {
    let storage = Storage::open(&StorageConfig { url: format!("file://{}", store.display()), retention: Retention::default(), s3: S3Config::default() }).expect("storage");
    let status = StatusHandle::new("otaci");
    let config = SenderConfig {
        post_id: "mohyliv-podilskyi".into(),
        peer_post: "otaci".into(),
        endpoint: format!("https://127.0.0.1:{port}"),
        tls: Some(TlsFiles {
            cert: certs.dir.join("mohyliv-podilskyi.pem"),
            key: certs.dir.join("mohyliv-podilskyi.key"),
            ca: Some(certs.md_ca.clone()),
        }),
        window: 64,
    };
    let sender = ExchangeSender::start(storage, config, status.clone()).await.expect("sender");
    (sender, status)
}

async fn wait_until(what: &str, limit: Duration, status: &StatusHandle, done: impl Fn(&ExchangeStatus) -> bool) {
    let started = Instant::now();
    while !done(&status.get()) {
        assert!(started.elapsed() < limit, "{what}: not within {limit:?}: {:?}", status.get());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime")
}

#[test]
fn the_sender_refuses_a_server_certified_for_another_post() {
    log();
    let certs = certs();
    let store = tempfile::tempdir().expect("store");
    runtime().block_on(async {
        // At Otaci's address answers a server with a certificate of the
        // Moldovan authority (the chain is good) made for Criva.
        let port = free_port();
        let (_, received) = receiver(&certs, "criva", port).await;
        let (sender, status) = sender(&certs, store.path(), port).await;
        let keys = ExchangeKeys::single(b"test key");
        let reads = exit_reads_of_busiest_hour().1;
        sender.send(pre_arrival_records(&reads[..5], &keys)).await.expect("outbox");

        wait_until("the peer refused", Duration::from_secs(15), &status, |s| s.peer_state == PeerState::Refused).await;
        let now = status.get();
        let error = now.last_error.clone().unwrap_or_default();
        assert!(error.contains("the server certificate is for `criva`, not for the peer post `otaci`"), "{error}");
        assert_eq!(now.peer_state.as_str(), "refused");
        // Nothing was sent to it; the records wait.
        assert_eq!(now.outbox_batches, 1, "{now:?}");
        assert_eq!(now.sent_batches, 0, "{now:?}");
        assert!(received.lock().expect("received").is_empty(), "records reached a server that is not the peer");
        let refused = log_lines(&["exchange peer refused", &format!("127.0.0.1:{port}")]);
        assert!(refused.iter().any(|l| l.contains("`criva`") && l.contains("`otaci`")), "{refused:?}");
        // Retried, but not logged again for the same reason.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert_eq!(log_lines(&["exchange peer refused", &format!("127.0.0.1:{port}")]).len(), 1);
        assert!(received.lock().expect("received").is_empty());
    });
}

/// The crossing with the most traffic, and its post whose exit cameras read
/// the most in one hour of a default day: that hour's exit reads, in order.
fn exit_reads_of_busiest_hour() -> (String, Vec<PlateRead>) {
    static BUSIEST: OnceLock<(String, Vec<PlateRead>)> = OnceLock::new();
    BUSIEST
        .get_or_init(|| {
            let crossing = CROSSINGS.iter().max_by_key(|c| c.vehicles_per_day).expect("crossings");
            let scenario = generate(&ScenarioConfig { crossings: vec![crossing], ..ScenarioConfig::default() });
            let mut per_hour: std::collections::BTreeMap<(String, i64), Vec<PlateRead>> = Default::default();
            for read in scenario.reads.iter().filter(|r| r.direction == Direction::Exit) {
                per_hour.entry((read.post_id.clone(), read.captured_at_ms.div_euclid(HOUR_MS))).or_default().push(read.clone());
            }
            let ((post, _), reads) = per_hour.into_iter().max_by_key(|(_, reads)| reads.len()).expect("exit reads");
            (post, reads)
        })
        .clone()
}

#[test]
fn an_hour_queued_while_the_peer_is_down_arrives_once_in_order() {
    log();
    let started = Instant::now();
    let (post, reads) = exit_reads_of_busiest_hour();
    assert!(reads.len() >= 100, "the busiest hour has {} exit reads at {post}", reads.len());
    let certs = certs();
    let store = tempfile::tempdir().expect("store");
    let keys = ExchangeKeys::single(b"test key");
    let port = free_port();
    let endpoint = format!("127.0.0.1:{port}");
    runtime().block_on(async {
        // The peer is down. Each read goes to the outbox on its own, as a
        // post whose commits each carry one exit read would send it.
        let (sender, status) = sender(&certs, store.path(), port).await;
        let mut rows = 0;
        for read in &reads {
            let batch = pre_arrival_records(std::slice::from_ref(read), &keys);
            rows += batch.num_rows();
            sender.send(batch).await.expect("outbox");
        }
        let queued = status.get();
        assert_eq!((queued.outbox_batches, queued.outbox_rows), (reads.len(), rows), "{queued:?}");

        // Down long enough for the backoff to reach its cap: attempts at
        // 0, 0.2, 0.6, 1.4, 3.0, 6.2, 11.2 s, then every 5 s. After the
        // eighth failed attempt (16.2 s), an uncapped doubling would wait
        // 12.8 s; the sender must try again within RECONNECT_MAX.
        let failures = || log_lines(&["unreachable", &endpoint]).len();
        let down = Instant::now();
        while failures() < 8 {
            assert!(down.elapsed() < Duration::from_secs(40), "8 attempts take 16 s with the cap: {} in {:?}", failures(), down.elapsed());
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let eighth = Instant::now();
        assert_eq!(status.get().peer_state, PeerState::Unreachable);
        assert_eq!(status.get().outbox_batches, reads.len(), "nothing left the outbox while the peer was down");

        // The peer returns.
        let (_, received) = receiver(&certs, "otaci", port).await;
        wait_until("reconnected", RECONNECT_MAX + Duration::from_secs(3), &status, |s| s.peer_state == PeerState::Connected).await;
        let reconnect = eighth.elapsed();
        assert!(reconnect <= RECONNECT_MAX + Duration::from_millis(1500), "the sender came back {reconnect:?} after its last failure");
        wait_until("every batch acknowledged", Duration::from_secs(30), &status, |s| s.outbox_batches == 0).await;

        // Everything, once, in order.
        let received = received.lock().expect("received").clone();
        assert_eq!(received.len(), reads.len(), "batches delivered");
        let arrived: Vec<String> = received.into_iter().flatten().collect();
        let sent: Vec<String> = reads.iter().map(|r| r.read_id.clone()).collect();
        assert_eq!(arrived, sent, "every record once, in order");
        let done = status.get();
        assert_eq!(done.acked_through, reads.len() as u64, "{done:?}");
        assert_eq!(done.outbox_rows, 0);
        eprintln!(
            "{} exit reads ({rows} pre-arrival rows) of {post}'s busiest hour queued {:.1}s while the peer was down; reconnected {:.2}s after the last failed attempt; all acknowledged {:.2}s after that attempt; {:.1}s in all",
            reads.len(),
            eighth.duration_since(down).as_secs_f64(),
            reconnect.as_secs_f64(),
            eighth.elapsed().as_secs_f64(),
            started.elapsed().as_secs_f64()
        );
    });
}

#[test]
fn the_reconnect_backoff_is_capped_through_an_hour_of_outage() {
    let (mut delay, mut waited, mut attempts) = (None, Duration::ZERO, 0u32);
    while waited < Duration::from_secs(3600) {
        let next = reconnect_delay(delay);
        assert!(next <= RECONNECT_MAX && next >= RECONNECT_FIRST, "{next:?}");
        waited += next;
        attempts += 1;
        delay = Some(next);
    }
    // At the cap within a few attempts, and tried every 5 s for the rest of the hour.
    assert_eq!(reconnect_delay(delay), RECONNECT_MAX);
    assert_eq!(RECONNECT_MAX, Duration::from_secs(5));
    assert!(attempts >= 3600 / 5, "{attempts} attempts in an hour");
    let to_cap = std::iter::successors(Some(RECONNECT_FIRST), |d| Some(reconnect_delay(Some(*d)))).take_while(|d| *d < RECONNECT_MAX).count();
    assert_eq!(to_cap, 5, "200 ms, 400 ms, 800 ms, 1.6 s, 3.2 s, then 5 s");
}
