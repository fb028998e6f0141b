//! Analysts reach `borderflow serve` from Python with the real ADBC Flight
//! SQL driver (adbc-driver-flightsql and pyarrow in .local/venv, installed
//! by scripts/setup): a live table, a view's snapshot, and a snapshot joined
//! with the view's Parquet changelog history; and `borderflow sql` reads
//! the same numbers locally and through the server.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use borderflow::engine::{Direction, Point, PostConfig};

const TOKEN: &str = "adbc-test-token";

#[test]
fn adbc_queries_a_served_post() {
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join(".local/venv/bin/python");
    assert!(python.exists(), "{} is missing: run scripts/setup", python.display());
    let dir = tempfile::tempdir().expect("temp dir");
    let port = common::free_port();
    common::write_token(dir.path(), "analyst", TOKEN);
    let config = write_post(dir.path(), port, "query_memory_mb = 256\nquery_timeout = \"30s\"", 0.2);
    // What the scenario holds, counted here.
    let post = PostConfig::from_file(&config).expect("config");
    let (ticks, _) = borderflow::cli::run::follow::scenario_ticks(&post, 300_000).expect("ticks");
    let reads: Vec<_> = ticks.iter().flat_map(|(_, r)| r.iter()).collect();
    let mut exits_per_lane: BTreeMap<u16, i64> = BTreeMap::new();
    for read in reads.iter().filter(|r| r.direction == Direction::Exit && r.point == Point::Departure) {
        *exits_per_lane.entry(read.lane).or_default() += 1;
    }

    let (mut child, log) = serve_to_the_end(&config, 1);

    let script = r#"
import sys
import adbc_driver_flightsql.dbapi as flightsql
uri, token = sys.argv[1], sys.argv[2]
conn = flightsql.connect(uri, db_kwargs={"adbc.flight.sql.authorization_header": f"Bearer {token}"})
cur = conn.cursor()
cur.execute("SELECT count(*) AS n FROM reads")
print("reads", cur.fetch_arrow_table().column("n")[0].as_py())
cur.execute("SELECT lane, passages FROM exits_per_lane ORDER BY lane")
for lane, passages in cur.fetchall():
    print("snapshot", lane, passages)
# A view's snapshot joined with its history (the Parquet changelog in the
# object store): each current row is there, added once more than removed.
cur.execute('''
    SELECT v.lane, v.passages, c.net
    FROM exits_per_lane v
    JOIN (SELECT lane, passages, sum(_diff) AS net FROM exits_per_lane_changes GROUP BY lane, passages) c
      ON c.lane = v.lane AND c.passages = v.passages
    ORDER BY v.lane''')
for lane, passages, net in cur.fetchall():
    print("joined", lane, passages, net)
# Browsing, as tools do: objects with their columns, table types, server info.
objects = conn.adbc_get_objects(depth="all").read_all().to_pylist()
for catalog in objects:
    for schema in catalog["catalog_db_schemas"]:
        for table in schema["db_schema_tables"]:
            columns = ",".join(c["column_name"] for c in table["table_columns"])
            print("object", catalog["catalog_name"], schema["db_schema_name"], table["table_name"], table["table_type"], columns)
print("types", ",".join(sorted(conn.adbc_get_table_types())))
info = conn.adbc_get_info()
print("info", info["vendor_name"], info["vendor_version"])
# A prepared statement with a parameter, executed twice with different values.
sql = "SELECT lane, passages FROM exits_per_lane WHERE lane = $1"
params = cur.adbc_prepare(sql)
print("parameters", ",".join(params.names) if params is not None else "-")
for lane in (int(sys.argv[3]), int(sys.argv[4])):
    cur.execute(sql, parameters=(lane,))
    for lane, passages in cur.fetchall():
        print("prepared", lane, passages)
# And one without parameters, executed twice on the same statement.
for _ in range(2):
    cur.execute("SELECT count(*) AS n FROM exits_per_lane")
    print("again", cur.fetchone()[0])
# Analysts read: every statement that would write a file, change a table
# or the session is refused, and nothing is written.
writes = [
    f"COPY (SELECT 1 AS x) TO '{sys.argv[5]}' STORED AS CSV",
    "CREATE EXTERNAL TABLE pw (line VARCHAR) STORED AS CSV LOCATION '/etc/passwd'",
    "INSERT INTO watchlist SELECT * FROM watchlist",
    "DELETE FROM reads",
    "DROP TABLE reads",
    "SET datafusion.execution.batch_size = 1",
]
for i, statement in enumerate(writes):
    try:
        cur.execute(statement)
        cur.fetchall()
        print("write", i, "accepted")
    except Exception as e:
        print("write", i, "refused" if "refused:" in str(e) else str(e).replace("\n", " ").replace(" ", "_"))
cur.execute("SELECT count(*) AS n FROM reads")
print("after", cur.fetchone()[0])
cur.close()
conn.close()
try:
    bad = flightsql.connect(uri, db_kwargs={"adbc.flight.sql.authorization_header": "Bearer wrong"})
    c = bad.cursor()
    c.execute("SELECT 1")
    print("refused", "no")
except Exception as e:
    print("refused", "yes" if "unknown bearer token" in str(e) else str(e).replace("\n", " "))
"#;
    let uri = format!("grpc://127.0.0.1:{port}");
    // Two lanes for the prepared statement: the first and last with exits.
    let (first_lane, last_lane) = match (exits_per_lane.keys().next(), exits_per_lane.keys().last()) {
        (Some(first), Some(last)) if first != last => (*first, *last),
        _ => panic!("the scenario has exits on at least two lanes: {exits_per_lane:?}"),
    };
    let output = Command::new(&python)
        .arg("-c")
        .arg(script)
        .arg(&uri)
        .arg(TOKEN)
        .arg(first_lane.to_string())
        .arg(last_lane.to_string())
        .arg(dir.path().join("copied.csv"))
        .output()
        .expect("python runs");
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    assert!(output.status.success(), "{stdout}\n{}\nserver log:\n{}", String::from_utf8_lossy(&output.stderr), log.lock().expect("log"));

    let mut snapshot = BTreeMap::new();
    let mut joined = BTreeMap::new();
    let mut reads_seen = 0;
    let mut objects: BTreeMap<String, (String, String)> = BTreeMap::new();
    let mut prepared = Vec::new();
    let mut again = Vec::new();
    let (mut types, mut info, mut parameters) = (String::new(), String::new(), String::new());
    for line in stdout.lines() {
        let parts: Vec<&str> = line.split_whitespace().collect();
        match parts.as_slice() {
            ["reads", n] => reads_seen = n.parse().expect("n"),
            ["snapshot", lane, n] => {
                snapshot.insert(lane.parse::<u16>().expect("lane"), n.parse::<i64>().expect("n"));
            }
            ["joined", lane, n, net] => {
                assert_eq!(*net, "1", "{line}");
                joined.insert(lane.parse::<u16>().expect("lane"), n.parse::<i64>().expect("n"));
            }
            ["refused", answer] => assert_eq!(*answer, "yes", "a wrong token is refused: {line}"),
            ["object", catalog, schema, table, kind, columns] => {
                assert_eq!((*catalog, *schema), ("otaci", "public"), "{line}");
                objects.insert(table.to_string(), (kind.to_string(), columns.to_string()));
            }
            ["types", list] => types = list.to_string(),
            ["info", vendor, version] => info = format!("{vendor} {version}"),
            ["parameters", names] => parameters = names.to_string(),
            ["prepared", lane, n] => prepared.push((lane.parse::<u16>().expect("lane"), n.parse::<i64>().expect("n"))),
            ["again", n] => again.push(n.parse::<usize>().expect("n")),
            ["write", i, answer] => assert_eq!(*answer, "refused", "write statement {i} must be refused: {line}"),
            ["after", n] => assert_eq!(n.parse::<usize>().expect("n"), reads.len(), "the writes changed nothing: {line}"),
            _ => panic!("unexpected line {line}"),
        }
    }
    assert_eq!(reads_seen, reads.len(), "{stdout}");
    assert_eq!(snapshot, exits_per_lane);
    assert_eq!(joined, exits_per_lane);

    // Browsing: the engine's tables, the view and its changelog, with their columns.
    assert_eq!(objects.get("exits_per_lane"), Some(&("VIEW".to_string(), "lane,passages".to_string())), "{objects:?}");
    let reads_columns = borderflow::engine::plate_read_schema().fields().iter().map(|f| f.name().clone()).collect::<Vec<_>>().join(",");
    assert_eq!(objects.get("reads"), Some(&("TABLE".to_string(), reads_columns)), "{objects:?}");
    assert_eq!(objects.get("exits_per_lane_changes").map(|(kind, columns)| (kind.as_str(), columns.as_str())), Some(("TABLE", "lane,passages,_diff,_time")));
    for table in ["pre_arrival", "read_keys", "posts", "post_routes", "watchlist"] {
        assert_eq!(objects.get(table).map(|(kind, _)| kind.as_str()), Some("TABLE"), "{table} in {objects:?}");
    }
    assert_eq!(types, "TABLE,VIEW");
    assert_eq!(info, format!("Borderflow {}", env!("CARGO_PKG_VERSION")));
    // The prepared statement: one parameter, two executions, each lane's own count.
    assert_eq!(parameters, "$1");
    assert_eq!(prepared, vec![(first_lane, exits_per_lane[&first_lane]), (last_lane, exits_per_lane[&last_lane])]);
    assert_eq!(again, vec![exits_per_lane.len(); 2]);
    // Every request is audited with the analyst's name: catalog commands,
    // preparing, binding and executing.
    let audit = dir.path().join("data/audit/otaci/sql");
    let records: Vec<serde_json::Value> = common::files_under(&audit)
        .iter()
        .map(|p| serde_json::from_slice(&std::fs::read(p).expect("audit record")).expect("audit JSON"))
        .collect();
    let by = |request: &str| records.iter().filter(|r| r["request"] == request && r["user"] == "analyst" && r["auth"] == "token").count();
    for request in ["GetCatalogs", "GetDbSchemas", "GetTables", "GetTableTypes", "GetSqlInfo", "CreatePreparedStatement", "ClosePreparedStatement"] {
        assert!(by(request) >= 1, "no audited {request}: {records:?}");
    }
    assert_eq!(by("BindParameters"), 2, "{records:?}");
    let bound: Vec<&serde_json::Value> = records.iter().filter(|r| r["request"] == "PreparedStatementQuery" && r["sql"] == "SELECT lane, passages FROM exits_per_lane WHERE lane = $1").collect();
    assert_eq!(bound.len(), 2, "{records:?}");
    assert!(bound.iter().all(|r| r["rows"] == 1 && r["parameters"].as_array().is_some_and(|p| p.len() == 1)), "{bound:?}");
    assert!(records.iter().any(|r| r["user"] == "(refused)" && r["error"] == "unknown bearer token"), "{records:?}");
    // The refused writes: audited with what they were, and no file written.
    assert!(!dir.path().join("copied.csv").exists(), "COPY TO wrote a file on the server");
    let refused: Vec<&str> = records.iter().filter(|r| r["error"].as_str().is_some_and(|e| e.starts_with("refused:"))).filter_map(|r| r["error"].as_str()).collect();
    for kind in ["COPY TO", "CreateExternalTable", "DML (Insert Into", "DML (Delete", "DropTable", "SetVariable"] {
        assert!(refused.iter().any(|e| e.contains(kind)), "no audited refusal naming {kind}: {refused:?}");
    }
    // A fetch is audited too, with its rows and bytes.
    assert!(
        records.iter().any(|r| r["request"] == "DoGet" && r["user"] == "analyst" && r["rows"].as_u64().is_some() && r["bytes"].as_u64().is_some_and(|b| b > 0)),
        "no audited DoGet with rows and bytes: {records:?}"
    );

    // `borderflow sql` against the server, as CSV.
    let remote = Command::new(env!("CARGO_BIN_EXE_borderflow"))
        .args(["sql", "SELECT lane, passages FROM exits_per_lane ORDER BY lane", "--server", &uri, "--format", "csv"])
        .env("BORDERFLOW_TOKEN", TOKEN)
        .output()
        .expect("sql runs");
    assert!(remote.status.success(), "{}", String::from_utf8_lossy(&remote.stderr));
    let expected_csv: String = std::iter::once("lane,passages\n".to_string()).chain(exits_per_lane.iter().map(|(l, n)| format!("{l},{n}\n"))).collect();
    assert_eq!(String::from_utf8_lossy(&remote.stdout), expected_csv);

    // Stop the post cleanly (SIGTERM: it writes its snapshots), then query its data directory.
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = child.wait().expect("serve stops");
    assert!(status.success(), "serve exits cleanly on SIGTERM:\n{}", log.lock().expect("log"));
    let local = Command::new(env!("CARGO_BIN_EXE_borderflow"))
        .args(["sql", "SELECT sum(passages) AS total FROM exits_per_lane", "--config"])
        .arg(&config)
        .args(["--format", "json"])
        .output()
        .expect("sql runs");
    assert!(local.status.success(), "{}", String::from_utf8_lossy(&local.stderr));
    let total: i64 = exits_per_lane.values().sum();
    assert_eq!(String::from_utf8_lossy(&local.stdout).trim(), format!("[{{\"total\":{total}}}]"));
    // The same over the data folder named by a relative path.
    let relative = Command::new(env!("CARGO_BIN_EXE_borderflow"))
        .current_dir(dir.path())
        .args(["sql", "SELECT sum(passages) AS total FROM exits_per_lane", "--data", "data", "--format", "json"])
        .output()
        .expect("sql runs");
    assert!(relative.status.success(), "{}", String::from_utf8_lossy(&relative.stderr));
    assert_eq!(String::from_utf8_lossy(&relative.stdout).trim(), format!("[{{\"total\":{total}}}]"));
}

/// Roles: tokens map to roles in the post's config, and a role reads only
/// what it is granted. A border-police desk reads its views but not `reads`
/// (neither by query, qualified or not, nor in the catalog, `SHOW TABLES`
/// or `information_schema`); an auditor reads the audit log, where the
/// desk's fetches are, with their rows; a token user in no role is refused.
/// And the view's changes reach the store on serve's timer, not only every
/// N commits.
#[test]
fn roles_grant_each_analyst_what_they_may_read() {
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join(".local/venv/bin/python");
    assert!(python.exists(), "{} is missing: run scripts/setup", python.display());
    let dir = tempfile::tempdir().expect("temp dir");
    let port = common::free_port();
    common::write_tokens(dir.path(), &[("desk-1", "police-token"), ("audit-1", "auditor-token"), ("intern", "intern-token")]);
    let roles = r#"
[[serve.role]]
name = "border-police"
read = ["exits_per_lane", "post*"]
users = ["desk-1"]

[[serve.role]]
name = "auditor"
read = ["audit_log"]
users = ["audit-1"]
"#;
    let config = write_post(dir.path(), port, roles, 0.1);
    let (mut child, log) = serve_to_the_end(&config, 1_000_000);
    // With a commit count it never reaches (`--sink-every`), the view's
    // changes are still written within seconds: serve flushes on a timer.
    let changes = dir.path().join("data/views/exits_per_lane/changes");
    let flushed_by = Instant::now() + Duration::from_secs(20);
    while !common::files_under(&changes).iter().any(|p| p.extension().is_some_and(|e| e == "parquet")) {
        assert!(Instant::now() < flushed_by, "no changelog part written within 20 s of the scenario's end:\n{}", log.lock().expect("log"));
        std::thread::sleep(Duration::from_millis(200));
    }
    let script = r#"
import sys, json, time
import adbc_driver_flightsql.dbapi as flightsql
uri = sys.argv[1]
def connect(token):
    return flightsql.connect(uri, db_kwargs={"adbc.flight.sql.authorization_header": f"Bearer {token}"})
def attempt(cur, sql):
    try:
        cur.execute(sql)
        return [list(row) for row in cur.fetchall()]
    except Exception as e:
        return "error: " + str(e).replace("\n", " ")
police = connect(sys.argv[2])
cur = police.cursor()
objects = police.adbc_get_objects(depth="tables").read_all().to_pylist()
print(json.dumps({
    "reads": attempt(cur, "SELECT count(*) FROM reads"),
    "qualified": attempt(cur, "SELECT count(*) FROM otaci.public.reads"),
    "joined": attempt(cur, "SELECT count(*) FROM exits_per_lane e JOIN reads r ON r.lane = e.lane"),
    "passages": attempt(cur, "SELECT sum(passages) FROM exits_per_lane"),
    "show": attempt(cur, "SHOW TABLES"),
    "schema": attempt(cur, "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY table_name"),
    "objects": sorted(t["table_name"] for c in objects for s in c["catalog_db_schemas"] for t in s["db_schema_tables"]),
    "audit": attempt(cur, "SELECT count(*) FROM audit_log"),
}, default=str))
cur.close()
police.close()
auditor = connect(sys.argv[3])
cur = auditor.cursor()
fetched = []
for _ in range(20):
    fetched = attempt(cur, "SELECT \"user\", role, rows FROM audit_log WHERE request = 'DoGet' AND \"user\" = 'desk-1' AND rows = 1")
    if isinstance(fetched, list) and fetched:
        break
    time.sleep(0.25)
print(json.dumps({"fetched": fetched, "auditor_reads": attempt(cur, "SELECT count(*) FROM reads")}, default=str))
cur.close()
auditor.close()
try:
    intern = connect(sys.argv[4])
    c = intern.cursor()
    c.execute("SELECT 1")
    print(json.dumps({"intern": "admitted"}))
except Exception as e:
    print(json.dumps({"intern": str(e).replace("\n", " ")}))
"#;
    let uri = format!("grpc://127.0.0.1:{port}");
    let output = Command::new(&python)
        .args(["-c", script, &uri, "police-token", "auditor-token", "intern-token"])
        .output()
        .expect("python runs");
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    assert!(output.status.success(), "{stdout}\n{}\nserver log:\n{}", String::from_utf8_lossy(&output.stderr), log.lock().expect("log"));
    let answers: serde_json::Map<String, serde_json::Value> = stdout
        .lines()
        .flat_map(|line| match serde_json::from_str::<serde_json::Value>(line) {
            Ok(serde_json::Value::Object(map)) => map,
            _ => panic!("unexpected line {line}"),
        })
        .collect();
    let refused = |key: &str, table: &str| {
        let answer = answers[key].as_str().unwrap_or_else(|| panic!("{key} was answered: {answers:?}"));
        assert!(answer.contains(&format!("may not read `{table}`")), "{key}: {answer}");
    };
    refused("reads", "reads");
    refused("qualified", "reads");
    refused("joined", "reads");
    refused("audit", "audit_log");
    refused("auditor_reads", "reads");
    // What the desk may read is answered in full.
    let post = PostConfig::from_file(&config).expect("config");
    let (ticks, _) = borderflow::cli::run::follow::scenario_ticks(&post, 300_000).expect("ticks");
    let exits = ticks.iter().flat_map(|(_, r)| r.iter()).filter(|r| r.direction == Direction::Exit && r.point == Point::Departure).count();
    assert_eq!(answers["passages"], serde_json::json!([[exits]]), "{answers:?}");
    // The catalog, SHOW TABLES and information_schema show the granted tables only.
    let granted = ["exits_per_lane", "post_routes", "posts"];
    assert_eq!(answers["objects"], serde_json::json!(granted), "{answers:?}");
    assert_eq!(answers["schema"], serde_json::json!(granted.map(|t| [t])), "{answers:?}");
    let shown: Vec<&str> = answers["show"].as_array().expect("SHOW TABLES answered").iter().filter(|row| row[1] == "public").filter_map(|row| row[2].as_str()).collect();
    assert_eq!(shown.iter().copied().collect::<std::collections::BTreeSet<&str>>(), granted.into_iter().collect::<std::collections::BTreeSet<&str>>(), "{answers:?}");
    // The auditor sees the desk's fetch of one row, with its role.
    let fetched = answers["fetched"].as_array().unwrap_or_else(|| panic!("the auditor's query failed: {answers:?}"));
    assert!(fetched.iter().any(|row| row[0] == "desk-1" && row[1] == "border-police" && row[2] == 1), "{answers:?}");
    // A token whose user is in no role is refused, and audited.
    let intern = answers["intern"].as_str().expect("intern");
    assert!(intern.contains("is in no role"), "{intern}");
    let _ = child.kill();
    let _ = child.wait();
    let records: Vec<serde_json::Value> = common::files_under(&dir.path().join("data/audit/otaci/sql"))
        .iter()
        .map(|p| serde_json::from_slice(&std::fs::read(p).expect("audit record")).expect("audit JSON"))
        .collect();
    assert!(records.iter().any(|r| r["user"] == "(refused)" && r["error"].as_str().is_some_and(|e| e.contains("`intern` is in no role"))), "{records:?}");
    assert!(records.iter().any(|r| r["user"] == "desk-1" && r["role"] == "border-police" && r["error"].as_str().is_some_and(|e| e.contains("may not read `reads`"))), "{records:?}");
}

/// Writes `dir/post.toml`: Otaci with Flight SQL on `port` (tokens from
/// `dir/tokens.toml`, then `serve_extra` in `[serve]`), storage in
/// `dir/data`, the view `exits_per_lane`, and a simulated day at
/// `traffic_scale`.
fn write_post(dir: &Path, port: u16, serve_extra: &str, traffic_scale: f64) -> std::path::PathBuf {
    let config = dir.join("post.toml");
    let text = format!(
        r#"
[post]
id = "otaci"
name = "Otaci"
country = "MD"
crossing = "otaci-mohyliv-podilskyi"

[serve]
sql_listen = "127.0.0.1:{port}"
tokens = "tokens.toml"
{serve_extra}

[storage]
url = "file://./data"

[[view]]
name = "exits_per_lane"
sql = "SELECT lane, count(*) AS passages FROM reads WHERE direction = 'exit' AND point = 'departure' GROUP BY lane"

[scenario]
seed = 20261102
start = "2026-11-27"
traffic_scale = {traffic_scale}
"#
    );
    std::fs::write(&config, text).expect("config");
    config
}

/// Starts `borderflow serve` on `config`, writing view changes every
/// `sink_every` commits, and waits until its scenario is done.
fn serve_to_the_end(config: &Path, sink_every: u64) -> (std::process::Child, std::sync::Arc<std::sync::Mutex<String>>) {
    let (mut child, log) = common::spawn_logged(
        Command::new(env!("CARGO_BIN_EXE_borderflow"))
            .args(["--workers", "1", "serve", "--config"])
            .arg(config)
            .args(["--pace-ms", "0", "--sink-every", &sink_every.to_string()]),
    );
    let started = Instant::now();
    while !log.lock().expect("log").contains("scenario done") {
        if started.elapsed() > Duration::from_secs(90) {
            let _ = child.kill();
            panic!("the post did not finish its scenario:\n{}", log.lock().expect("log"));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    (child, log)
}
