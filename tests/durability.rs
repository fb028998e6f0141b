//! A post killed with SIGKILL at random moments, again and again, and
//! restarted each time, ends with the same views, changelogs and log as a
//! run that was never interrupted: nothing lost, nothing doubled.

mod common;

use std::sync::mpsc::RecvTimeoutError;
use std::time::{Duration, Instant};

use borderflow::engine::PostConfig;
use common::{assert_same_outputs, follow_to_end, outputs, spawn_follow, write_config};

/// A small deterministic generator for the kill moments (the seed is printed).
struct Moments(u64);

impl Moments {
    fn next_ms(&mut self, low: u64, high: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        low + self.0 % (high - low)
    }
}

#[test]
fn sigkill_at_random_moments_loses_and_doubles_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let reference = write_config(dir.path(), "reference.toml", "url = \"file://./reference\"", 1, 0.5);
    let killed = write_config(dir.path(), "killed.toml", "url = \"file://./killed\"", 1, 0.5);

    let started = Instant::now();
    follow_to_end(&reference, &["--sink-every", "5"]);
    let uninterrupted = started.elapsed();

    let seed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(7, |d| d.as_nanos() as u64) | 1;
    println!("kill moments seed {seed}; uninterrupted run {uninterrupted:?}");
    let mut moments = Moments(seed);
    let (mut kills, mut recovered_something, mut lives) = (0, 0, 0);
    let deadline = Instant::now() + Duration::from_secs(240);
    loop {
        assert!(Instant::now() < deadline, "the killed post did not finish in time ({kills} kills)");
        // Different sink cadences between lives: the sink must not care.
        let sink_every = ["--sink-every", ["3", "4", "7"][lives % 3]];
        lives += 1;
        let (mut child, lines) = spawn_follow(&killed, &[sink_every[0], sink_every[1], "--pace-ms", "40"]);
        // Wait for recovery to finish, then kill at a random moment of the feed.
        let recovered = loop {
            match lines.recv_timeout(Duration::from_secs(60)) {
                Ok(line) if line.starts_with("recovered ") => break line,
                Ok(_) => {}
                Err(RecvTimeoutError::Timeout) => panic!("no recovery line within a minute"),
                Err(RecvTimeoutError::Disconnected) => break String::new(),
            }
        };
        if !recovered.starts_with("recovered 0 ") && !recovered.is_empty() {
            recovered_something += 1;
        }
        if kills >= 12 {
            let status = child.wait().expect("wait");
            assert!(status.success(), "the last life failed: {status}");
            break;
        }
        std::thread::sleep(Duration::from_millis(moments.next_ms(20, 600)));
        match child.try_wait().expect("try_wait") {
            Some(status) => {
                // It finished before the kill: start it again to kill more.
                assert!(status.success(), "a life failed: {status}");
                panic!("the run ended after {kills} kills; slow the feed down");
            }
            None => {
                child.kill().expect("SIGKILL"); // std's kill is SIGKILL on Unix
                child.wait().expect("reaped");
                kills += 1;
            }
        }
    }
    println!("{kills} kills over {lives} lives, {recovered_something} recoveries replayed a log");
    assert!(kills >= 10);
    assert!(recovered_something >= 10, "most restarts recover from a non-empty log");

    let dir_path = dir.path();
    let expected = outputs(&PostConfig::from_file(&dir_path.join("reference.toml")).expect("config"));
    let actual = outputs(&PostConfig::from_file(&dir_path.join("killed.toml")).expect("config"));
    assert!(expected.logged_reads.len() > 1000, "a day at half traffic has more reads: {}", expected.logged_reads.len());
    assert!(expected.changes["last_hour_exits"].iter().any(|r| r.contains("|-1|")), "the temporal filter retracted rows");
    assert_same_outputs(&expected, &actual);
}
