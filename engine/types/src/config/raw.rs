//! The configuration file as TOML says it: private structs that mirror the
//! file, keep the spans of values that later checks need, and refuse unknown
//! keys. Syntax and type errors are turned here into positioned
//! [`ConfigError`]s; [`super::checks`] does the rest.

use serde::Deserialize;
use serde_path_to_error::Segment;
use toml::Spanned;

use super::ConfigError;
use super::source::Source;

/// Serde's name of the value inside `toml::Spanned`, which shows in paths.
const SPANNED_VALUE: &str = "$__serde_spanned_private_value";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    pub post: RawPost,
    pub peer: Option<RawPeer>,
    pub serve: Option<RawServe>,
    pub storage: Option<RawStorage>,
    pub recording: Option<Spanned<RawRecording>>,
    #[serde(default)]
    pub camera: Vec<RawCamera>,
    #[serde(default)]
    pub view: Vec<RawView>,
    #[serde(default)]
    pub table: Vec<RawTable>,
    pub watchlist: Option<Spanned<RawWatchlist>>,
    pub scenario: Option<RawScenario>,
    #[serde(default)]
    pub feed: Vec<Spanned<RawFeed>>,
    #[serde(default)]
    pub webhook: Vec<Spanned<RawWebhook>>,
    pub mqtt: Option<Spanned<RawMqtt>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFeed {
    pub id: Spanned<String>,
    pub format: Spanned<String>,
    pub listen: Spanned<String>,
    pub tokens: Option<Spanned<String>>,
    pub tls_cert: Option<Spanned<String>>,
    pub tls_key: Option<Spanned<String>>,
    pub client_ca: Option<Spanned<String>>,
    pub max_event_kb: Option<Spanned<i64>>,
    #[serde(default)]
    pub camera: Vec<RawFeedCamera>,
    pub fields: Option<Spanned<RawJsonFields>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFeedCamera {
    pub device: Spanned<String>,
    pub id: Spanned<String>,
    pub lane: Spanned<i64>,
    pub direction: Spanned<String>,
    pub point: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawJsonFields {
    pub event_id: Spanned<String>,
    pub camera: Spanned<String>,
    pub plate: Spanned<String>,
    pub time: Spanned<String>,
    pub confidence: Option<Spanned<String>>,
    pub image: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawWebhook {
    pub name: Spanned<String>,
    pub url: Spanned<String>,
    pub view: Option<Spanned<String>>,
    pub secret: Option<Spanned<String>>,
    pub timeout: Option<Spanned<String>>,
    pub max_backoff: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMqtt {
    pub broker: Spanned<String>,
    pub client_id: Option<Spanned<String>>,
    pub reads_topic: Option<Spanned<String>>,
    pub flags_topic: Option<Spanned<String>>,
    pub health_topic: Option<Spanned<String>>,
    pub input_topic: Option<Spanned<String>>,
    pub buffer: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawWatchlist {
    pub path: Option<Spanned<String>>,
    pub object: Option<Spanned<String>>,
    pub reload: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTable {
    pub name: Spanned<String>,
    pub path: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPost {
    pub id: Spanned<String>,
    pub name: Spanned<String>,
    pub country: Spanned<String>,
    pub crossing: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPeer {
    pub post: Spanned<String>,
    pub endpoint: Option<Spanned<String>>,
    pub ca: Option<Spanned<String>>,
    pub cert: Option<Spanned<String>>,
    pub key: Option<Spanned<String>>,
    pub hmac_keys: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawServe {
    pub exchange_listen: Option<Spanned<String>>,
    pub sql_listen: Option<Spanned<String>>,
    pub metrics_listen: Option<Spanned<String>>,
    pub console_listen: Option<Spanned<String>>,
    pub tokens: Option<Spanned<String>>,
    pub tls_cert: Option<Spanned<String>>,
    pub tls_key: Option<Spanned<String>>,
    pub client_ca: Option<Spanned<String>>,
    pub query_memory_mb: Option<Spanned<u64>>,
    pub query_timeout: Option<Spanned<String>>,
    pub result_ttl: Option<Spanned<String>>,
    pub answers_memory_mb: Option<Spanned<u64>>,
    #[serde(default)]
    pub role: Vec<RawRole>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRole {
    pub name: Spanned<String>,
    pub read: Spanned<Vec<Spanned<String>>>,
    #[serde(default)]
    pub users: Vec<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawStorage {
    pub url: Option<Spanned<String>>,
    pub retention: Option<RawRetention>,
    pub s3: Option<RawS3>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawS3 {
    pub endpoint: Option<Spanned<String>>,
    pub region: Option<Spanned<String>>,
    pub access_key_id: Option<Spanned<String>>,
    pub secret_access_key: Option<Spanned<String>>,
    pub session_token: Option<Spanned<String>>,
    pub allow_http: Option<bool>,
    pub max_retries: Option<Spanned<i64>>,
    pub retry_timeout: Option<Spanned<String>>,
    pub request_timeout: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRetention {
    pub reads: Option<Spanned<String>>,
    pub flags: Option<Spanned<String>>,
    pub crops: Option<Spanned<String>>,
    pub video: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRecording {
    pub path: Option<Spanned<String>>,
    pub segment: Option<Spanned<String>>,
}

/// A counting line as written: checked for shape (two points of two numbers)
/// by the checks, so the message can say what a counting line looks like.
pub(super) type RawLine = Spanned<Vec<Spanned<Vec<Spanned<f64>>>>>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCamera {
    pub id: Spanned<String>,
    pub uri: Spanned<String>,
    pub lane: Spanned<i64>,
    pub direction: Spanned<String>,
    pub point: Spanned<String>,
    pub counting_line: RawLine,
    pub from_side: Spanned<String>,
    pub max_fps: Option<Spanned<i64>>,
    pub transport: Option<Spanned<String>>,
    pub latency_ms: Option<Spanned<i64>>,
    pub stall_timeout_ms: Option<Spanned<i64>>,
    pub image_interval_ms: Option<Spanned<i64>>,
    pub queue_frames: Option<Spanned<i64>>,
    pub decoder_threads: Option<Spanned<i64>>,
    pub record: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawView {
    pub name: Spanned<String>,
    pub sql: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawScenario {
    pub seed: Spanned<i64>,
    /// A string `"2026-11-27"` or a TOML local date `2026-11-27`.
    pub start: Spanned<toml::Value>,
    pub days: Option<Spanned<i64>>,
    pub traffic_scale: Option<Spanned<f64>>,
}

/// Parses the text into the raw form; syntax, unknown keys, missing keys and
/// wrong types are reported here.
pub(super) fn parse(source: &Source<'_>) -> Result<RawConfig, ConfigError> {
    let deserializer = toml::de::Deserializer::parse(source.text).map_err(|e| syntax_error(source, &e))?;
    serde_path_to_error::deserialize(deserializer).map_err(|e| {
        let path = FieldPath::from_serde(e.path());
        let inner = e.into_inner();
        shape_error(source, &path, &inner)
    })
}

fn syntax_error(source: &Source<'_>, error: &toml::de::Error) -> ConfigError {
    let detail = error.message().trim();
    let Some(span) = error.span() else {
        return source.error_nowhere("(syntax)", format!("TOML syntax error: {detail}"));
    };
    let field = source.field_at(span.start);
    let line = source.line_text(source.line_of(span.start));
    let message = if detail == "duplicate key" {
        let what = field.as_deref().map_or("this key or table".to_string(), |f| format!("`{f}`"));
        format!(
            "TOML syntax error: {what} is already defined earlier in the file; a key or table may appear once (a list of tables is written [[name]])"
        )
    } else if let Some((key, word)) = unquoted_word(line) {
        format!("TOML syntax error: text must be in quotes: {key} = \"{word}\"")
    } else {
        format!("TOML syntax error: {detail}")
    };
    source.error_at(span, field.unwrap_or_else(|| "(syntax)".to_string()), message)
}

/// `(key, word)` when the line is `key = word` with a bare word where a quoted
/// string belongs (`direction = entry`), the most common slip.
fn unquoted_word(line: &str) -> Option<(&str, &str)> {
    let (key, value) = line.split_once('=')?;
    let key = key.trim();
    let value = value.split('#').next().unwrap_or("").trim();
    let bare = |c: char| c.is_ascii_alphanumeric() || "_-./:".contains(c);
    let plausible = !key.is_empty()
        && key.chars().all(bare)
        && value.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && value.chars().all(bare)
        && !["true", "false", "inf", "nan"].contains(&value);
    plausible.then_some((key, value))
}

/// A field path as the file's reader counts: `camera[1].uri` for the first
/// `[[camera]]` table's `uri`.
struct FieldPath {
    /// Keys, with 1-based indices folded in (`camera[1]`).
    parts: Vec<String>,
    /// Whether the last part is an element of an array of tables.
    last_is_element: bool,
}

impl FieldPath {
    fn from_serde(path: &serde_path_to_error::Path) -> FieldPath {
        let mut parts: Vec<String> = Vec::new();
        let mut last_is_element = false;
        for segment in path.iter() {
            match segment {
                Segment::Map { key } if key == SPANNED_VALUE => {}
                Segment::Map { key } | Segment::Enum { variant: key } => {
                    parts.push(key.clone());
                    last_is_element = false;
                }
                Segment::Seq { index } => {
                    match parts.last_mut() {
                        Some(last) => last.push_str(&format!("[{}]", index + 1)),
                        None => parts.push(format!("[{}]", index + 1)),
                    }
                    last_is_element = true;
                }
                Segment::Unknown => {}
            }
        }
        FieldPath { parts, last_is_element }
    }

    fn dotted(&self) -> String {
        self.parts.join(".")
    }

    fn with(&self, key: &str) -> String {
        if self.parts.is_empty() { key.to_string() } else { format!("{}.{key}", self.dotted()) }
    }

    /// How the table at this path is written in the file: `[[camera]]`,
    /// `[storage.retention]`, or "the top level".
    fn table_name(&self) -> String {
        if self.parts.is_empty() {
            return "the top level of the file".to_string();
        }
        let bare: Vec<&str> = self.parts.iter().map(|p| p.split('[').next().unwrap_or(p)).collect();
        if self.last_is_element { format!("[[{}]]", bare.join(".")) } else { format!("[{}]", bare.join(".")) }
    }
}

/// A type or key error from serde, in the reader's words.
fn shape_error(source: &Source<'_>, path: &FieldPath, error: &toml::de::Error) -> ConfigError {
    let raw = error.message().trim();
    let (field, message) = if let Some(name) = between(raw, "missing field `", "`") {
        let field = path.with(name);
        let message = if path.parts.is_empty() {
            format!("the required table [{name}] is missing")
        } else {
            format!("required field `{name}` is missing from this {} table", path.table_name())
        };
        (field, message)
    } else if let Some(name) = between(raw, "unknown field `", "`") {
        let allowed = raw.split_once(", expected ").map(|(_, list)| list).unwrap_or("");
        let allowed = allowed.trim_start_matches("one of ").replace(" or ", ", ").replace('`', "");
        let parent_name = parent_table_name(path);
        (path.dotted(), format!("unknown field `{name}` in {parent_name}; known fields: {allowed}"))
    } else if let Some(rest) = raw.strip_prefix("invalid type: ") {
        let (found, expected) = rest.split_once(", expected ").unwrap_or((rest, "another type"));
        let mut message = format!("expected {}, found {}", plain_expected(expected), plain_found(found));
        if (path.dotted() == "camera" || path.dotted() == "view" || path.dotted() == "table") && found == "map" {
            message = format!(
                "each {0} is its own [[{0}]] table, with double brackets; found a single [{0}] table",
                path.dotted()
            );
        }
        (path.dotted(), message)
    } else if let Some(rest) = raw.strip_prefix("invalid value: ") {
        let (found, expected) = rest.split_once(", expected ").unwrap_or((rest, "another value"));
        (path.dotted(), format!("expected {}, found {}", plain_expected(expected), plain_found(found)))
    } else {
        (path.dotted(), raw.to_string())
    };
    let message = if path.parts.iter().any(|p| p.starts_with("counting_line")) {
        format!(
            "{message}; a counting line is two points [[x1, y1], [x2, y2]], fractions of the frame's width and height"
        )
    } else {
        message
    };
    let field = if field.is_empty() { "(config)".to_string() } else { field };
    match error.span() {
        Some(span) => source.error_at(span, field, message),
        None => source.error_nowhere(field, message),
    }
}

/// For an unknown key at `path` (whose last part is the key), the table it was found in.
fn parent_table_name(path: &FieldPath) -> String {
    let mut parent_parts = path.parts.clone();
    parent_parts.pop();
    let last_is_element = parent_parts.last().is_some_and(|p| p.ends_with(']'));
    FieldPath { parts: parent_parts, last_is_element }.table_name()
}

fn between<'t>(text: &'t str, start: &str, end: &str) -> Option<&'t str> {
    let rest = text.strip_prefix(start)?;
    rest.split_once(end).map(|(inside, _)| inside)
}

/// Serde's description of an expected type, in plain words.
fn plain_expected(expected: &str) -> String {
    match expected {
        "u8" | "u16" | "u32" | "u64" | "i8" | "i16" | "i32" | "i64" | "usize" | "isize" => "a whole number".to_string(),
        "f32" | "f64" => "a number".to_string(),
        "a sequence" => "an array".to_string(),
        "a map" => "a table".to_string(),
        "any valid TOML value" => "a value".to_string(),
        other if other.starts_with("struct ") => "a table".to_string(),
        other => other.to_string(),
    }
}

/// Serde's description of a value found, in plain words.
fn plain_found(found: &str) -> String {
    match found {
        "map" => "a table".to_string(),
        "sequence" => "an array".to_string(),
        "datetime" => "a date or time".to_string(),
        other => {
            let other = other.replace('`', "");
            match other.split_once(' ') {
                Some(("integer", n)) => format!("the number {n}"),
                Some(("floating", rest)) => format!("the number {}", rest.trim_start_matches("point ")),
                Some(("string", s)) => format!("the text {s}"),
                Some(("boolean", b)) => format!("{b} (true/false)"),
                _ => other,
            }
        }
    }
}
