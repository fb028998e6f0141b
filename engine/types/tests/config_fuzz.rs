//! Fuzzing the post configuration reader: random TOML-ish text, and the
//! shipped example configs damaged at random (bytes flipped, cut short,
//! lines doubled, dropped or swapped, values of the wrong type). Whatever
//! the text, reading it must not panic, and every error must name the file,
//! a line and column inside the text, and a field. The exchange key file
//! reader gets the same treatment.
//!
//! Why proptest and not cargo-fuzz or AFL: both need a nightly compiler or
//! their own toolchain, which the project's machines and CI do not have.
//! proptest runs on stable as an ordinary `cargo test`, from a fixed seed
//! by default (the same inputs every run), shrinks a failure to a small
//! input, and takes more cases from `BORDERFLOW_FUZZ_CASES` for long runs
//! (see `fuzz_config`).

use std::path::{Path, PathBuf};

use borderflow_types::config::parse_exchange_keys;
use borderflow_types::{ConfigError, PostConfig};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::TestCaseError;

use crate::fuzz_config;

fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples")
}

/// The shipped example post configs: (path, text).
fn examples() -> &'static [(PathBuf, String)] {
    static EXAMPLES: std::sync::OnceLock<Vec<(PathBuf, String)>> = std::sync::OnceLock::new();
    EXAMPLES.get_or_init(|| {
        let mut found: Vec<(PathBuf, String)> = std::fs::read_dir(examples_dir())
            .expect("examples folder")
            .flatten()
            .map(|entry| entry.path())
            .filter(|path| path.extension().is_some_and(|e| e == "toml"))
            .map(|path| {
                let text = std::fs::read_to_string(&path).expect("example config");
                (path, text)
            })
            .collect();
        found.sort();
        assert!(found.len() >= 2, "example configs: {found:?}");
        found
    })
}

/// What every outcome of reading `text` from `path` must be: a config, or
/// an error that names the file, a place inside the text and a field.
fn check_error(error: &ConfigError, text: &str, path: &Path) -> Result<(), TestCaseError> {
    prop_assert_eq!(&error.file, &path.display().to_string(), "the error names the file: {}", error);
    prop_assert!(!error.field.trim().is_empty(), "the error names a field: {}", error);
    prop_assert!(!error.message.trim().is_empty(), "the error says what is wrong: {}", error);
    prop_assert!(error.line >= 1, "the error names a line: {}", error);
    let line = text.split('\n').nth(error.line - 1);
    prop_assert!(line.is_some(), "line {} is inside the text ({} lines): {}", error.line, text.split('\n').count(), error);
    let width = line.map_or(0, |l| l.chars().count());
    prop_assert!(error.column >= 1 && error.column <= width + 1, "column {} is inside line {} ({width} characters): {}", error.column, error.line, error);
    prop_assert!(error.to_string().starts_with(&format!("{}:{}:", error.file, error.line)), "{}", error);
    Ok(())
}

fn check_config(text: &str, path: &Path) -> Result<(), TestCaseError> {
    match PostConfig::from_toml(text, path) {
        Ok(config) => {
            prop_assert_eq!(config.path.as_deref(), Some(path));
            Ok(())
        }
        Err(error) => check_error(&error, text, path),
    }
}

const KEYS: &[&str] = &[
    "id", "name", "country", "crossing", "post", "endpoint", "ca", "cert", "key", "hmac_keys", "url", "retention", "reads", "flags",
    "crops", "uri", "lane", "direction", "point", "counting_line", "from_side", "max_fps", "transport", "latency_ms", "stall_timeout_ms",
    "image_interval_ms", "queue_frames", "decoder_threads", "sql", "path", "object", "reload", "seed", "start", "days", "traffic_scale",
    "exchange_listen", "sql_listen", "tokens", "tls_cert", "tls_key", "client_ca", "query_memory_mb", "query_timeout", "result_ttl",
    "answers_memory_mb", "region", "max_retries", "allow_http", "retry_timeout", "storage.url", "post.id", "\"quoted key\"", "x",
    "segment", "record", "video",
];

const HEADERS: &[&str] = &[
    "[post]", "[peer]", "[serve]", "[storage]", "[storage.s3]", "[storage.retention]", "[[camera]]", "[[view]]", "[[table]]", "[watchlist]",
    "[recording]",
    "[scenario]", "[camera]", "[[post]]", "[post.id]", "[[camera.counting_line]]", "[", "[[", "[]", "[ post ]", "['post']",
];

const VALUES: &[&str] = &[
    "\"otaci\"", "\"Otaci\"", "\"MD\"", "\"md\"", "\"entry\"", "\"exit\"", "\"arrival\"", "\"departure\"", "\"top\"", "\"left\"", "\"30d\"",
    "\"0s\"", "\"continuous\"", "\"off\"", "\"99999999999999999999w\"", "\"rtsp://127.0.0.1:8554/a\"", "\"file://./data\"", "\"file://\"", "\"dir://frames\"",
    "\"s3://bucket/prefix\"", "\"s3://\"", "\"https://127.0.0.1:8815\"", "\"127.0.0.1:8817\"", "\"2026-11-27\"", "2026-11-27",
    "1979-05-27T07:32:00Z", "07:32:00", "[[0.05, 0.6], [0.95, 0.6]]", "[[0.5, 0.5], [0.5, 0.5]]", "[[0.1, 2.0], [0.9]]", "[]", "[[]]",
    "{}", "{ reads = \"1d\" }", "{ reads = 1 }", "\"\"\"multi\nline\"\"\"", "'''literal'''", "\"unterminated", "'", "\"\\u00e9\\x\"", "0",
    "-1", "65536", "9223372036854775807", "-9223372036854775808", "1e400", "nan", "-inf", "true", "false", "entry", "0x1F", "1_000",
];

/// A value: a known one (good or bad), a number, or junk.
fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => proptest::sample::select(VALUES).prop_map(str::to_string),
        1 => any::<i64>().prop_map(|n| n.to_string()),
        1 => any::<f64>().prop_map(|f| format!("{f:?}")),
        1 => junk(8),
        1 => junk(8).prop_map(|s| format!("\"{s}\"")),
    ]
}

/// Up to `max` characters of anything, with TOML's own punctuation often.
fn junk(max: usize) -> impl Strategy<Value = String> {
    let character = prop_oneof![
        3 => proptest::sample::select(&['[', ']', '{', '}', '=', '"', '\'', '#', ',', '.', '\\', ' ', '\t', '\r', '\n', '\u{0}'][..]),
        2 => any::<char>(),
        2 => proptest::char::range('a', 'z'),
    ];
    proptest::collection::vec(character, 0..max).prop_map(|chars| chars.into_iter().collect())
}

/// One line of a TOML-ish file.
fn line() -> impl Strategy<Value = String> {
    prop_oneof![
        2 => proptest::sample::select(HEADERS).prop_map(str::to_string),
        6 => (proptest::sample::select(KEYS), value()).prop_map(|(key, value)| format!("{key} = {value}")),
        1 => (junk(6), value()).prop_map(|(key, value)| format!("{key} = {value}")),
        1 => junk(20).prop_map(|text| format!("# {text}")),
        1 => Just(String::new()),
        1 => junk(20),
    ]
}

/// A valid `[post]` table, so that random lines after it reach the checks.
const POST: &str = "[post]\nid = \"otaci\"\nname = \"Otaci\"\ncountry = \"MD\"\ncrossing = \"otaci-mohyliv-podilskyi\"\n";

fn toml_ish() -> impl Strategy<Value = String> {
    (any::<bool>(), proptest::collection::vec(line(), 0..40)).prop_map(|(with_post, lines)| {
        let body = lines.join("\n");
        if with_post { format!("{POST}{body}") } else { body }
    })
}

/// One way of damaging a file.
#[derive(Clone, Debug)]
enum Damage {
    FlipByte(Index, u8),
    CutAt(Index),
    DoubleLine(Index),
    DropLine(Index),
    SwapLines(Index, Index),
    /// The value of a `key = value` line replaced by another, of any type.
    ReplaceValue(Index, String),
    InsertLine(Index, String),
}

fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        2 => (any::<Index>(), 1..=255u8).prop_map(|(at, mask)| Damage::FlipByte(at, mask)),
        1 => any::<Index>().prop_map(Damage::CutAt),
        1 => any::<Index>().prop_map(Damage::DoubleLine),
        1 => any::<Index>().prop_map(Damage::DropLine),
        1 => (any::<Index>(), any::<Index>()).prop_map(|(a, b)| Damage::SwapLines(a, b)),
        3 => (any::<Index>(), value()).prop_map(|(at, value)| Damage::ReplaceValue(at, value)),
        1 => (any::<Index>(), line()).prop_map(|(at, line)| Damage::InsertLine(at, line)),
    ]
}

fn apply(text: &str, damage: &Damage) -> String {
    let mut lines: Vec<String> = text.split('\n').map(str::to_string).collect();
    match damage {
        Damage::FlipByte(at, mask) => {
            let mut bytes = text.as_bytes().to_vec();
            if !bytes.is_empty() {
                let i = at.index(bytes.len());
                bytes[i] ^= mask;
            }
            return String::from_utf8_lossy(&bytes).into_owned();
        }
        Damage::CutAt(at) => {
            let mut end = at.index(text.len() + 1);
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            return text[..end].to_string();
        }
        Damage::DoubleLine(at) => {
            let i = at.index(lines.len());
            lines.insert(i, lines[i].clone());
        }
        Damage::DropLine(at) => {
            lines.remove(at.index(lines.len()));
        }
        Damage::SwapLines(a, b) => {
            let (a, b) = (a.index(lines.len()), b.index(lines.len()));
            lines.swap(a, b);
        }
        Damage::ReplaceValue(at, value) => {
            let assignments: Vec<usize> = (0..lines.len()).filter(|&i| lines[i].contains('=') && !lines[i].trim_start().starts_with('#')).collect();
            if !assignments.is_empty() {
                let i = assignments[at.index(assignments.len())];
                let key = lines[i].split('=').next().unwrap_or("").to_string();
                lines[i] = format!("{key}= {value}");
            }
        }
        Damage::InsertLine(at, line) => {
            let i = at.index(lines.len() + 1);
            lines.insert(i, line.clone());
        }
    }
    lines.join("\n")
}

proptest! {
    #![proptest_config(fuzz_config::config(1000))]

    #[test]
    fn random_toml_ish_text_is_read_or_refused_with_a_place(text in toml_ish()) {
        check_config(&text, &examples_dir().join("fuzz.toml"))?;
    }

    #[test]
    fn damaged_examples_are_read_or_refused_with_a_place(which in any::<Index>(), damages in proptest::collection::vec(damage(), 1..4)) {
        let (path, text) = &examples()[which.index(examples().len())];
        let damaged = damages.iter().fold(text.clone(), |text, damage| apply(&text, damage));
        check_config(&damaged, path)?;
    }

    #[test]
    fn damaged_key_files_are_read_or_refused_with_a_place(damages in proptest::collection::vec(damage(), 1..4)) {
        let path = examples_dir().join("secrets/exchange-keys.toml");
        let text = std::fs::read_to_string(&path).expect("example key file");
        let damaged = damages.iter().fold(text, |text, damage| apply(&text, damage));
        if let Err(error) = parse_exchange_keys(&damaged, &path) {
            check_error(&error, &damaged, &path)?;
        }
    }
}

#[test]
fn the_examples_themselves_are_read() {
    for (path, text) in examples() {
        if let Err(error) = PostConfig::from_toml(text, path) {
            panic!("{error}");
        }
    }
}
