//! A post engineer's mistakes in a configuration file, one test per kind:
//! each error must name the file, the line of the mistake and the field.
//! Also: the example configs parse, and defaults resolve beside the file.

use std::path::{Path, PathBuf};
use std::time::Duration;

use borderflow_types::crossings::{self, CROSSINGS};
use borderflow_types::{ConfigError, Direction, Point, PostConfig, Side};

/// A small valid configuration; the tests below break it one way each.
const VALID: &str = r#"# a test post
[post]
id = "otaci"
name = "Otaci"
country = "MD"
crossing = "otaci-mohyliv-podilskyi"

[storage]
url = "file://./data"
retention = { reads = "30d", flags = "90d", crops = "7d" }

[[camera]]
id = "otaci-entry-arrival-1"
uri = "rtsp://127.0.0.1:8554/otaci-entry-arrival-1"
lane = 1
direction = "entry"
point = "arrival"
counting_line = [[0.05, 0.6], [0.95, 0.6]]
from_side = "top"
max_fps = 25

[[camera]]
id = "otaci-exit-departure-1"
uri = "file://clips/otaci-exit-departure-1.mp4"
lane = 1
direction = "exit"
point = "departure"
counting_line = [[0.05, 0.6], [0.95, 0.6]]
from_side = "bottom"

[[view]]
name = "exits_per_lane"
sql = "SELECT lane, count(*) AS passages FROM reads GROUP BY lane"
"#;

/// Writes `text` as `post.toml` in a fresh folder (kept alive by the guard).
fn write_config(text: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let path = dir.path().join("post.toml");
    std::fs::write(&path, text).expect("the config is written");
    (dir, path)
}

/// 1-based line of the `n`th (1-based) occurrence of `needle` in `text`.
fn line_of_nth(text: &str, needle: &str, n: usize) -> usize {
    let (offset, _) = text
        .match_indices(needle)
        .nth(n - 1)
        .unwrap_or_else(|| panic!("the test text has no occurrence {n} of {needle:?}"));
    text[..offset].matches('\n').count() + 1
}

fn line_of(text: &str, needle: &str) -> usize {
    line_of_nth(text, needle, 1)
}

/// Replaces the `n`th occurrence of `from` (which must exist).
fn replace_nth(text: &str, from: &str, to: &str, n: usize) -> String {
    let (offset, _) = text
        .match_indices(from)
        .nth(n - 1)
        .unwrap_or_else(|| panic!("the test text has no occurrence {n} of {from:?}"));
    format!("{}{to}{}", &text[..offset], &text[offset + from.len()..])
}

/// Reads `text` from a file and expects an error.
fn error_for(text: &str) -> (ConfigError, PathBuf, tempfile::TempDir) {
    let (dir, path) = write_config(text);
    match PostConfig::from_file(&path) {
        Ok(_) => panic!("the config was accepted:\n{text}"),
        Err(error) => (error, path, dir),
    }
}

fn assert_at(error: &ConfigError, path: &Path, line: usize, field: &str) {
    assert_eq!(error.file, path.display().to_string(), "file of {error}");
    assert_eq!(error.line, line, "line of {error}");
    assert!(error.column >= 1, "column of {error}");
    assert_eq!(error.field, field, "field of {error}");
}

#[test]
fn the_valid_config_parses() {
    let (_dir, path) = write_config(VALID);
    let config = PostConfig::from_file(&path).expect("VALID is valid");
    assert_eq!(config.post.id, "otaci");
    assert_eq!(config.cameras.len(), 2);
    assert_eq!(config.cameras[1].direction, Direction::Exit);
    assert_eq!(config.cameras[1].point, Point::Departure);
    assert_eq!(config.cameras[1].from_side, Side::Bottom);
    assert_eq!(config.cameras[1].max_fps, None);
    assert_eq!(config.cameras[0].counting_line.b, [0.95, 0.6]);
    assert_eq!(config.views[0].name, "exits_per_lane");
    assert_eq!(config.path.as_deref(), Some(path.as_path()));
}

#[test]
fn toml_syntax_error() {
    // A bare word where a quoted string belongs.
    let text = VALID.replace("from_side = \"bottom\"", "from_side = bottom");
    let (error, path, _dir) = error_for(&text);
    assert_at(&error, &path, line_of(&text, "from_side = bottom"), "camera[2].from_side");
    assert!(error.message.contains("syntax"), "{error}");
}

#[test]
fn toml_syntax_error_outside_any_key() {
    let text = VALID.replace("[[view]]", "[[view]");
    let (error, path, _dir) = error_for(&text);
    assert_eq!(error.file, path.display().to_string());
    assert_eq!(error.line, line_of(&text, "[[view]"));
}

#[test]
fn unknown_field() {
    let text = replace_nth(VALID, "max_fps = 25", "max_fsp = 25", 1);
    let (error, path, _dir) = error_for(&text);
    assert_at(&error, &path, line_of(&text, "max_fsp"), "camera[1].max_fsp");
    assert!(error.message.contains("unknown field `max_fsp`"), "{error}");
    assert!(error.message.contains("max_fps"), "the known fields are listed: {error}");
}

#[test]
fn unknown_field_in_an_inline_table() {
    let text = VALID.replace("crops = \"7d\"", "crops = \"7d\", frames = \"1d\"");
    let (error, path, _dir) = error_for(&text);
    assert_at(&error, &path, line_of(&text, "retention ="), "storage.retention.frames");
}

#[test]
fn missing_camera_uri() {
    let text = VALID.replace("uri = \"file://clips/otaci-exit-departure-1.mp4\"\n", "");
    let (error, path, _dir) = error_for(&text);
    // The table that lacks the field: the second [[camera]] header.
    assert_at(&error, &path, line_of_nth(&text, "[[camera]]", 2), "camera[2].uri");
    assert!(error.message.contains("`uri` is missing"), "{error}");
}

#[test]
fn misspelt_table() {
    let text = VALID.replace("[post]", "[postt]");
    let (error, path, _dir) = error_for(&text);
    assert_at(&error, &path, line_of(&text, "[postt]"), "postt");
}

#[test]
fn missing_post_table() {
    let start = VALID.find("[post]").unwrap_or(0);
    let end = VALID.find("[storage]").unwrap_or(0);
    let text = format!("{}{}", &VALID[..start], &VALID[end..]);
    let (error, path, _dir) = error_for(&text);
    // Missing from the top level: the error points at the start of the file.
    assert_at(&error, &path, 1, "post");
    assert!(error.message.contains("[post] is missing"), "{error}");
}

#[test]
fn unknown_direction() {
    let text = replace_nth(VALID, "direction = \"exit\"", "direction = \"out\"", 1);
    let (error, path, _dir) = error_for(&text);
    assert_at(&error, &path, line_of(&text, "direction = \"out\""), "camera[2].direction");
    assert!(error.message.contains("\"out\"") && error.message.contains("entry"), "{error}");
    assert_eq!(error.column, "direction = ".len() + 1, "the column of the value: {error}");
}

#[test]
fn unknown_point_and_side() {
    let text = VALID.replace("point = \"arrival\"", "point = \"gate\"");
    let (error, path, _dir) = error_for(&text);
    assert_at(&error, &path, line_of(&text, "point = \"gate\""), "camera[1].point");

    let text = VALID.replace("from_side = \"bottom\"", "from_side = \"north\"");
    let (error, path, _dir) = error_for(&text);
    assert_at(&error, &path, line_of(&text, "\"north\""), "camera[2].from_side");
}

#[test]
fn duplicate_camera_id() {
    let text = VALID.replace("id = \"otaci-exit-departure-1\"", "id = \"otaci-entry-arrival-1\"");
    let (error, path, _dir) = error_for(&text);
    let first = line_of_nth(&text, "id = \"otaci-entry-arrival-1\"", 1);
    let second = line_of_nth(&text, "id = \"otaci-entry-arrival-1\"", 2);
    assert_at(&error, &path, second, "camera[2].id");
    assert!(error.message.contains(&format!("line {first}")), "names the first: {error}");
}

#[test]
fn counting_line_outside_the_frame() {
    let text = replace_nth(VALID, "[[0.05, 0.6], [0.95, 0.6]]", "[[0.05, 0.6], [1.2, 0.6]]", 2);
    let (error, path, _dir) = error_for(&text);
    assert_at(&error, &path, line_of(&text, "[1.2, 0.6]"), "camera[2].counting_line");
    assert!(error.message.contains("outside the frame"), "{error}");
}

#[test]
fn counting_line_with_two_equal_points() {
    let text = replace_nth(VALID, "[[0.05, 0.6], [0.95, 0.6]]", "[[0.5, 0.6], [0.5, 0.6]]", 1);
    let (error, path, _dir) = error_for(&text);
    assert_at(&error, &path, line_of(&text, "[[0.5, 0.6], [0.5, 0.6]]"), "camera[1].counting_line");
    assert!(error.message.contains("the same"), "{error}");
}

#[test]
fn counting_line_of_the_wrong_shape() {
    let text = replace_nth(VALID, "[[0.05, 0.6], [0.95, 0.6]]", "[0.05, 0.6, 0.95, 0.6]", 1);
    let (error, path, _dir) = error_for(&text);
    assert_at(&error, &path, line_of(&text, "[0.05, 0.6, 0.95, 0.6]"), "camera[1].counting_line[1]");
}

#[test]
fn bad_camera_uri_scheme() {
    let text = VALID.replace("rtsp://127.0.0.1", "ftp://127.0.0.1");
    let (error, path, _dir) = error_for(&text);
    assert_at(&error, &path, line_of(&text, "ftp://"), "camera[1].uri");
    assert!(error.message.contains("`ftp`"), "names the scheme: {error}");
}

#[test]
fn lane_zero() {
    let text = replace_nth(VALID, "lane = 1", "lane = 0", 2);
    let (error, path, _dir) = error_for(&text);
    assert_at(&error, &path, line_of(&text, "lane = 0"), "camera[2].lane");
}

#[test]
fn wrong_type() {
    let text = replace_nth(VALID, "lane = 1", "lane = \"one\"", 1);
    let (error, path, _dir) = error_for(&text);
    assert_at(&error, &path, line_of(&text, "lane = \"one\""), "camera[1].lane");
    assert!(error.message.contains("whole number"), "{error}");
}

#[test]
fn bad_duration() {
    let text = VALID.replace("flags = \"90d\"", "flags = \"3 months\"");
    let (error, path, _dir) = error_for(&text);
    assert_at(&error, &path, line_of(&text, "3 months"), "storage.retention.flags");
    assert!(error.message.contains("not a duration"), "{error}");
}

#[test]
fn duplicate_view_name() {
    let text = format!("{VALID}\n[[view]]\nname = \"exits_per_lane\"\nsql = \"SELECT 1\"\n");
    let (error, path, _dir) = error_for(&text);
    let first = line_of_nth(&text, "name = \"exits_per_lane\"", 1);
    let second = line_of_nth(&text, "name = \"exits_per_lane\"", 2);
    assert_at(&error, &path, second, "view[2].name");
    assert!(error.message.contains(&format!("line {first}")), "{error}");
}

#[test]
fn country_not_two_capital_letters() {
    let text = VALID.replace("country = \"MD\"", "country = \"md\"");
    let (error, path, _dir) = error_for(&text);
    assert_at(&error, &path, line_of(&text, "country"), "post.country");
    assert!(error.message.contains("\"MD\""), "suggests the fix: {error}");

    let text = VALID.replace("country = \"MD\"", "country = \"MDA\"");
    let (error, path, _dir) = error_for(&text);
    assert_at(&error, &path, line_of(&text, "country"), "post.country");
}

#[test]
fn camera_written_as_a_single_table() {
    let text = replace_nth(VALID, "[[camera]]", "[camera]", 1)
        .replace("[[camera]]\nid = \"otaci-exit", "[xx]\nid = \"otaci-exit");
    let (error, path, _dir) = error_for(&text);
    assert_eq!(error.file, path.display().to_string());
    assert_eq!(error.field, "camera", "{error}");
    assert!(error.message.contains("[[camera]]"), "{error}");
}

#[test]
fn unreadable_file() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let path = dir.path().join("absent.toml");
    let error = PostConfig::from_file(&path).expect_err("no such file");
    assert_eq!(error.file, path.display().to_string());
    assert_eq!((error.line, error.field.as_str()), (0, "(file)"));
}

#[test]
fn display_is_file_line_column_field_message() {
    let text = VALID.replace("rtsp://127.0.0.1", "ftp://127.0.0.1");
    let (error, path, _dir) = error_for(&text);
    let line = line_of(&text, "ftp://");
    let shown = error.to_string();
    let expected_start = format!("{}:{line}:7: camera[1].uri: ", path.display());
    assert!(shown.starts_with(&expected_start), "{shown}");
}

#[test]
fn defaults_resolve_beside_the_file() {
    let text = r#"
[post]
id = "otaci"
name = "Otaci"
country = "MD"
crossing = "otaci-mohyliv-podilskyi"

[peer]
post = "mohyliv-podilskyi"
cert = "certs/../certs/otaci.pem"

[scenario]
seed = 7
start = "2026-11-27"
"#;
    let (dir, path) = write_config(text);
    let config = PostConfig::from_file(&path).expect("valid");
    let data = url::Url::from_file_path(dir.path().join("data")).expect("an absolute path");
    assert_eq!(config.storage.url, data.to_string());
    assert!(config.storage.url.starts_with("file:///"), "{}", config.storage.url);
    let day = Duration::from_secs(86_400);
    assert_eq!(config.storage.retention.reads, 30 * day);
    assert_eq!(config.storage.retention.flags, 90 * day);
    assert_eq!(config.storage.retention.crops, 7 * day);
    let peer = config.peer.expect("a peer");
    assert_eq!(peer.cert, Some(dir.path().join("certs").join("otaci.pem")));
    assert_eq!(peer.endpoint, None);
    let scenario = config.scenario.expect("a scenario");
    assert_eq!((scenario.seed, scenario.days, scenario.traffic_scale), (7, 1, 1.0));
    assert!(config.cameras.is_empty() && config.views.is_empty());
}

#[test]
fn storage_urls_resolve_against_the_config_folder() {
    let (dir, path) = write_config(&VALID.replace("file://./data", "file://./store/../archive"));
    let config = PostConfig::from_file(&path).expect("valid");
    let expected = url::Url::from_file_path(dir.path().join("archive")).expect("an absolute path");
    assert_eq!(config.storage.url, expected.to_string());

    let (_dir, path) = write_config(&VALID.replace("file://./data", "s3://customs-md/otaci"));
    let config = PostConfig::from_file(&path).expect("valid");
    assert_eq!(config.storage.url, "s3://customs-md/otaci");

    let text = VALID.replace("file://./data", "ftp://host/data");
    let (error, path, _dir) = error_for(&text);
    assert_at(&error, &path, line_of(&text, "ftp://"), "storage.url");
}

#[test]
fn recording_and_image_folder_paths_resolve_against_the_config_folder() {
    let text = VALID.replace("file://clips/otaci-exit-departure-1.mp4", "file://../recordings/./lane-1.mp4");
    let (dir, path) = write_config(&text);
    let config = PostConfig::from_file(&path).expect("valid");
    let parent = dir.path().parent().expect("the temp dir has a parent");
    assert_eq!(config.cameras[1].uri, format!("file://{}", parent.join("recordings/lane-1.mp4").display()));

    let (dir, path) = write_config(&VALID.replace("file://clips/otaci-exit-departure-1.mp4", "dir://frames/lane-1"));
    let config = PostConfig::from_file(&path).expect("valid");
    assert_eq!(config.cameras[1].uri, format!("dir://{}", dir.path().join("frames/lane-1").display()));

    // Absolute paths and streams are kept as written.
    let (_dir, path) = write_config(&VALID.replace("file://clips/otaci-exit-departure-1.mp4", "file:///srv/clips/lane-1.mp4"));
    let config = PostConfig::from_file(&path).expect("valid");
    assert_eq!(config.cameras[1].uri, "file:///srv/clips/lane-1.mp4");
    assert!(config.cameras[0].uri.starts_with("rtsp://"), "{}", config.cameras[0].uri);
}

#[test]
fn recording_defaults_resolve_and_cameras_record_what_they_can() {
    // An empty [recording]: the folder `video` in the file:// store, one-minute segments, every camera recorded.
    let text = format!("{VALID}\n[recording]\n");
    let (dir, path) = write_config(&text);
    let config = PostConfig::from_file(&path).expect("valid");
    let recording = config.recording.expect("[recording]");
    assert_eq!(recording.path, dir.path().join("data").join("video"));
    assert_eq!(recording.segment, Duration::from_secs(60));
    assert!(config.cameras.iter().all(|c| c.source.record), "{:?}", config.cameras);
    assert_eq!(config.storage.retention.video, Duration::from_secs(30 * 86_400));

    // A path beside the file, a segment length, one camera off, a video retention.
    let text = replace_nth(VALID, "from_side = \"bottom\"", "from_side = \"bottom\"\nrecord = \"off\"", 1)
        .replace("crops = \"7d\" }", "crops = \"7d\", video = \"14d\" }")
        + "\n[recording]\npath = \"../rec/./otaci\"\nsegment = \"10s\"\n";
    let (dir, path) = write_config(&text);
    let config = PostConfig::from_file(&path).expect("valid");
    let recording = config.recording.expect("[recording]");
    assert_eq!(recording.path, dir.path().parent().expect("parent").join("rec/otaci"));
    assert_eq!(recording.segment, Duration::from_secs(10));
    assert_eq!((config.cameras[0].source.record, config.cameras[1].source.record), (true, false));
    assert_eq!(config.storage.retention.video, Duration::from_secs(14 * 86_400));

    // Without [recording] nothing is recorded; an MJPEG camera is not recorded by default.
    let (_dir, path) = write_config(VALID);
    let config = PostConfig::from_file(&path).expect("valid");
    assert!(config.recording.is_none() && config.cameras.iter().all(|c| !c.source.record));
    let text = VALID.replace("rtsp://127.0.0.1:8554/otaci-entry-arrival-1", "http://127.0.0.1:8080/lane.mjpg") + "\n[recording]\n";
    let (_dir, path) = write_config(&text);
    let config = PostConfig::from_file(&path).expect("valid");
    assert_eq!((config.cameras[0].source.record, config.cameras[1].source.record), (false, true));
}

#[test]
fn recording_mistakes_name_their_line_and_field() {
    let with_recording = |extra: &str| format!("{VALID}\n[recording]\n{extra}");
    let cases: Vec<(String, &str, &str, &str)> = vec![
        // (text, the text of the line at fault, field, words of the message)
        (with_recording("segment = \"1s\"\n"), "segment = ", "recording.segment", "2s to 1h"),
        (with_recording("segment = \"2h\"\n"), "segment = ", "recording.segment", "2s to 1h"),
        (with_recording("segment = \"a minute\"\n"), "segment = ", "recording.segment", "not a duration"),
        (with_recording("path = \"\"\n"), "path = ", "recording.path", "empty"),
        (with_recording("keep = \"7d\"\n"), "keep = ", "recording.keep", "known fields: path, segment"),
        (
            replace_nth(VALID, "max_fps = 25", "max_fps = 25\nrecord = \"continuous\"", 1),
            "record = ",
            "camera[1].record",
            "camera `otaci-entry-arrival-1` sets record, but the file has no [recording] table",
        ),
        (
            replace_nth(&with_recording(""), "max_fps = 25", "max_fps = 25\nrecord = \"always\"", 1),
            "record = ",
            "camera[1].record",
            "\"continuous\" or \"off\"",
        ),
        (
            replace_nth(&with_recording(""), "max_fps = 25", "max_fps = 25\nrecord = \"continuous\"", 1)
                .replace("rtsp://127.0.0.1:8554/otaci-entry-arrival-1", "https://127.0.0.1/lane.mjpg"),
            "record = ",
            "camera[1].record",
            "camera `otaci-entry-arrival-1` cannot be recorded",
        ),
        (VALID.replace("crops = \"7d\" }", "crops = \"7d\", video = \"soon\" }"), "retention = ", "storage.retention.video", "not a duration"),
    ];
    for (text, at, field, words) in &cases {
        let (error, path, _dir) = error_for(text);
        assert_at(&error, &path, line_of(text, at), field);
        assert!(error.message.contains(words), "{error} (expected {words:?})");
    }

    // Storage that is not a folder: the recording folder must be given, and the error says so.
    let text = VALID.replace("file://./data", "s3://customs-md/otaci") + "\n[recording]\nsegment = \"30s\"\n";
    let (error, path, _dir) = error_for(&text);
    assert_eq!((error.file.as_str(), error.field.as_str()), (path.display().to_string().as_str(), "recording.path"), "{error}");
    assert!((line_of(&text, "[recording]")..=line_of(&text, "segment = ")).contains(&error.line), "{error}");
    assert!(error.message.contains("s3://") && error.message.contains("path ="), "{error}");
    let text = text.replace("segment = \"30s\"", "path = \"/var/lib/borderflow/video\"");
    let (_dir, path) = write_config(&text);
    let config = PostConfig::from_file(&path).expect("valid");
    assert_eq!(config.recording.expect("[recording]").path, Path::new("/var/lib/borderflow/video"));
}

#[test]
fn every_example_config_parses() {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    for crossing in CROSSINGS {
        for post in crossing.posts() {
            let path = examples.join(format!("{}-{}.toml", post.id, post.country.to_lowercase()));
            let config = PostConfig::from_file(&path).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(config.post.id, post.id, "{}", path.display());
            assert_eq!(config.post.country, post.country);
            assert_eq!(config.post.crossing, crossing.id);
            assert_eq!(config.cameras.len(), usize::from(post.lanes) * 4, "{}", path.display());
            let peer = config.peer.as_ref().expect("a peer");
            assert_eq!(Some(peer.post.as_str()), crossing.peer_of(post.id).map(|p| p.id));
            for camera in &config.cameras {
                let id = crossings::camera_id(post.id, camera.direction, camera.point, camera.lane);
                assert_eq!(camera.id, id, "{}", path.display());
            }
            assert!(config.storage.url.starts_with("file:///"), "{}", config.storage.url);
            assert!(config.storage.url.ends_with(&format!("/examples/data/{}", post.id)), "{}", config.storage.url);
            assert!(config.scenario.is_some() && !config.views.is_empty());
        }
    }
}

#[test]
fn reference_tables_resolve_against_the_config_folder() {
    let text = format!("{VALID}\n[[table]]\nname = \"lane_names\"\npath = \"lanes.csv\"\n");
    let (dir, path) = write_config(&text);
    std::fs::write(dir.path().join("lanes.csv"), "lane,name\n1,cars\n").expect("csv");
    let config = PostConfig::from_file(&path).expect("valid");
    assert_eq!(config.tables[0].name, "lane_names");
    assert_eq!(config.tables[0].path, dir.path().join("lanes.csv"));
}

#[test]
fn reference_table_missing_file_wrong_kind_or_taken_name() {
    let missing = format!("{VALID}\n[[table]]\nname = \"lane_names\"\npath = \"nowhere.parquet\"\n");
    let (error, path, _dir) = error_for(&missing);
    assert_at(&error, &path, line_of(&missing, "path = \"nowhere.parquet\""), "table[1].path");
    assert!(error.message.contains("nowhere.parquet") && error.message.contains("does not exist"), "{error}");

    let wrong_kind = format!("{VALID}\n[[table]]\nname = \"lane_names\"\npath = \"lanes.xlsx\"\n");
    let (error, path, _dir) = error_for(&wrong_kind);
    assert_at(&error, &path, line_of(&wrong_kind, "path = \"lanes.xlsx\""), "table[1].path");
    assert!(error.message.contains(".parquet nor a .csv"), "{error}");

    let taken = format!("{VALID}\n[[table]]\nname = \"watchlist\"\npath = \"w.csv\"\n");
    let (error, path, _dir) = error_for(&taken);
    assert_at(&error, &path, line_of(&taken, "name = \"watchlist\""), "table[1].name");
    assert!(error.message.contains("already taken"), "{error}");
}

#[test]
fn serve_section_resolves_and_checks_its_fields() {
    let text = format!(
        "{VALID}\n[serve]\nexchange_listen = \"127.0.0.1:8817\"\nsql_listen = \"127.0.0.1:8917\"\ntokens = \"secrets/tokens.toml\"\nquery_memory_mb = 64\nquery_timeout = \"90s\"\n"
    );
    let (dir, path) = write_config(&text);
    let serve = PostConfig::from_file(&path).expect("valid").serve.expect("a [serve] section");
    assert_eq!(serve.exchange_listen.as_deref(), Some("127.0.0.1:8817"));
    assert_eq!(serve.tokens, Some(dir.path().join("secrets").join("tokens.toml")));
    assert_eq!((serve.query_memory_mb, serve.query_timeout), (64, Duration::from_secs(90)));
    assert_eq!(serve.answers_memory_mb, 2048);
    let held = text.replace("query_memory_mb = 64", "query_memory_mb = 64\nanswers_memory_mb = 100");
    let (_held_dir, held_path) = write_config(&held);
    assert_eq!(PostConfig::from_file(&held_path).expect("valid").serve.expect("serve").answers_memory_mb, 100);
    // Less than one answer of the largest size: refused, where it stands.
    let bad = text.replace("query_memory_mb = 64", "query_memory_mb = 64\nanswers_memory_mb = 32");
    let (error, path, _dir) = error_for(&bad);
    assert_at(&error, &path, line_of(&bad, "answers_memory_mb"), "serve.answers_memory_mb");
    assert!(error.message.contains("cannot hold one answer"), "{error}");

    let bad = text.replace("\"127.0.0.1:8917\"", "\"localhost\"");
    let (error, path, _dir) = error_for(&bad);
    assert_at(&error, &path, line_of(&bad, "sql_listen"), "serve.sql_listen");
    assert!(error.message.contains("not an address and port"), "{error}");

    let bad = text.replace("query_memory_mb = 64", "query_memory_mb = 0");
    let (error, path, _dir) = error_for(&bad);
    assert_at(&error, &path, line_of(&bad, "query_memory_mb"), "serve.query_memory_mb");

    let bad = text.replace("query_timeout = \"90s\"", "query_timeout = \"soon\"");
    let (error, path, _dir) = error_for(&bad);
    assert_at(&error, &path, line_of(&bad, "soon"), "serve.query_timeout");

    let bad = text.replace("tokens =", "token =");
    let (error, path, _dir) = error_for(&bad);
    assert_at(&error, &path, line_of(&bad, "token ="), "serve.token");
}

#[test]
fn camera_stream_settings_parse() {
    let text = VALID.replace(
        "max_fps = 25\n",
        "max_fps = 25\ntransport = \"udp\"\nlatency_ms = 50\nstall_timeout_ms = 2000\nqueue_frames = 64\ndecoder_threads = 2\n",
    );
    let text = text.replace(
        "uri = \"file://clips/otaci-exit-departure-1.mp4\"\n",
        "uri = \"dir://frames/exit-1\"\nimage_interval_ms = 100\n",
    );
    let (_dir, path) = write_config(&text);
    let config = PostConfig::from_file(&path).expect("the settings are valid");
    let rtsp = &config.cameras[0].source;
    assert_eq!(rtsp.transport, Some(borderflow_types::RtspTransport::Udp));
    assert_eq!((rtsp.latency_ms, rtsp.stall_timeout_ms, rtsp.queue_frames, rtsp.decoder_threads), (Some(50), Some(2000), Some(64), Some(2)));
    assert_eq!(rtsp.image_interval_ms, None);
    let folder = &config.cameras[1].source;
    assert_eq!((folder.image_interval_ms, folder.transport, folder.latency_ms), (Some(100), None, None));
}

#[test]
fn camera_transport_unknown() {
    let text = VALID.replace("max_fps = 25\n", "max_fps = 25\ntransport = \"quic\"\n");
    let (error, path, _dir) = error_for(&text);
    assert_at(&error, &path, line_of(&text, "transport = \"quic\""), "camera[1].transport");
    assert!(error.message.contains("\"tcp\"") && error.message.contains("\"udp\""), "{error}");
}

#[test]
fn camera_setting_out_of_range_or_on_the_wrong_kind_of_camera() {
    let text = VALID.replace("max_fps = 25\n", "max_fps = 25\nlatency_ms = 60000\n");
    let (error, path, _dir) = error_for(&text);
    assert_at(&error, &path, line_of(&text, "latency_ms"), "camera[1].latency_ms");
    assert!(error.message.contains("from 0 to 10000") && error.message.contains("60000"), "{error}");

    let text = VALID.replace("from_side = \"bottom\"\n", "from_side = \"bottom\"\nlatency_ms = 100\n");
    let (error, path, _dir) = error_for(&text);
    assert_at(&error, &path, line_of(&text, "latency_ms"), "camera[2].latency_ms");
    assert!(error.message.contains("rtsp:// cameras only") && error.message.contains("file://"), "{error}");

    let text = VALID.replace("from_side = \"bottom\"\n", "from_side = \"bottom\"\nqueue_frames = 0\n");
    let (error, path, _dir) = error_for(&text);
    assert_at(&error, &path, line_of(&text, "queue_frames"), "camera[2].queue_frames");
}

#[test]
fn watchlist_is_a_file_or_an_object_and_reloads_at_a_period() {
    let object = format!("{VALID}\n[watchlist]\nobject = \"/reference/watchlist.parquet\"\nreload = \"2m\"\n");
    let (_dir, path) = write_config(&object);
    let config = PostConfig::from_file(&path).expect("valid");
    let watchlist = config.watchlist.expect("a watchlist");
    assert_eq!(watchlist.from, borderflow_types::WatchlistSource::Object("reference/watchlist.parquet".into()));
    assert_eq!(watchlist.reload, Duration::from_secs(120));

    let neither = format!("{VALID}\n[watchlist]\nreload = \"30s\"\n");
    let (error, path, _dir) = error_for(&neither);
    assert_eq!(error.file, path.display().to_string());
    assert_eq!(error.field, "watchlist");
    assert!(error.message.contains("give path (a local file) or object"), "{error}");

    let both = format!("{VALID}\n[watchlist]\npath = \"w.csv\"\nobject = \"w.csv\"\n");
    let (error, path, _dir) = error_for(&both);
    assert_at(&error, &path, line_of(&both, "path = \"w.csv\""), "watchlist.path");
    assert!(error.message.contains("not both"), "{error}");

    let not_a_table = format!("{VALID}\n[watchlist]\nobject = \"reference/watchlist.xlsx\"\n");
    let (error, path, _dir) = error_for(&not_a_table);
    assert_at(&error, &path, line_of(&not_a_table, "object = "), "watchlist.object");
    assert!(error.message.contains("neither a .parquet nor a .csv"), "{error}");

    let escaping = format!("{VALID}\n[watchlist]\nobject = \"../other/watchlist.csv\"\n");
    let (error, path, _dir) = error_for(&escaping);
    assert_at(&error, &path, line_of(&escaping, "object = "), "watchlist.object");

    let zero = format!("{VALID}\n[watchlist]\nobject = \"w.csv\"\nreload = \"0s\"\n");
    let (error, path, _dir) = error_for(&zero);
    assert_at(&error, &path, line_of(&zero, "reload = "), "watchlist.reload");
}

/// A Hikvision feed, a JSON feed, a webhook and the message bus, all valid.
const INTEGRATIONS: &str = r#"
[[feed]]
id = "lane-anpr"
format = "hikvision-isapi"
listen = "127.0.0.1:8830"
tokens = "secrets/feed-tokens.toml"

[[feed.camera]]
device = "1"
id = "otaci-anpr-entry-1"
lane = 2
direction = "entry"
point = "arrival"

[[feed]]
id = "json-anpr"
format = "json"
listen = "127.0.0.1:8831"

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

[[webhook]]
name = "control-room"
url = "http://127.0.0.1:9000/flags"
timeout = "5s"

[mqtt]
broker = "mqtt://127.0.0.1:1884"
input_topic = "posts/otaci/reads/in"
buffer = 500
"#;

#[test]
fn feeds_webhooks_and_mqtt_parse_with_their_defaults() {
    let text = format!("{VALID}{INTEGRATIONS}");
    let (dir, path) = write_config(&text);
    let config = PostConfig::from_file(&path).expect("valid");
    assert_eq!(config.feeds.len(), 2);
    assert_eq!(config.feeds[0].format, borderflow_types::FeedFormat::HikvisionIsapi);
    assert_eq!(config.feeds[0].tokens.as_deref(), Some(dir.path().join("secrets/feed-tokens.toml").as_path()));
    assert_eq!(config.feeds[0].max_event_bytes, 4 * 1024 * 1024);
    assert_eq!((config.feeds[0].cameras[0].lane, config.feeds[0].cameras[0].direction), (2, Direction::Entry));
    match &config.feeds[1].format {
        borderflow_types::FeedFormat::Json(fields) => {
            assert_eq!(fields.plate, "/plate/text");
            assert_eq!(fields.image, None);
        }
        other => panic!("json-anpr is {other:?}"),
    }
    assert_eq!(config.webhooks[0].view, "risk_flags");
    assert_eq!(config.webhooks[0].timeout, Duration::from_secs(5));
    assert_eq!(config.webhooks[0].max_backoff, Duration::from_secs(300));
    let mqtt = config.mqtt.expect("[mqtt]");
    assert_eq!((mqtt.host.as_str(), mqtt.port, mqtt.buffer), ("127.0.0.1", 1884, 500));
    assert_eq!(mqtt.client_id, "borderflow-otaci");
    assert_eq!(mqtt.reads_topic, "borderflow/otaci/reads");
    assert_eq!(mqtt.health_topic, "borderflow/otaci/health");
    assert_eq!(mqtt.input_topic.as_deref(), Some("posts/otaci/reads/in"));
}

#[test]
fn feed_mistakes_name_their_line_and_field() {
    let good = format!("{VALID}{INTEGRATIONS}");
    let cases: &[(&str, &str, &str, &str, &str)] = &[
        // (from, to, the text of the line at fault, field, words of the message)
        ("format = \"json\"", "format = \"axis\"", "format = \"axis\"", "feed[2].format", "\"hikvision-isapi\" or \"json\""),
        ("listen = \"127.0.0.1:8831\"", "listen = \"localhost\"", "listen = \"localhost\"", "feed[2].listen", "not an address and port"),
        ("id = \"otaci-anpr-exit-3\"", "id = \"otaci-entry-arrival-1\"", "lane = 3", "feed[2].camera[1].id", "already used by a [[camera]]"),
        ("device = \"gate-3\"", "device = \"\"", "device = \"\"", "feed[2].camera[1].device", "empty"),
        ("direction = \"exit\"\npoint = \"departure\"\n\n[feed.fields]", "direction = \"out\"\npoint = \"departure\"\n\n[feed.fields]", "direction = \"out\"", "feed[2].camera[1].direction", "\"entry\""),
        ("plate = \"/plate/text\"", "plate = \"plate.text\"", "plate = \"plate.text\"", "feed[2].fields.plate", "not a JSON Pointer"),
        ("url = \"http://127.0.0.1:9000/flags\"", "url = \"ftp://127.0.0.1/flags\"", "url = \"ftp:", "webhook[1].url", "http:// or https://"),
        ("timeout = \"5s\"", "timeout = \"soon\"", "timeout = \"soon\"", "webhook[1].timeout", "not a duration"),
        ("broker = \"mqtt://127.0.0.1:1884\"", "broker = \"tcp://127.0.0.1:1884\"", "broker = ", "mqtt.broker", "mqtt://host:port"),
        ("buffer = 500", "buffer = 0", "buffer = 0", "mqtt.buffer", "from 1 to"),
    ];
    for (from, to, at, field, words) in cases {
        let text = replace_nth(&good, from, to, 1);
        let (error, path, _dir) = error_for(&text);
        // The camera id's line: the id line just above `lane = 3`.
        let line = if *at == "lane = 3" { line_of(&text, at) - 1 } else { line_of(&text, at) };
        assert_at(&error, &path, line, field);
        assert!(error.message.contains(words), "{error} (expected {words:?})");
    }

    // A JSON feed without its fields, a feed without cameras, client certificates without TLS.
    let text = good.replace("confidence = \"/plate/confidence\"\n", "").replace("[feed.fields]\nevent_id = \"/id\"\ncamera = \"/camera\"\nplate = \"/plate/text\"\ntime = \"/time\"\n", "");
    let (error, path, _dir) = error_for(&text);
    assert_at(&error, &path, line_of_nth(&text, "format = \"json\"", 1), "feed[2].fields");
    let text = good.replace("[[feed.camera]]\ndevice = \"1\"\nid = \"otaci-anpr-entry-1\"\nlane = 2\ndirection = \"entry\"\npoint = \"arrival\"\n", "");
    let (error, _, _dir) = error_for(&text);
    assert_eq!(error.field, "feed[1].camera");
    assert!(error.message.contains("at least one [[feed.camera]]"), "{error}");
    let text = good.replace("tokens = \"secrets/feed-tokens.toml\"", "client_ca = \"certs/cameras-ca.pem\"");
    let (error, path, _dir) = error_for(&text);
    assert_at(&error, &path, line_of(&text, "client_ca = "), "feed[1].client_ca");
    // An unknown key is refused, with its place.
    let text = good.replace("buffer = 500", "buffer = 500\nqos = 2");
    let (error, path, _dir) = error_for(&text);
    assert_eq!(error.line, line_of(&text, "qos = 2"), "{error} in {}", path.display());
}

#[test]
fn a_console_without_tokens() {
    let text = format!("{VALID}\n[serve]\nconsole_listen = \"127.0.0.1:8080\"\n");
    let (error, path, _dir) = error_for(&text);
    assert_at(&error, &path, line_of(&text, "console_listen"), "serve.console_listen");
    assert!(error.message.contains("serve.tokens"), "says what is missing: {error}");
    let with_tokens = format!("{VALID}\n[serve]\nconsole_listen = \"127.0.0.1:8080\"\ntokens = \"secrets/tokens.toml\"\n");
    let (_dir, path) = write_config(&with_tokens);
    let serve = PostConfig::from_file(&path).expect("valid").serve.expect("[serve]");
    assert_eq!(serve.console_listen.as_deref(), Some("127.0.0.1:8080"));
}
