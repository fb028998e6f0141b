//! The pre-arrival exchange between two posts running as two processes on
//! 127.0.0.1, with mutual TLS from certificates made here (rcgen): the
//! Ukrainian post's exit reads reach the Moldovan post as pre-arrival
//! records and produce cross-border matches, across a SIGKILL of the
//! Moldovan process; and who is refused (a peer from another authority, an
//! analyst without a valid token), with the reason in the log.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arrow::array::{Array, Int64Array, RecordBatch, StringArray};
use arrow_flight::sql::client::FlightSqlServiceClient;
use borderflow::engine::{Direction, PostConfig};
use futures::TryStreamExt;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use sha2::Digest;

const TOKEN: &str = "analyst-token-for-tests";

/// A certificate authority of one customs service.
struct Authority {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl Authority {
    fn new(name: &str) -> Authority {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().expect("CA key")).expect("CA certificate");
        Authority { issuer }
    }

    /// Writes `<dir>/<name>.pem` and `.key`, a leaf for 127.0.0.1 and localhost.
    fn leaf(&self, dir: &Path, name: &str) -> (PathBuf, PathBuf) {
        let mut params = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).expect("leaf params");
        params.distinguished_name.push(DnType::CommonName, name);
        let key = KeyPair::generate().expect("leaf key");
        let cert = params.signed_by(&key, &self.issuer).expect("leaf certificate");
        let (cert_path, key_path) = (dir.join(format!("{name}.pem")), dir.join(format!("{name}.key")));
        std::fs::write(&cert_path, cert.pem()).expect("write cert");
        std::fs::write(&key_path, key.serialize_pem()).expect("write key");
        (cert_path, key_path)
    }

    fn write(&self, path: &Path) {
        std::fs::write(path, self.issuer.pem()).expect("write CA");
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

/// One post's files: config, certificates, storage.
struct Post {
    config: PathBuf,
    sql_port: u16,
}

#[allow(clippy::too_many_arguments)]
fn write_post(dir: &Path, id: &str, name: &str, country: &str, peer: &str, peer_port: u16, listen_port: u16, sql_port: u16, peer_ca: &str) -> Post {
    std::fs::copy(Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/secrets/exchange-keys.toml"), dir.join("exchange-keys.toml")).expect("keys");
    let token_hash = hex::encode(sha2::Sha256::digest(TOKEN.as_bytes()));
    std::fs::write(dir.join("tokens.toml"), format!("[[token]]\nuser = \"ana\"\nsha256 = \"{token_hash}\"\n")).expect("tokens");
    let config = format!(
        r#"
[post]
id = "{id}"
name = "{name}"
country = "{country}"
crossing = "otaci-mohyliv-podilskyi"

[peer]
post = "{peer}"
endpoint = "https://127.0.0.1:{peer_port}"
ca = "{peer_ca}"
cert = "../certs/{id}.pem"
key = "../certs/{id}.key"
hmac_keys = "exchange-keys.toml"

[serve]
exchange_listen = "127.0.0.1:{listen_port}"
sql_listen = "127.0.0.1:{sql_port}"
tokens = "tokens.toml"
query_timeout = "60s"

[storage]
url = "file://./data"

[scenario]
seed = 20261102
start = "2026-11-27"
traffic_scale = 0.1
"#
    );
    let path = dir.join("post.toml");
    std::fs::write(&path, config).expect("config");
    Post { config: path, sql_port }
}

/// A running `borderflow serve`, its stderr collected.
struct Served {
    child: Child,
    log: Arc<Mutex<String>>,
}

fn serve(post: &Post, pace_ms: u64, standard_views: bool) -> Served {
    let mut command = Command::new(env!("CARGO_BIN_EXE_borderflow"));
    command.args(["--workers", "1", "serve", "--config"]).arg(&post.config).args(["--pace-ms", &pace_ms.to_string(), "--tick-ms", "900000", "--sink-every", "50"]);
    if standard_views {
        command.arg("--standard-views");
    }
    let (child, log) = common::spawn_logged(command.env("BORDERFLOW_LOG", "info"));
    Served { child, log }
}

impl Served {
    fn log(&self) -> String {
        self.log.lock().expect("log").clone()
    }

    fn wait_for(&self, text: &str, limit: Duration) {
        let started = Instant::now();
        while !self.log().contains(text) {
            assert!(started.elapsed() < limit, "no `{text}` within {limit:?}; log:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn kill(&mut self) {
        let _ = self.child.kill(); // SIGKILL
        let _ = self.child.wait();
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Runs `sql` on a post's Flight SQL server with `token`.
async fn query(port: u16, token: Option<&str>, sql: &str) -> Result<RecordBatch, String> {
    let channel = tonic::transport::Endpoint::from_shared(format!("http://127.0.0.1:{port}"))
        .map_err(|e| e.to_string())?
        .connect()
        .await
        .map_err(|e| e.to_string())?;
    let mut client = FlightSqlServiceClient::new(channel);
    if let Some(token) = token {
        client.set_token(token.to_string());
    }
    let info = client.execute(sql.to_string(), None).await.map_err(|e| e.to_string())?;
    let schema = Arc::new(info.clone().try_decode_schema().map_err(|e| e.to_string())?);
    let mut batches = Vec::new();
    for endpoint in info.endpoint {
        let ticket = endpoint.ticket.ok_or("no ticket")?;
        let stream = client.do_get(ticket).await.map_err(|e| e.to_string())?;
        batches.extend(stream.try_collect::<Vec<_>>().await.map_err(|e| e.to_string())?);
    }
    arrow::compute::concat_batches(&schema, &batches).map_err(|e| e.to_string())
}

fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime").block_on(future)
}

fn int(batch: &RecordBatch, column: usize) -> i64 {
    batch.column(column).as_any().downcast_ref::<Int64Array>().expect("Int64").value(0)
}

struct Crossing {
    _dir: tempfile::TempDir,
    md: Post,
    ua: Post,
}

fn crossing() -> Crossing {
    let dir = tempfile::tempdir().expect("temp dir");
    let certs = dir.path().join("certs");
    std::fs::create_dir_all(&certs).expect("certs dir");
    let (md_ca, ua_ca) = (Authority::new("MD customs test CA"), Authority::new("UA customs test CA"));
    md_ca.write(&certs.join("md-ca.pem"));
    ua_ca.write(&certs.join("ua-ca.pem"));
    md_ca.leaf(&certs, "otaci");
    ua_ca.leaf(&certs, "mohyliv-podilskyi");
    let rogue = Authority::new("Not a customs CA");
    rogue.write(&certs.join("rogue-ca.pem"));
    rogue.leaf(&certs, "rogue");
    let (md_listen, ua_listen) = (free_port(), free_port());
    let (md_dir, ua_dir) = (dir.path().join("otaci"), dir.path().join("mohyliv-podilskyi"));
    std::fs::create_dir_all(&md_dir).expect("md dir");
    std::fs::create_dir_all(&ua_dir).expect("ua dir");
    let md = write_post(&md_dir, "otaci", "Otaci", "MD", "mohyliv-podilskyi", ua_listen, md_listen, free_port(), "../certs/ua-ca.pem");
    let ua = write_post(&ua_dir, "mohyliv-podilskyi", "Mohyliv-Podilskyi", "UA", "otaci", md_listen, ua_listen, free_port(), "../certs/md-ca.pem");
    Crossing { _dir: dir, md, ua }
}

/// The Ukrainian post's exit reads, by read id.
fn ua_exit_reads(ua: &Post) -> BTreeSet<String> {
    let config = PostConfig::from_file(&ua.config).expect("UA config");
    let (ticks, _) = borderflow::follow::scenario_ticks(&config, 300_000).expect("ticks");
    ticks.iter().flat_map(|(_, reads)| reads.iter()).filter(|r| r.direction == Direction::Exit).map(|r| r.read_id.clone()).collect()
}

#[test]
fn exit_reads_cross_once_through_a_sigkill_and_make_matches() {
    let started = Instant::now();
    let crossing = crossing();
    let expected = ua_exit_reads(&crossing.ua);
    assert!(expected.len() > 50, "the scenario has UA exit reads: {}", expected.len());

    // Ukraine runs its day at 100 ms a tick (96 ticks of 15 minutes, ~10 s);
    // Moldova receives, with the standard views.
    let ua = serve(&crossing.ua, 100, false);
    let mut md = serve(&crossing.md, 100, true);
    md.wait_for("receiving pre-arrival records", Duration::from_secs(60));
    ua.wait_for("exchange peer connected", Duration::from_secs(60));
    std::thread::sleep(Duration::from_secs(2));
    // Moldova dies mid-stream and stays away while Ukraine goes on.
    md.kill();
    let killed_at = Instant::now();
    ua.wait_for("exchange peer unreachable", Duration::from_secs(30));
    std::thread::sleep(Duration::from_secs(4).saturating_sub(killed_at.elapsed()));
    let md = serve(&crossing.md, 100, true);

    // Everything arrives: every UA exit read, once.
    let deadline = Instant::now() + Duration::from_secs(90);
    let distinct_sql = "SELECT count(DISTINCT read_id) AS reads, count(*) AS rows FROM pre_arrival";
    let arrived = loop {
        match block_on(query(crossing.md.sql_port, Some(TOKEN), distinct_sql)) {
            Ok(batch) if int(&batch, 0) as usize == expected.len() => break batch,
            Ok(_) | Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(500)),
            other => panic!("pre-arrival records did not all arrive: {other:?}\nMD log:\n{}\nUA log:\n{}", md.log(), ua.log()),
        }
    };
    assert_eq!(int(&arrived, 0) as usize, expected.len());
    // None twice: each (read, variant, key version) is one row.
    let repeats = block_on(query(
        crossing.md.sql_port,
        Some(TOKEN),
        "SELECT read_id, variant, key_version, count(*) AS n FROM pre_arrival GROUP BY read_id, variant, key_version HAVING count(*) > 1",
    ))
    .expect("repeats query");
    assert_eq!(repeats.num_rows(), 0, "records applied twice");
    let ids = block_on(query(crossing.md.sql_port, Some(TOKEN), "SELECT DISTINCT read_id FROM pre_arrival")).expect("ids");
    let ids = ids.column(0).as_any().downcast_ref::<StringArray>().expect("text");
    let received: BTreeSet<String> = (0..ids.len()).map(|i| ids.value(i).to_string()).collect();
    assert_eq!(received, expected, "exactly the UA exit reads arrived");
    // No plate text crossed: the pre-arrival table has no plate column.
    let columns = block_on(query(crossing.md.sql_port, Some(TOKEN), "SELECT * FROM pre_arrival LIMIT 1")).expect("columns");
    assert!(columns.schema().fields().iter().all(|f| !f.name().starts_with("plate_") || f.name() == "plate_hmac"));

    // And they make cross-border matches at Otaci, each with a UA exit read,
    // once Otaci's own arrivals are in.
    md.wait_for("scenario done", Duration::from_secs(120));
    let matches = block_on(query(
        crossing.md.sql_port,
        Some(TOKEN),
        "SELECT exit_read_id, match FROM cross_border_matches WHERE exit_post_id = 'mohyliv-podilskyi'",
    ))
    .expect("matches");
    // Two exit reads a vehicle (arrival and departure at Mohyliv-Podilskyi);
    // most vehicles that leave Ukraine here enter Moldova at Otaci the same day.
    let vehicles = expected.len() / 2;
    assert!(matches.num_rows() * 2 >= vehicles, "{} matches for {vehicles} vehicles leaving Ukraine", matches.num_rows());
    let exit_ids = matches.column(0).as_any().downcast_ref::<StringArray>().expect("text");
    assert!((0..exit_ids.len()).all(|i| expected.contains(exit_ids.value(i))));
    eprintln!(
        "{} UA exit reads arrived once each; {} cross-border matches; {:.1}s",
        expected.len(),
        matches.num_rows(),
        started.elapsed().as_secs_f64()
    );
}

#[test]
fn a_peer_from_another_authority_and_an_analyst_without_a_token_are_refused() {
    let crossing = crossing();
    let md = serve(&crossing.md, 1000, false);
    md.wait_for("Flight SQL for analysts", Duration::from_secs(60));
    let certs = crossing.md.config.parent().and_then(Path::parent).expect("dir").join("certs");
    let md_listen = std::fs::read_to_string(&crossing.md.config).expect("config");
    let port: u16 = md_listen.split("exchange_listen = \"127.0.0.1:").nth(1).and_then(|r| r.split('"').next()).and_then(|p| p.parse().ok()).expect("port");

    // A "peer" whose certificate comes from another authority.
    let refused = block_on(async {
        let tls = tonic::transport::ClientTlsConfig::new()
            .domain_name("127.0.0.1")
            .ca_certificate(tonic::transport::Certificate::from_pem(std::fs::read(certs.join("md-ca.pem")).expect("ca")))
            .identity(tonic::transport::Identity::from_pem(
                std::fs::read(certs.join("rogue.pem")).expect("cert"),
                std::fs::read(certs.join("rogue.key")).expect("key"),
            ));
        let channel = tonic::transport::Endpoint::from_shared(format!("https://127.0.0.1:{port}")).expect("url").tls_config(tls).expect("tls").connect().await;
        match channel {
            Err(error) => Err(error.to_string()),
            Ok(channel) => {
                let mut client = arrow_flight::flight_service_client::FlightServiceClient::new(channel);
                client.list_actions(arrow_flight::Empty {}).await.map(|_| ()).map_err(|e| e.to_string())
            }
        }
    });
    assert!(refused.is_err(), "a certificate from another authority was accepted");
    md.wait_for("TLS handshake refused", Duration::from_secs(10));
    let log = md.log();
    let line = log.lines().find(|l| l.contains("TLS handshake refused")).expect("refusal line");
    assert!(line.contains("UnknownIssuer") || line.to_lowercase().contains("unknown issuer"), "the reason is logged: {line}");

    // Analysts: no token, a wrong token, then the right one.
    let none = block_on(query(crossing.md.sql_port, None, "SELECT 1"));
    assert!(none.as_ref().is_err_and(|e| e.contains("no bearer token")), "{none:?}");
    let wrong = block_on(query(crossing.md.sql_port, Some("guess"), "SELECT 1"));
    assert!(wrong.as_ref().is_err_and(|e| e.contains("unknown bearer token")), "{wrong:?}");
    md.wait_for("unknown bearer token", Duration::from_secs(5));
    assert!(md.log().contains("Flight SQL request refused"));
    let ok = block_on(query(crossing.md.sql_port, Some(TOKEN), "SELECT count(*) AS n FROM posts")).expect("a valid token is admitted");
    assert!(int(&ok, 0) > 0);
    // Every request, refused ones included, is in the audit log.
    let audit = crossing.md.config.parent().expect("dir").join("data/audit/otaci/sql");
    let records: Vec<String> = common::files_under(&audit).iter().map(|p| std::fs::read_to_string(p).expect("audit record")).collect();
    assert!(records.iter().any(|r| r.contains("\"user\": \"ana\"") && r.contains("FROM posts") && r.contains("\"rows\": 1")), "{records:?}");
    assert!(records.iter().any(|r| r.contains("(refused)")), "{records:?}");
}
