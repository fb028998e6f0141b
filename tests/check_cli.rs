//! `borderflow check` accepts the shipped example configs and exits non-zero,
//! naming file, line and field, for each class of mistake.

use std::path::Path;
use std::process::Command;

fn borderflow() -> Command {
    Command::new(env!("CARGO_BIN_EXE_borderflow"))
}

#[test]
fn every_example_config_checks() {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut checked = 0;
    for entry in std::fs::read_dir(&examples).expect("examples/ exists") {
        let path = entry.expect("readable entry").path();
        if path.extension().is_some_and(|e| e == "toml") {
            let out = borderflow().args(["check", "--config"]).arg(&path).output().expect("runs");
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert!(out.status.success(), "{}: {}", path.display(), String::from_utf8_lossy(&out.stderr));
            assert!(stdout.contains("valid"), "{stdout}");
            checked += 1;
        }
    }
    assert_eq!(checked, 8, "one example per post of the four crossings");
}

/// Writes `text` to a config file, runs `check` on it, and returns the exit
/// success and stderr.
fn check(text: &str) -> (bool, String, std::path::PathBuf, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("post.toml");
    std::fs::write(&path, text).expect("write config");
    let out = borderflow().args(["check", "--config"]).arg(&path).output().expect("runs");
    (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned(), path, dir)
}

const GOOD: &str = r#"
[post]
id = "otaci"
name = "Otaci"
country = "MD"
crossing = "otaci-mohyliv-podilskyi"

[[camera]]
id = "otaci-entry-arrival-1"
uri = "rtsp://127.0.0.1:8554/otaci-entry-arrival-1"
lane = 1
direction = "entry"
point = "arrival"
counting_line = [[0.05, 0.6], [0.95, 0.6]]
from_side = "top"
"#;

/// The 1-based line of the first line of `text` containing `needle`.
fn line_of(text: &str, needle: &str) -> usize {
    text.lines().position(|l| l.contains(needle)).expect("needle in text") + 1
}

#[test]
fn a_good_config_passes_and_bad_ones_fail_with_place_and_field() {
    let (ok, stderr, _, _dir) = check(GOOD);
    assert!(ok, "{stderr}");

    let cases = [
        ("direction = \"entry\"", "direction = \"inbound\"", "direction"),
        ("lane = 1", "lane = 1\nspeed_limit = 30", "speed_limit"),
        ("[0.95, 0.6]]", "[1.40, 0.6]]", "counting_line"),
        ("uri = \"rtsp", "url = \"rtsp", "url"),
    ];
    for (from, to, field) in cases {
        let text = GOOD.replace(from, to);
        let (ok, stderr, path, _dir) = check(&text);
        assert!(!ok, "`{to}` must be refused");
        let needle = to.lines().last().expect("a line");
        let place = format!("{}:{}:", path.display(), line_of(&text, needle));
        assert!(stderr.contains(&place), "`{to}`: expected {place} in: {stderr}");
        assert!(stderr.contains(field), "`{to}`: expected field {field} in: {stderr}");
    }

    // A TOML syntax error: an unquoted word.
    let text = GOOD.replace("from_side = \"top\"", "from_side = top");
    let (ok, stderr, path, _dir) = check(&text);
    assert!(!ok, "a syntax error must be refused");
    let place = format!("{}:{}:", path.display(), line_of(&text, "from_side = top"));
    assert!(stderr.contains(&place) && stderr.contains("from_side"), "expected {place} and from_side in: {stderr}");

    // The same camera twice: the second one is the mistake.
    let camera = &GOOD[GOOD.find("[[camera]]").expect("camera")..];
    let text = format!("{GOOD}\n{camera}");
    let (ok, stderr, path, _dir) = check(&text);
    assert!(!ok, "a duplicate camera id must be refused");
    let second = text.lines().enumerate().filter(|(_, l)| l.starts_with("id = \"otaci-entry")).nth(1).expect("second id").0 + 1;
    let place = format!("{}:{}:", path.display(), second);
    assert!(stderr.contains(&place) && stderr.contains("camera[2].id"), "expected {place} and camera[2].id in: {stderr}");
}
