//! The operator console in a real browser: a rendered clip served over RTSP
//! on 127.0.0.1 is a post's camera, `borderflow serve` reads it with the
//! console on, and Debian's headless Chromium (driven through its
//! chromedriver by tests/console/drive.py) logs in, sees the live view draw
//! frames with tracked boxes, the reads table fill, a risk flag of a
//! watchlisted plate appear, and searches the plate. Screenshots are kept
//! under the target's tmp folder (`console/`) as the test's artefacts.
//! Then: logins and the search are in the audit log, a role that may not
//! read `reads` is refused the live view and the search, a flag's
//! evidence clip downloads as MP4 from the camera's recording, and
//! `/metrics` has the cameras' detection, recognition and recording.

mod common;
mod video;

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use video::rtsp::RtspServer;

const OPERATOR: &str = "operator-console-token";
const COUNTER: &str = "counter-only-token";

fn wait_until(what: &str, limit: Duration, log: &Arc<Mutex<String>>, mut done: impl FnMut() -> bool) {
    let until = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < until, "timed out waiting for {what}; the post's log:\n{}", log.lock().expect("log"));
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn stop(child: &mut Child) {
    // SIGTERM: the post shuts down in order.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let until = Instant::now() + Duration::from_secs(30);
    while Instant::now() < until {
        if child.try_wait().ok().flatten().is_some() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Where the screenshots go: kept after the test.
fn artefacts() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("console");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("artefacts folder");
    dir
}


/// The value of the sample `name{labels…}` in OpenMetrics `text`.
fn sample(text: &str, name_and_labels: &str) -> Option<f64> {
    text.lines().find_map(|line| line.strip_prefix(name_and_labels)?.trim().split(' ').next()?.parse().ok())
}

#[test]
fn an_operator_watches_a_lane_in_the_browser_and_sees_reads_and_flags() {
    for needed in ["/usr/bin/chromium", "/usr/bin/chromedriver"] {
        assert!(Path::new(needed).exists(), "{needed} is missing: `make test` installs Debian's chromium and chromium-driver (scripts/setup --tests)");
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let scene = video::four_vehicles_one_leaving();
    let (clip, truth) = video::render(&scene, dir.path(), "lane.mp4", 0.0, 24.0);
    let watched = truth[1].plate_norm.clone();
    let server = RtspServer::start(&clip, 0);

    let (console_port, metrics_port) = (common::free_port(), common::free_port());
    common::write_tokens(dir.path(), &[("operator", OPERATOR), ("counter", COUNTER)]);
    std::fs::write(dir.path().join("watchlist.csv"), format!("plate,reason,severity\n{watched},stolen vehicle report,3\n")).expect("watchlist");
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
console_listen = "127.0.0.1:{console_port}"
metrics_listen = "127.0.0.1:{metrics_port}"
tokens = "tokens.toml"

[[serve.role]]
name = "operator"
read = ["*"]
users = ["operator"]

[[serve.role]]
name = "counting"
read = ["dwell_percentiles"]
users = ["counter"]

[storage]
url = "file://./data"

[watchlist]
path = "watchlist.csv"

[recording]
segment = "4s"

[[camera]]
id = "otaci-lane-1"
uri = "rtsp://127.0.0.1:{rtsp}/lane"
lane = 1
direction = "entry"
point = "arrival"
counting_line = [[0.0, {line}], [1.0, {line}]]
from_side = "top"
"#,
            rtsp = server.port,
            line = borderflow::connectors::synthetic_video::LINE_Y,
        ),
    )
    .expect("config");
    let (mut post, log) = common::spawn_logged(
        Command::new(env!("CARGO_BIN_EXE_borderflow")).args(["--workers", "1", "serve", "--standard-views", "--config"]).arg(&config),
    );
    wait_until("the console listening", Duration::from_secs(60), &log, || log.lock().expect("log").contains("operator console on http://"));

    let shots = artefacts();
    let output = Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join(".local/venv/bin/python"))
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/console/drive.py"))
        .args(["--url", &format!("http://127.0.0.1:{console_port}/"), "--token", OPERATOR, "--bad-token", "not-a-token", "--plate", &watched])
        .arg("--shots")
        .arg(&shots)
        .args(["--timeout", "240"])
        .output()
        .expect("the browser's driver runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let seen: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!("the driver's answer is not JSON ({e}): {stdout}\n{}\npost:\n{}", String::from_utf8_lossy(&output.stderr), log.lock().expect("log"))
    });
    println!("console: {}", serde_json::to_string_pretty(&seen).expect("json"));
    println!("screenshots in {}", shots.display());
    assert!(output.status.success() && seen.get("error").is_none(), "the browser did not see it all: {seen:#}\npost:\n{}", log.lock().expect("log"));

    assert!(seen["refused"].as_str().is_some_and(|t| t.contains("Unknown token")), "a wrong token is refused on the page: {seen}");
    assert_eq!(seen["who"], "operator (operator)");
    let frames = seen["frames"]["otaci-lane-1"].as_u64().expect("frames drawn");
    assert!(frames >= 110, "the live view drew {frames} frames");
    assert!(seen["max_boxes"]["otaci-lane-1"].as_u64() >= Some(1), "the live view drew tracked boxes: {seen}");
    assert!(seen["canvas_colours"].as_u64() > Some(20), "the canvas holds a picture: {seen}");
    let latency = &seen["latency_ms"];
    assert!(latency["p50"].as_i64().is_some_and(|ms| (0..5_000).contains(&ms)), "latency from decoding to drawing: {latency}");
    let plates: Vec<String> = truth.iter().map(|t| t.plate_norm.clone()).collect();
    let reads = seen["reads"].as_array().expect("reads rows");
    assert!(
        reads.iter().any(|row| row[4].as_str().is_some_and(|p| plates.contains(&borderflow::engine::plate_norm(p)))),
        "the reads table shows a plate of the clip ({plates:?}): {reads:?}"
    );
    assert!(seen["crops_shown"].as_u64() >= Some(1), "the reads' plate crops are shown: {seen}");
    let flag = seen["flag"].as_str().expect("flag text");
    assert!(flag.contains("watchlist_hit") && flag.contains(&watched) && flag.contains("stolen vehicle report"), "the risk flag: {flag}");
    let found = seen["search"].as_array().expect("search rows");
    assert!(found.iter().any(|r| r[4].as_str().is_some_and(|p| borderflow::engine::plate_norm(p) == watched)), "the search finds the plate: {found:?}");
    let health = seen["health"].as_array().expect("health rows");
    assert!(health.iter().any(|row| row[0] == "otaci-lane-1" && row[1] == "up"), "camera health: {health:?}");
    for shot in ["console-live.png", "console.png", "console-lane.png", "console-search.png"] {
        let bytes = std::fs::read(shots.join(shot)).unwrap_or_else(|e| panic!("{shot}: {e}"));
        assert!(bytes.starts_with(b"\x89PNG") && bytes.len() > 10_000, "{shot} is a screenshot ({} bytes)", bytes.len());
    }

    // Least privilege: a role without `reads` sees neither the live view nor the search.
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let client = reqwest::Client::new();
    let status = |path: &str, token: &str| {
        let request = client.get(format!("http://127.0.0.1:{console_port}{path}")).bearer_auth(token);
        runtime.block_on(request.send()).expect("the console answers").status().as_u16()
    };
    assert_eq!(status(&format!("/api/search?plate={watched}"), COUNTER), 403);
    assert_eq!(status("/api/live/otaci-lane-1", COUNTER), 403);
    assert_eq!(status("/api/me", COUNTER), 200);
    assert_eq!(status("/api/me", "not-a-token"), 401);
    assert_eq!(status("/api/live/no-such-camera", OPERATOR), 404);

    // The flag's evidence clip: an MP4 cut from the camera's recording
    // (once the read is in the history, within the 5 s flush).
    let link = seen["clip_links"].as_array().and_then(|l| l.iter().find_map(|v| v.as_str())).expect("the flag links its evidence clip").to_string();
    let path = link.split_once("127.0.0.1").map(|(_, rest)| rest.split_once('/').map_or(String::new(), |(_, p)| format!("/{p}"))).expect("a console link");
    let mut clip = Vec::new();
    let until = Instant::now() + Duration::from_secs(60);
    while Instant::now() < until {
        let answer = runtime.block_on(client.get(format!("http://127.0.0.1:{console_port}{path}")).bearer_auth(OPERATOR).send()).expect("answer");
        if answer.status().as_u16() == 200 {
            assert_eq!(answer.headers()["content-type"], "video/mp4");
            clip = runtime.block_on(answer.bytes()).expect("body").to_vec();
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(clip.len() > 10_000 && &clip[4..8] == b"ftyp", "the evidence clip is an MP4 ({} bytes); post:\n{}", clip.len(), log.lock().expect("log"));
    assert_eq!(status(&path, COUNTER), 403);

    // The console's use is audited beside the analysts' queries.
    let audit: Vec<serde_json::Value> = common::files_under(&dir.path().join("data/audit/otaci/sql"))
        .into_iter()
        .map(|f| serde_json::from_slice(&std::fs::read(f).expect("audit record")).expect("audit JSON"))
        .collect();
    let requests = |request: &str| audit.iter().filter(|r| r["request"] == request).cloned().collect::<Vec<_>>();
    let logins = requests("Console.Login");
    assert!(logins.iter().any(|r| r["user"] == "operator" && r["error"].is_null()), "the login is audited: {logins:?}");
    assert!(logins.iter().any(|r| r["error"].is_string()), "the refused login is audited: {logins:?}");
    assert!(requests("Console.Clip").iter().any(|r| r["user"] == "operator" && r["error"].is_null()), "the clip is audited: {audit:?}");
    let exports = common::files_under(&dir.path().join("data/audit/otaci/clips"));
    assert!(!exports.is_empty(), "the clip's export record is written");
    let searches = requests("Console.Search");
    assert!(searches.iter().any(|r| r["user"] == "operator" && r["parameters"][0] == watched.as_str()), "the search is audited with its plate: {searches:?}");

    let metrics = common::scrape(metrics_port);
    let detected = sample(&metrics, "borderflow_camera_detect_seconds_count{camera=\"otaci-lane-1\"}").unwrap_or(0.0);
    let recognised = sample(&metrics, "borderflow_camera_recognise_seconds_count{camera=\"otaci-lane-1\"}").unwrap_or(0.0);
    assert!(detected >= 50.0 && recognised >= 1.0, "detection and recognition times in /metrics: {detected} {recognised}\n{metrics}");
    let recorded = sample(&metrics, "borderflow_camera_recorded_bytes_total{camera=\"otaci-lane-1\"}").unwrap_or(0.0);
    let reads = sample(&metrics, "borderflow_reads_total{camera=\"otaci-lane-1\"}").unwrap_or(0.0);
    assert!(reads >= 3.0, "reads per camera in /metrics: {reads}");
    assert!(recorded > 100_000.0, "recorded bytes in /metrics: {recorded}\n{metrics}");

    stop(&mut post);
    server.stop();
}
