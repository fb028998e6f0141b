//! A post's watchlist kept as a file in its object store (`[watchlist]
//! object`): `borderflow serve` reads it when the post starts and again
//! when it changes, while it runs; entries that leave the file are closed,
//! not forgotten, and a malformed file is refused with the file and row
//! named while the post keeps the list it had. Checked through the analysts'
//! Flight SQL server with `borderflow sql --server`.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use borderflow::engine::PostConfig;

const TOKEN: &str = "watchlist-test-token";

/// Rows of `sql` on the server, as CSV lines without the header.
fn query(uri: &str, sql: &str) -> Vec<String> {
    let output = Command::new(env!("CARGO_BIN_EXE_borderflow"))
        .args(["sql", sql, "--server", uri, "--format", "csv"])
        .env("BORDERFLOW_TOKEN", TOKEN)
        .output()
        .expect("borderflow sql runs");
    assert!(output.status.success(), "{sql}: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).lines().skip(1).map(str::to_string).collect()
}

fn wait_for(log: &Arc<Mutex<String>>, child: &mut std::process::Child, what: &str, after: usize) -> usize {
    let started = Instant::now();
    loop {
        if let Some(at) = log.lock().expect("log")[after..].find(what) {
            return after + at + what.len();
        }
        if started.elapsed() > Duration::from_secs(90) {
            let _ = child.kill();
            panic!("no `{what}` in the post's log:\n{}", log.lock().expect("log"));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn watchlist_hits(uri: &str) -> BTreeSet<String> {
    query(uri, "SELECT DISTINCT plate_norm FROM risk_flags WHERE rule = 'watchlist_hit'").into_iter().collect()
}

#[test]
fn a_watchlist_file_in_the_store_is_read_again_when_it_changes() {
    let dir = tempfile::tempdir().expect("temp dir");
    let port = common::free_port();
    common::write_token(dir.path(), "analyst", TOKEN);
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
sql_listen = "127.0.0.1:{port}"
tokens = "tokens.toml"

[storage]
url = "file://./data"

[watchlist]
object = "reference/watchlist.csv"
reload = "1s"

[scenario]
seed = 20261129
start = "2026-11-27"
traffic_scale = 0.05
"#
        ),
    )
    .expect("config");
    // Two plates this post reads, and one it never reads.
    let post = PostConfig::from_file(&config).expect("config");
    let (ticks, _) = borderflow::cli::run::follow::scenario_ticks(&post, 300_000).expect("ticks");
    let read: BTreeSet<String> = ticks.iter().flat_map(|(_, reads)| reads.iter().map(|r| r.plate_norm.clone())).collect();
    let mut plates = read.iter();
    let (first, second) = (plates.next().expect("a read").clone(), plates.nth(10).expect("more reads").clone());
    let never = "ZZ999ZZ";
    assert!(!read.contains(never));
    let list = dir.path().join("data/reference/watchlist.csv");
    std::fs::create_dir_all(list.parent().expect("folder")).expect("folder");
    std::fs::write(&list, format!("plate,reason,severity,valid_from,valid_to\n{first},stolen,3,,\n{never},old case,2,2026-11-01T00:00:00Z,\n")).expect("list");

    let (mut child, log) = common::spawn_logged(
        Command::new(env!("CARGO_BIN_EXE_borderflow"))
            .args(["--workers", "1", "serve", "--config"])
            .arg(&config)
            .args(["--pace-ms", "0", "--tick-ms", "3600000", "--sink-every", "1", "--standard-views"])
            .env("BORDERFLOW_LOG", "borderflow=info"),
    );
    let seen = wait_for(&log, &mut child, "scenario done", 0);
    let uri = format!("grpc://127.0.0.1:{port}");
    let entries = "SELECT plate, reason, severity, valid_to IS NULL AS open FROM watchlist ORDER BY plate";
    let mut expected = vec![format!("{first},stolen,3,true"), format!("{never},old case,2,true")];
    expected.sort();
    assert_eq!(query(&uri, entries), expected, "the file's entries, not the scenario's:\n{}", log.lock().expect("log"));
    assert_eq!(watchlist_hits(&uri), BTreeSet::from([first.clone()]), "only the listed plate read here is flagged");

    // The list changes while the post runs: the first plate leaves it, the
    // second comes in, the third is downgraded.
    std::fs::write(&list, format!("plate,reason,severity,valid_from,valid_to\n{second},cloned plates,2,,\n{never},old case,1,2026-11-01T00:00:00Z,\n")).expect("list");
    let seen = wait_for(&log, &mut child, "watchlist: 2 entries, 2 new or changed, 1 closed", seen);
    let mut expected = vec![format!("{first},stolen,3,false"), format!("{second},cloned plates,2,true"), format!("{never},old case,1,true")];
    expected.sort();
    assert_eq!(query(&uri, entries), expected, "the first entry is closed, not forgotten");
    // Its flags stay: those reads were made while it was listed.
    assert_eq!(watchlist_hits(&uri), BTreeSet::from([first.clone(), second.clone()]));

    // A malformed list is refused, naming the file and the row; the post
    // keeps the list it had and goes on answering.
    std::fs::write(&list, format!("plate,reason,severity\n{second},cloned plates,2\n{never},old case,9\n")).expect("list");
    let _ = wait_for(&log, &mut child, "watchlist not taken", seen);
    let refusal = log.lock().expect("log").lines().find(|l| l.contains("watchlist not taken")).expect("refusal").to_string();
    assert!(refusal.contains("reference/watchlist.csv") && refusal.contains("row 2") && refusal.contains("severity 9"), "{refusal}");
    assert_eq!(query(&uri, entries), expected, "the list it had");
    // Said once, in the log and on the console, not at every reload (1 s).
    std::thread::sleep(Duration::from_secs(3));
    let said = |what: &str| log.lock().expect("log").lines().filter(|l| l.contains(what)).count();
    assert_eq!((said("the watchlist file was not taken"), said("watchlist not taken")), (1, 1), "{}", log.lock().expect("log"));

    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = child.wait().expect("serve stops");
    assert!(status.success(), "serve exits cleanly on SIGTERM:\n{}", log.lock().expect("log"));
    assert!(Path::new(&list).exists());
}
