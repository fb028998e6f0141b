//! The engine against a real S3-compatible server on 127.0.0.1 (moto's
//! standalone server from the project's virtual environment, started here):
//! a post runs with its log, changelogs and snapshots on `s3://`, the server
//! is stopped (SIGSTOP) for 30 seconds in the middle of the run and then
//! resumed, and the post catches up and ends with exactly what the same run
//! on `file://` wrote: no read lost, nothing doubled.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::RecvTimeoutError;
use std::time::{Duration, Instant};

use borderflow::engine::PostConfig;
use common::{assert_same_outputs, follow_to_end, outputs, spawn_follow, write_config};

const OUTAGE: Duration = Duration::from_secs(30);

/// moto's server on a free loopback port; killed when dropped.
struct Moto {
    child: Child,
    port: u16,
}

impl Drop for Moto {
    fn drop(&mut self) {
        unsafe { libc::kill(self.child.id() as i32, libc::SIGCONT) };
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_moto() -> Moto {
    let server = Path::new(env!("CARGO_MANIFEST_DIR")).join(".local/venv/bin/moto_server");
    assert!(server.exists(), "{} is missing: run scripts/setup (it installs moto[server] into .local/venv)", server.display());
    let port = TcpListener::bind("127.0.0.1:0").expect("free port").local_addr().expect("address").port();
    let child = Command::new(&server)
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("moto_server starts");
    let moto = Moto { child, port };
    let deadline = Instant::now() + Duration::from_secs(60);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "moto_server did not listen on 127.0.0.1:{port} within a minute");
        std::thread::sleep(Duration::from_millis(100));
    }
    moto
}

/// Creates a bucket with a plain HTTP PUT (moto does not check signatures).
fn create_bucket(port: u16, bucket: &str) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    write!(stream, "PUT /{bucket} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").expect("request");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("response");
    assert!(response.starts_with("HTTP/1.1 200"), "creating the bucket: {response}");
}

fn signal(child: &Child, signal: i32) {
    let sent = unsafe { libc::kill(child.id() as i32, signal) };
    assert_eq!(sent, 0, "signal {signal} to moto_server");
}

#[test]
fn a_post_on_s3_survives_a_30_second_outage() {
    let moto = start_moto();
    create_bucket(moto.port, "borderflow");
    let dir = tempfile::tempdir().expect("temp dir");
    let s3 = format!(
        "url = \"s3://borderflow/posts\"\n\n[storage.s3]\nendpoint = \"http://127.0.0.1:{}\"\nregion = \"us-east-1\"\n\
         access_key_id = \"borderflow-test\"\nsecret_access_key = \"borderflow-test\"\n\
         max_retries = 30\nretry_timeout = \"2m\"\nrequest_timeout = \"2s\"",
        moto.port
    );
    let on_s3 = write_config(dir.path(), "s3.toml", &s3, 1, 0.2);
    let on_file = write_config(dir.path(), "file.toml", "url = \"file://./reference\"", 1, 0.2);
    follow_to_end(&on_file, &["--sink-every", "6"]);

    let (mut child, lines) = spawn_follow(&on_s3, &["--sink-every", "6", "--pace-ms", "20"]);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match lines.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(line) if line.starts_with("recovered ") => break,
            Ok(_) => {}
            Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => panic!("the post did not start on S3"),
        }
    }
    std::thread::sleep(Duration::from_millis(1500));
    assert!(child.try_wait().expect("try_wait").is_none(), "the run ended before the outage; slow the feed down");
    signal(&moto.child, libc::SIGSTOP);
    let stopped = Instant::now();
    std::thread::sleep(OUTAGE);
    let still_running = child.try_wait().expect("try_wait").is_none();
    signal(&moto.child, libc::SIGCONT);
    assert!(still_running, "the post stopped during the outage instead of waiting for the store");

    let finish = Instant::now() + Duration::from_secs(180);
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        assert!(Instant::now() < finish, "the post did not catch up within 3 minutes after the outage");
        std::thread::sleep(Duration::from_millis(100));
    };
    let output: Vec<String> = lines.try_iter().collect();
    assert!(status.success(), "{status}: {output:?}");
    println!("outage {:?}; caught up {:?} after it", OUTAGE, stopped.elapsed() - OUTAGE);
    if let Some(summary) = output.iter().find(|l| l.contains("pushes retried")) {
        println!("{summary}");
    }

    let expected = outputs(&PostConfig::from_file(&on_file).expect("config"));
    let actual = outputs(&PostConfig::from_file(&on_s3).expect("config"));
    assert!(expected.logged_reads.len() > 300, "{} reads", expected.logged_reads.len());
    assert_same_outputs(&expected, &actual);
}
