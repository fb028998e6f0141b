//! A post whose cameras read plates themselves: `borderflow serve` with a
//! Hikvision ISAPI feed and a JSON feed takes their events over HTTP (the
//! recorded formats in tests/feeds/), answers a malformed event with a 4xx
//! naming the field and loses nothing else, takes a repeated event once
//! (also after a SIGKILL and restart), and posts the risk flags the reads
//! raise to a webhook at least once, retrying a failed delivery, signed, and
//! not again after a restart; `/metrics`, parsed by the Prometheus
//! project's parser, counts it all. Everything on 127.0.0.1.

mod common;

use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};

const ANALYST: &str = "analyst-token-7f3a";
const CAMERA: &str = "lane-camera-token-91c2";
const SECRET: &str = "webhook-secret-4d1e";

/// What the webhook receiver got: (headers, body) of each request, answered
/// 503 for the first one, 200 after.
type Received = Arc<Mutex<Vec<(axum::http::HeaderMap, String)>>>;

fn start_receiver(runtime: &tokio::runtime::Runtime) -> (u16, Received) {
    let received: Received = Arc::default();
    let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let store = received.clone();
    let app = axum::Router::new().route(
        "/flags",
        axum::routing::post(move |headers: axum::http::HeaderMap, body: String| {
            let store = store.clone();
            async move {
                let mut all = store.lock().expect("received");
                all.push((headers, body));
                if all.len() == 1 { axum::http::StatusCode::SERVICE_UNAVAILABLE } else { axum::http::StatusCode::OK }
            }
        }),
    );
    runtime.spawn(async move { axum::serve(listener, app).await });
    (port, received)
}

/// The cameras' authority, the feed's certificate for 127.0.0.1, and a
/// camera's client certificate (PEM files in `dir`); returns the camera's
/// identity (certificate and key) and the authority.
fn certificates(dir: &Path) -> (Vec<u8>, Vec<u8>) {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    params.distinguished_name.push(DnType::CommonName, "MD customs cameras CA");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().expect("key")).expect("CA");
    std::fs::write(dir.join("cameras-ca.pem"), ca.pem()).expect("CA");
    let leaf = |name: &str, sans: Vec<String>| {
        let mut params = CertificateParams::new(sans).expect("params");
        params.distinguished_name.push(DnType::CommonName, name);
        let key = KeyPair::generate().expect("key");
        let cert = params.signed_by(&key, &ca).expect("leaf");
        (cert.pem(), key.serialize_pem())
    };
    let (cert, key) = leaf("otaci-feed", vec!["127.0.0.1".to_string()]);
    std::fs::write(dir.join("feed.pem"), cert).expect("cert");
    std::fs::write(dir.join("feed.key"), key).expect("key");
    let (cert, key) = leaf("lane-5-camera", Vec::new());
    (format!("{cert}{key}").into_bytes(), ca.pem().into_bytes())
}

fn write_post(dir: &Path, sql_port: u16, hik_port: u16, json_port: u16, hook_port: u16, tls_port: u16, metrics_port: u16) -> std::path::PathBuf {
    common::write_tokens(dir, &[("analyst", ANALYST), ("lane-2-camera", CAMERA)]);
    std::fs::write(dir.join("webhook.key"), SECRET).expect("secret");
    std::fs::write(dir.join("watchlist.csv"), "plate,reason,severity\nAB1234CD,stolen vehicle report,3\n").expect("watchlist");
    let config = dir.join("post.toml");
    let text = format!(
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
id = "lane-anpr"
format = "hikvision-isapi"
listen = "127.0.0.1:{hik_port}"
tokens = "tokens.toml"

[[feed.camera]]
device = "127.0.0.1/1"
id = "otaci-anpr-entry-2"
lane = 2
direction = "entry"
point = "arrival"

[[feed]]
id = "gate-anpr"
format = "json"
listen = "127.0.0.1:{json_port}"

[[feed.camera]]
device = "gate-3"
id = "otaci-anpr-exit-3"
lane = 3
direction = "exit"
point = "departure"

[feed.fields]
event_id = "/id"
camera = "/camera"
plate = "/plate/text"
time = "/time"
confidence = "/plate/confidence"
image = "/plate/jpeg"

[[feed]]
id = "lane-5-anpr"
format = "hikvision-isapi"
listen = "127.0.0.1:{tls_port}"
tls_cert = "feed.pem"
tls_key = "feed.key"
client_ca = "cameras-ca.pem"

[[feed.camera]]
device = "1"
id = "otaci-anpr-entry-5"
lane = 5
direction = "entry"
point = "arrival"

[[webhook]]
name = "control-room"
url = "http://127.0.0.1:{hook_port}/flags"
secret = "webhook.key"
max_backoff = "2s"
"#
    );
    std::fs::write(&config, text).expect("config");
    config
}

fn serve(config: &Path) -> (std::process::Child, Arc<Mutex<String>>) {
    let (mut child, log) = common::spawn_logged(
        Command::new(env!("CARGO_BIN_EXE_borderflow")).args(["--workers", "1", "serve", "--standard-views", "--config"]).arg(config),
    );
    wait_for(&log, &mut child, "taking plate events of feed lane-5-anpr", Duration::from_secs(60));
    (child, log)
}

fn wait_for(log: &Arc<Mutex<String>>, child: &mut std::process::Child, text: &str, limit: Duration) {
    let started = Instant::now();
    while !log.lock().expect("log").contains(text) {
        if started.elapsed() > limit {
            let _ = child.kill();
            panic!("no {text:?} in the post's output:\n{}", log.lock().expect("log"));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// An ISAPI ANPR event from the recorded document, for `plate` with the event id `uuid`.
fn hikvision_xml(plate: &str, uuid: &str, time: &str, channel: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/feeds/hikvision-anpr.xml"))
        .expect("fixture")
        .replace("PLATE", plate)
        .replace("EVENT-UUID", uuid)
        .replace("2026-11-27T10:15:30+02:00", time)
        .replace("<channelID>1</channelID>", &format!("<channelID>{channel}</channelID>"))
}

/// The body a Hikvision camera posts: the document and the plate picture as multipart/form-data.
fn multipart(xml: &str, jpeg: &[u8]) -> (String, Vec<u8>) {
    let boundary = "----------boundary-7MA4YWxkTrZu0gW";
    let mut body = Vec::new();
    body.extend_from_slice(format!("--{boundary}\r\nContent-Disposition: form-data; name=\"anpr.xml\"; filename=\"anpr.xml\"\r\nContent-Type: application/xml\r\n\r\n{xml}\r\n").as_bytes());
    body.extend_from_slice(format!("--{boundary}\r\nContent-Disposition: form-data; name=\"licensePlatePicture.jpg\"; filename=\"licensePlatePicture.jpg\"\r\nContent-Type: image/jpeg\r\n\r\n").as_bytes());
    body.extend_from_slice(jpeg);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// POSTs and returns the status and the JSON answer.
fn post(runtime: &tokio::runtime::Runtime, url: &str, content_type: &str, body: Vec<u8>, token: Option<&str>) -> (u16, serde_json::Value) {
    runtime.block_on(async {
        let client = reqwest::Client::new();
        let mut request = client.post(url).header("content-type", content_type).body(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let answer = request.send().await.expect("the feed answers");
        let status = answer.status().as_u16();
        let text = answer.text().await.expect("body");
        (status, serde_json::from_str(&text).unwrap_or_else(|_| serde_json::Value::String(text)))
    })
}

fn sql(port: u16, query: &str) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_borderflow"))
        .args(["sql", query, "--server", &format!("grpc://127.0.0.1:{port}"), "--format", "csv"])
        .env("BORDERFLOW_TOKEN", ANALYST)
        .output()
        .expect("sql runs");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// `/metrics` parsed with prometheus_client's OpenMetrics parser, as JSON
/// `{family: {first label value: value}}` (a histogram's count for it).
fn scrape(port: u16) -> serde_json::Value {
    let text = std::process::Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join(".local/venv/bin/python"))
        .args([
            "-c",
            r#"
import json, sys, urllib.request
from prometheus_client.openmetrics.parser import text_string_to_metric_families
text = urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/metrics").read().decode()
out = {}
for family in text_string_to_metric_families(text):
    for sample in family.samples:
        if sample.name.endswith("_created") or sample.name.endswith("_bucket") or sample.name.endswith("_sum"):
            continue
        label = next(iter(sample.labels.values()), "")
        out.setdefault(family.name, {})[label] = sample.value
print(json.dumps(out))
"#,
            &port.to_string(),
        ])
        .output()
        .expect("python runs");
    assert!(text.status.success(), "scraping /metrics: {}", String::from_utf8_lossy(&text.stderr));
    serde_json::from_slice(&text.stdout).expect("JSON")
}

#[test]
fn vendor_events_become_reads_and_their_flags_reach_the_webhook() {
    let dir = tempfile::tempdir().expect("dir");
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("runtime");
    let (hook_port, received) = start_receiver(&runtime);
    let (sql_port, hik_port, json_port, tls_port) = (common::free_port(), common::free_port(), common::free_port(), common::free_port());
    let (camera_identity, ca) = certificates(dir.path());
    let metrics_port = common::free_port();
    let config = write_post(dir.path(), sql_port, hik_port, json_port, hook_port, tls_port, metrics_port);
    let (mut child, log) = serve(&config);
    let metrics_before = scrape(metrics_port);
    let hik = format!("http://127.0.0.1:{hik_port}/ISAPI/Event/notification/alert");
    let hik_with_token = format!("{hik}?token={CAMERA}");
    let json = format!("http://127.0.0.1:{json_port}/events");
    let jpeg = std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/feeds/plate.jpg")).expect("jpeg");

    // A watchlisted plate, with its picture, token in the URL (as cameras that cannot set headers do).
    let (ct, body) = multipart(&hikvision_xml("AB1234CD", "uuid-0001", "2026-11-27T10:15:30+02:00", "1"), &jpeg);
    let (status, answer) = post(&runtime, &hik_with_token, &ct, body.clone(), None);
    assert_eq!((status, answer["taken"].as_u64(), answer["repeated"].as_u64()), (200, Some(1), Some(0)), "{answer}");
    let watchlisted_id = answer["read_ids"][0].as_str().expect("a read id").to_string();
    // The camera sends it again (no answer reached it): taken once.
    let (status, answer) = post(&runtime, &hik_with_token, &ct, body.clone(), None);
    assert_eq!((status, answer["taken"].as_u64(), answer["repeated"].as_u64()), (200, Some(0), Some(1)), "{answer}");
    assert_eq!(answer["read_ids"][0].as_str(), Some(watchlisted_id.as_str()), "the same event is the same read");
    // The document alone, with a bearer token.
    let xml = hikvision_xml("KLM 777", "uuid-0002", "2026-11-27T10:16:30+02:00", "1");
    let (status, answer) = post(&runtime, &hik, "application/xml", xml.clone().into_bytes(), Some(CAMERA));
    assert_eq!((status, answer["taken"].as_u64()), (200, Some(1)), "{answer}");
    // A heartbeat of another alarm kind: answered, nothing taken.
    let heartbeat = std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/feeds/hikvision-heartbeat.xml")).expect("fixture");
    let (status, answer) = post(&runtime, &hik, "application/xml", heartbeat, Some(CAMERA));
    assert_eq!((status, answer["taken"].as_u64(), answer["ignored"].as_array().map(Vec::len)), (200, Some(0), Some(1)), "{answer}");

    // Refusals: each names what is wrong, and takes nothing.
    let (status, answer) = post(&runtime, &hik, "application/xml", xml.clone().into_bytes(), None);
    assert_eq!(status, 401, "{answer}");
    let (status, answer) = post(&runtime, &hik, "application/xml", xml.clone().into_bytes(), Some("not-a-token"));
    assert_eq!(status, 401, "{answer}");
    let other_channel = hikvision_xml("KLM 778", "uuid-0003", "2026-11-27T10:17:30+02:00", "9").replace("<ipAddress>127.0.0.1</ipAddress>", "<ipAddress>127.0.0.9</ipAddress>");
    let (status, answer) = post(&runtime, &hik, "application/xml", other_channel.into_bytes(), Some(CAMERA));
    assert_eq!((status, answer["field"].as_str()), (422, Some("camera")), "{answer}");
    let no_plate_field = xml.replace("<licensePlate>KLM 777</licensePlate>", "");
    let (status, answer) = post(&runtime, &hik, "application/xml", no_plate_field.into_bytes(), Some(CAMERA));
    assert_eq!((status, answer["field"].as_str()), (400, Some("EventNotificationAlert/ANPR/licensePlate")), "{answer}");
    let truncated = xml[..xml.len() / 2].to_string();
    let (status, answer) = post(&runtime, &hik, "application/xml", truncated.into_bytes(), Some(CAMERA));
    assert_eq!((status, answer["field"].as_str()), (400, Some("EventNotificationAlert")), "{answer}");
    let no_offset = hikvision_xml("KLM 779", "uuid-0004", "2026-11-27T10:18:30", "1");
    let (status, answer) = post(&runtime, &hik, "application/xml", no_offset.into_bytes(), Some(CAMERA));
    assert_eq!((status, answer["field"].as_str()), (400, Some("EventNotificationAlert/dateTime")), "{answer}");

    // The JSON feed: two events in one request, with the mapping's fields.
    let events = std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/feeds/json-events.json")).expect("fixture");
    let (status, answer) = post(&runtime, &json, "application/json", events, None);
    assert_eq!((status, answer["taken"].as_u64()), (200, Some(2)), "{answer}");
    let missing_time = br#"{"id": "evt-0003", "camera": "gate-3", "plate": {"text": "C 77 XYZ"}}"#.to_vec();
    let (status, answer) = post(&runtime, &json, "application/json", missing_time, None);
    assert_eq!((status, answer["field"].as_str()), (400, Some("/time")), "{answer}");
    let bad_image = br#"{"id": "evt-0004", "camera": "gate-3", "time": "2026-11-27T08:30:00Z", "plate": {"text": "C 78 XYZ", "jpeg": "not base64!"}}"#.to_vec();
    let (status, answer) = post(&runtime, &json, "application/json", bad_image, None);
    assert_eq!((status, answer["field"].as_str()), (400, Some("/plate/jpeg")), "{answer}");
    let (status, _) = post(&runtime, &json, "application/json", b"{not json".to_vec(), None);
    assert_eq!(status, 400);

    // HTTPS with client certificates: a camera with one from the cameras' authority is admitted, one without is not.
    let tls_url = format!("https://127.0.0.1:{tls_port}/");
    let xml = hikvision_xml("MDA 555", "uuid-0005", "2026-11-27T10:19:30+02:00", "1");
    let with_certificate = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&ca).expect("CA"))
        .identity(reqwest::Identity::from_pem(&camera_identity).expect("identity"))
        .build()
        .expect("client");
    let answer = runtime.block_on(async { with_certificate.post(&tls_url).header("content-type", "application/xml").body(xml.clone()).send().await.expect("answer").status().as_u16() });
    assert_eq!(answer, 200);
    let without = reqwest::Client::builder().add_root_certificate(reqwest::Certificate::from_pem(&ca).expect("CA")).build().expect("client");
    let answer = runtime.block_on(async { without.post(&tls_url).header("content-type", "application/xml").body(xml).send().await.expect("answer").status().as_u16() });
    assert_eq!(answer, 401);

    // The five reads, each once, with the camera's place from the config and the crop stored.
    let reads = "SELECT plate_norm, camera_id, lane, direction, point, CAST(round(confidence * 100) AS INT) AS confidence, crop_uri IS NOT NULL AS crop FROM reads ORDER BY plate_norm";
    let expected = "plate_norm,camera_id,lane,direction,point,confidence,crop\n\
        AB1234CD,otaci-anpr-entry-2,2,entry,arrival,97,true\n\
        AI5255EI,otaci-anpr-exit-3,3,exit,departure,91,false\n\
        B123ABC,otaci-anpr-exit-3,3,exit,departure,88,false\n\
        KLM777,otaci-anpr-entry-2,2,entry,arrival,97,false\n\
        MDA555,otaci-anpr-entry-5,5,entry,arrival,97,false\n";
    assert_eq!(sql(sql_port, reads), expected);
    let crop = dir.path().join(format!("data/crops/otaci/2026-11-27/{watchlisted_id}.jpg"));
    assert_eq!(std::fs::read(&crop).ok().as_deref(), Some(jpeg.as_slice()), "the plate picture is the read's crop at {}", crop.display());

    // Every risk flag reaches the webhook, the first try having failed.
    let flags: usize = sql(sql_port, "SELECT count(*) AS n FROM risk_flags").lines().nth(1).and_then(|n| n.parse().ok()).expect("a count");
    assert!(flags >= 1, "the watchlisted plate raises a flag");
    let started = Instant::now();
    let delivered = loop {
        let all = received.lock().expect("received").clone();
        let ids: std::collections::BTreeSet<String> = all.iter().skip(1).filter_map(|(_, body)| serde_json::from_str::<serde_json::Value>(body).ok()?["id"].as_str().map(str::to_string)).collect();
        if ids.len() >= flags {
            break all;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "{} of {flags} flags delivered:\n{}", ids.len(), log.lock().expect("log"));
        std::thread::sleep(Duration::from_millis(200));
    };
    let bodies: Vec<serde_json::Value> = delivered.iter().map(|(_, b)| serde_json::from_str(b).expect("JSON body")).collect();
    assert_eq!(bodies[0]["id"], bodies[1]["id"], "the failed row is the one tried again");
    let hit = bodies.iter().find(|b| b["row"]["rule"] == "watchlist_hit").expect("the watchlist hit is posted");
    assert_eq!((hit["view"].as_str(), hit["post"].as_str(), hit["row"]["plate_norm"].as_str(), hit["row"]["evidence"].as_str()), (Some("risk_flags"), Some("otaci"), Some("AB1234CD"), Some(watchlisted_id.as_str())));
    for (headers, body) in &delivered {
        let value: serde_json::Value = serde_json::from_str(body).expect("JSON");
        assert_eq!(headers.get("idempotency-key").and_then(|v| v.to_str().ok()), value["id"].as_str());
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()).expect("key");
        mac.update(body.as_bytes());
        let signature = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
        assert_eq!(headers.get("x-borderflow-signature").and_then(|v| v.to_str().ok()), Some(signature.as_str()));
    }

    // /metrics, parsed by the Prometheus project's own parser: the feeds' counters moved with the events.
    let metrics_after = scrape(metrics_port);
    let value = |metrics: &serde_json::Value, name: &str, label: &str| metrics[name][label].as_f64().unwrap_or(0.0);
    assert_eq!(value(&metrics_before, "borderflow_feed_reads", "lane-anpr"), 0.0, "{metrics_before}");
    assert_eq!(value(&metrics_after, "borderflow_feed_reads", "lane-anpr"), 2.0, "{metrics_after}");
    assert_eq!(value(&metrics_after, "borderflow_feed_reads", "gate-anpr"), 2.0, "{metrics_after}");
    assert_eq!(value(&metrics_after, "borderflow_feed_repeated", "lane-anpr"), 1.0, "{metrics_after}");
    assert_eq!(value(&metrics_after, "borderflow_feed_malformed", "lane-anpr"), 4.0, "{metrics_after}");
    assert_eq!(value(&metrics_after, "borderflow_feed_unauthorized", "lane-anpr"), 2.0, "{metrics_after}");
    assert_eq!(value(&metrics_after, "borderflow_feed_malformed", "gate-anpr"), 3.0, "{metrics_after}");
    assert_eq!(value(&metrics_after, "borderflow_reads_held", "otaci"), 5.0, "{metrics_after}");
    assert!(value(&metrics_after, "borderflow_commit_seconds", "feeds") >= 4.0, "commits of the feeds counted: {metrics_after}");
    assert!(value(&metrics_after, "borderflow_webhook_delivered", "control-room") >= flags as f64, "{metrics_after}");

    // SIGKILL: what was answered 200 was logged; the flags delivered are not posted again.
    child.kill().expect("SIGKILL");
    child.wait().expect("killed");
    let before = received.lock().expect("received").len();
    let (mut child, log) = serve(&config);
    wait_for(&log, &mut child, "webhook control-room at", Duration::from_secs(30));
    assert!(log.lock().expect("log").contains("(0 waiting)"), "every flag was delivered before the kill:\n{}", log.lock().expect("log"));
    let (status, answer) = post(&runtime, &hik_with_token, &ct, body, None);
    assert_eq!((status, answer["taken"].as_u64(), answer["repeated"].as_u64()), (200, Some(0), Some(1)), "{answer}");
    assert_eq!(sql(sql_port, reads), expected, "the reads after the restart");
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(received.lock().expect("received").len(), before, "no flag posted twice");
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    assert!(child.wait().expect("stops").success(), "{}", log.lock().expect("log"));
}
