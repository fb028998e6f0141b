//! From the raw form to [`PostConfig`]: the checks TOML cannot make (ranges,
//! names, schemes, durations, duplicates, counting lines) and the resolution
//! of relative paths against the configuration file's folder.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use toml::Spanned;

use super::raw::{RawConfig, RawPeer, RawPost, RawRecording, RawServe, RawRetention, RawS3, RawScenario, RawStorage, RawTable, RawView, RawWatchlist};
use super::source::{Source, normalize};
use super::cameras::cameras;
use super::roles::roles;
use super::integrations::{feeds, mqtt_config, webhooks};
use super::{
    ConfigError, PeerConfig, PostConfig, PostSection, RecordingConfig, ServeConfig, Retention, S3Config, ScenarioSourceConfig,
    ENGINE_TABLES, StorageConfig, TableConfig, ViewConfig, WatchlistConfig, WatchlistSource,
};

/// Object store URL schemes (those `object_store::parse_url` knows).
const STORAGE_SCHEMES: &[&str] =
    &["file", "s3", "s3a", "gs", "az", "adl", "azure", "abfs", "abfss", "http", "https", "memory"];

/// Peer endpoint schemes.
const ENDPOINT_SCHEMES: &[&str] = &["https", "http", "grpc", "grpc+tls"];

pub(super) fn validate(source: &Source<'_>, raw: RawConfig) -> Result<PostConfig, ConfigError> {
    let post = post_section(source, raw.post)?;
    let peer = raw.peer.map(|peer| peer_config(source, &post, peer)).transpose()?;
    let serve = raw.serve.map(|serve| serve_config(source, serve)).transpose()?;
    let storage = storage_config(source, raw.storage)?;
    let recording = raw.recording.map(|r| recording_config(source, &storage, r)).transpose()?;
    let cameras = cameras(source, &post, recording.is_some(), raw.camera)?;
    let views = views(source, raw.view)?;
    let tables = tables(source, raw.table)?;
    let watchlist = raw.watchlist.map(|w| watchlist_config(source, w)).transpose()?;
    let scenario = raw.scenario.map(|s| scenario_config(source, s)).transpose()?;
    let feeds = feeds(source, &post, &cameras, raw.feed)?;
    let webhooks = webhooks(source, raw.webhook)?;
    let mqtt = raw.mqtt.map(|m| mqtt_config(source, &post, m)).transpose()?;
    Ok(PostConfig {
        path: Some(PathBuf::from(&source.file)),
        post,
        peer,
        serve,
        storage,
        recording,
        cameras,
        views,
        tables,
        watchlist,
        scenario,
        feeds,
        webhooks,
        mqtt,
    })
}

fn post_section(source: &Source<'_>, raw: RawPost) -> Result<PostSection, ConfigError> {
    let id = identifier(source, raw.id, "post.id", "post id")?;
    let name = non_empty(source, raw.name, "post.name", "the post's name")?;
    let country = {
        let span = raw.country.span();
        let country = raw.country.into_inner();
        if country.len() != 2 || !country.chars().all(|c| c.is_ascii_uppercase()) {
            let hint = if country.len() == 2 && country.chars().all(|c| c.is_ascii_alphabetic()) {
                format!("; write \"{}\"", country.to_ascii_uppercase())
            } else {
                String::new()
            };
            return Err(source.error_at(
                span,
                "post.country",
                format!(
                    "country must be an ISO 3166 alpha-2 code, two capital letters such as \"MD\" or \"UA\"; found \"{country}\"{hint}"
                ),
            ));
        }
        country
    };
    let crossing = identifier(source, raw.crossing, "post.crossing", "crossing id")?;
    Ok(PostSection { id, name, country, crossing })
}

fn peer_config(source: &Source<'_>, post: &PostSection, raw: RawPeer) -> Result<PeerConfig, ConfigError> {
    let span = raw.post.span();
    let peer_post = identifier(source, raw.post, "peer.post", "peer's post id")?;
    if peer_post == post.id {
        return Err(source.error_at(
            span,
            "peer.post",
            format!("the peer is the post across the border, not this post (`{peer_post}`)"),
        ));
    }
    let endpoint = raw
        .endpoint
        .map(|endpoint| {
            let span = endpoint.span();
            let endpoint = endpoint.into_inner();
            let problem = match url::Url::parse(&endpoint) {
                Err(e) => Some(format!("`{endpoint}` is not a URL ({e})")),
                Ok(url) if !ENDPOINT_SCHEMES.contains(&url.scheme()) => Some(format!(
                    "unsupported endpoint scheme `{}`; use {}",
                    url.scheme(),
                    scheme_list(ENDPOINT_SCHEMES)
                )),
                Ok(url) if url.host_str().is_none_or(str::is_empty) => Some(format!("`{endpoint}` names no host")),
                Ok(_) => None,
            };
            match problem {
                Some(message) => Err(source.error_at(span, "peer.endpoint", message)),
                None => Ok(endpoint),
            }
        })
        .transpose()?;
    let path = |value: Option<Spanned<String>>, field: &str| -> Result<Option<PathBuf>, ConfigError> {
        value.map(|value| relative_path(source, value, field)).transpose()
    };
    Ok(PeerConfig {
        post: peer_post,
        endpoint,
        ca: path(raw.ca, "peer.ca")?,
        cert: path(raw.cert, "peer.cert")?,
        key: path(raw.key, "peer.key")?,
        hmac_keys: path(raw.hmac_keys, "peer.hmac_keys")?,
    })
}

fn serve_config(source: &Source<'_>, raw: RawServe) -> Result<ServeConfig, ConfigError> {
    let address = |value: Option<Spanned<String>>, field: &str| -> Result<Option<String>, ConfigError> {
        let Some(value) = value else { return Ok(None) };
        let span = value.span();
        let text = value.into_inner();
        match text.parse::<std::net::SocketAddr>() {
            Ok(_) => Ok(Some(text)),
            Err(e) => Err(source.error_at(span, field, format!("`{text}` is not an address and port such as \"127.0.0.1:8817\" ({e})"))),
        }
    };
    let path = |value: Option<Spanned<String>>, field: &str| -> Result<Option<PathBuf>, ConfigError> {
        value.map(|value| relative_path(source, value, field)).transpose()
    };
    let defaults = ServeConfig::default();
    let query_memory_mb = match raw.query_memory_mb {
        Some(value) if *value.get_ref() == 0 => {
            return Err(source.error_at(value.span(), "serve.query_memory_mb", "a query needs some memory: 1 or more"));
        }
        Some(value) => value.into_inner(),
        None => defaults.query_memory_mb,
    };
    let query_timeout = match raw.query_timeout {
        Some(value) => duration(source, value, "serve.query_timeout")?,
        None => defaults.query_timeout,
    };
    let result_ttl = match raw.result_ttl {
        Some(value) => duration(source, value, "serve.result_ttl")?,
        None => defaults.result_ttl,
    };
    let answers_memory_mb = match raw.answers_memory_mb {
        Some(value) if *value.get_ref() < query_memory_mb => {
            let message = format!(
                "{} MiB cannot hold one answer of the query memory limit ({query_memory_mb} MiB, `serve.query_memory_mb`): {query_memory_mb} or more",
                value.get_ref()
            );
            return Err(source.error_at(value.span(), "serve.answers_memory_mb", message));
        }
        Some(value) => value.into_inner(),
        None => defaults.answers_memory_mb.max(query_memory_mb),
    };
    let tls_cert_span = raw.tls_cert.as_ref().map(|v| v.span()).or(raw.tls_key.as_ref().map(|v| v.span()));
    let console_span = raw.console_listen.as_ref().map(|v| v.span());
    let serve = ServeConfig {
        exchange_listen: address(raw.exchange_listen, "serve.exchange_listen")?,
        sql_listen: address(raw.sql_listen, "serve.sql_listen")?,
        metrics_listen: address(raw.metrics_listen, "serve.metrics_listen")?,
        console_listen: address(raw.console_listen, "serve.console_listen")?,
        tokens: path(raw.tokens, "serve.tokens")?,
        tls_cert: path(raw.tls_cert, "serve.tls_cert")?,
        tls_key: path(raw.tls_key, "serve.tls_key")?,
        client_ca: path(raw.client_ca, "serve.client_ca")?,
        query_memory_mb,
        query_timeout,
        result_ttl,
        answers_memory_mb,
        roles: roles(source, raw.role)?,
    };
    if serve.tls_cert.is_some() != serve.tls_key.is_some()
        && let Some(span) = tls_cert_span
    {
        return Err(source.error_at(span, "serve.tls_cert", "give both tls_cert and tls_key, or neither"));
    }
    if serve.tokens.is_none()
        && let Some(span) = console_span
    {
        return Err(source.error_at(span, "serve.console_listen", "the console needs `serve.tokens`: who may log in"));
    }
    Ok(serve)
}

/// A path that may be relative to the configuration file's folder, made absolute.
pub(super) fn relative_path(source: &Source<'_>, value: Spanned<String>, field: &str) -> Result<PathBuf, ConfigError> {
    let span = value.span();
    let value = value.into_inner();
    if value.trim().is_empty() {
        return Err(source.error_at(span, field, "the path is empty; leave the field out instead"));
    }
    Ok(normalize(&source.base_dir.join(value)))
}

fn storage_config(source: &Source<'_>, raw: Option<RawStorage>) -> Result<StorageConfig, ConfigError> {
    let (url, retention, s3) = match raw {
        Some(storage) => (storage.url, storage.retention, storage.s3),
        None => (None, None, None),
    };
    let url = match url {
        Some(url) => storage_url(source, url)?,
        None => file_url(source, &source.base_dir.join("data"), "storage.url", None)?,
    };
    let s3 = s3_config(source, s3)?;
    Ok(StorageConfig { url, retention: retention_config(source, retention)?, s3 })
}

fn s3_config(source: &Source<'_>, raw: Option<RawS3>) -> Result<S3Config, ConfigError> {
    let defaults = S3Config::default();
    let Some(raw) = raw else { return Ok(defaults) };
    let text = |value: Option<Spanned<String>>, field: &str| -> Result<Option<String>, ConfigError> {
        match value {
            None => Ok(None),
            Some(value) if value.get_ref().trim().is_empty() => {
                Err(source.error_at(value.span(), field, "the value is empty; leave the field out instead"))
            }
            Some(value) => Ok(Some(value.into_inner())),
        }
    };
    let endpoint = match raw.endpoint {
        Some(value) => {
            let span = value.span();
            let endpoint = value.into_inner();
            match url::Url::parse(&endpoint) {
                Ok(url) if matches!(url.scheme(), "http" | "https") && url.host_str().is_some() => Some(endpoint),
                _ => {
                    return Err(source.error_at(
                        span,
                        "storage.s3.endpoint",
                        format!("`{endpoint}` is not an http:// or https:// URL; write e.g. \"http://127.0.0.1:9000\""),
                    ));
                }
            }
        }
        None => None,
    };
    let max_retries = match raw.max_retries {
        Some(value) if !(0..=100).contains(value.get_ref()) => {
            return Err(source.error_at(value.span(), "storage.s3.max_retries", "must be between 0 and 100"));
        }
        Some(value) => *value.get_ref() as usize,
        None => defaults.max_retries,
    };
    let period = |value: Option<Spanned<String>>, field: &str, default: Duration| match value {
        Some(value) => duration(source, value, field),
        None => Ok(default),
    };
    Ok(S3Config {
        allow_http: raw.allow_http.or_else(|| endpoint.as_ref().map(|e| e.starts_with("http://"))).unwrap_or(false),
        endpoint,
        region: text(raw.region, "storage.s3.region")?,
        access_key_id: text(raw.access_key_id, "storage.s3.access_key_id")?,
        secret_access_key: text(raw.secret_access_key, "storage.s3.secret_access_key")?,
        session_token: text(raw.session_token, "storage.s3.session_token")?,
        max_retries,
        retry_timeout: period(raw.retry_timeout, "storage.s3.retry_timeout", defaults.retry_timeout)?,
        request_timeout: period(raw.request_timeout, "storage.s3.request_timeout", defaults.request_timeout)?,
    })
}

fn storage_url(source: &Source<'_>, value: Spanned<String>) -> Result<String, ConfigError> {
    let span = value.span();
    let url = value.into_inner();
    let field = "storage.url";
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err(source.error_at(
            span,
            field,
            format!("`{url}` is not a storage URL; write e.g. \"file://./data\" or \"s3://bucket/prefix\""),
        ));
    };
    if scheme == "file" {
        let rest = rest.strip_prefix("localhost").filter(|r| r.starts_with('/')).unwrap_or(rest);
        if rest.is_empty() {
            return Err(source.error_at(span, field, "the file:// URL names no folder; write e.g. \"file://./data\""));
        }
        let path = if rest.starts_with('/') {
            url::Url::parse(&url).ok().and_then(|u| u.to_file_path().ok()).unwrap_or_else(|| PathBuf::from(rest))
        } else {
            source.base_dir.join(rest)
        };
        return file_url(source, &path, field, Some(span));
    }
    if !STORAGE_SCHEMES.contains(&scheme) {
        return Err(source.error_at(
            span,
            field,
            format!("unsupported storage scheme `{scheme}`; use {}", scheme_list(STORAGE_SCHEMES)),
        ));
    }
    match url::Url::parse(&url) {
        Err(e) => Err(source.error_at(span, field, format!("`{url}` is not a valid URL ({e})"))),
        Ok(parsed) if scheme != "memory" && parsed.host_str().is_none_or(str::is_empty) => Err(source.error_at(
            span,
            field,
            format!("`{url}` names no bucket or host; write e.g. \"{scheme}://bucket/prefix\""),
        )),
        Ok(_) => Ok(url),
    }
}

/// The absolute `file:///…` URL of a folder.
fn file_url(
    source: &Source<'_>,
    path: &Path,
    field: &str,
    span: Option<std::ops::Range<usize>>,
) -> Result<String, ConfigError> {
    let path = normalize(path);
    match url::Url::from_file_path(&path) {
        Ok(url) => Ok(url.to_string()),
        Err(()) => {
            let message = format!(
                "cannot make an absolute file:// URL of {} (is the current directory readable?)",
                path.display()
            );
            Err(match span {
                Some(span) => source.error_at(span, field, message),
                None => source.error_nowhere(field, message),
            })
        }
    }
}

fn retention_config(source: &Source<'_>, raw: Option<RawRetention>) -> Result<Retention, ConfigError> {
    let defaults = Retention::default();
    let Some(raw) = raw else { return Ok(defaults) };
    let period = |value: Option<Spanned<String>>, field: &str, default: Duration| match value {
        Some(value) => duration(source, value, field),
        None => Ok(default),
    };
    Ok(Retention {
        reads: period(raw.reads, "storage.retention.reads", defaults.reads)?,
        flags: period(raw.flags, "storage.retention.flags", defaults.flags)?,
        crops: period(raw.crops, "storage.retention.crops", defaults.crops)?,
        video: period(raw.video, "storage.retention.video", defaults.video)?,
    })
}

/// `[recording]`: a local folder (by default `video` in a file:// store)
/// and a segment length in range.
fn recording_config(source: &Source<'_>, storage: &StorageConfig, raw: Spanned<RawRecording>) -> Result<RecordingConfig, ConfigError> {
    let span = raw.span();
    let raw = raw.into_inner();
    let path = match raw.path {
        Some(path) => relative_path(source, path, "recording.path")?,
        None => match url::Url::parse(&storage.url).ok().filter(|u| u.scheme() == "file").and_then(|u| u.to_file_path().ok()) {
            Some(root) => root.join("video"),
            None => {
                let scheme = storage.url.split_once("://").map_or(storage.url.as_str(), |(s, _)| s);
                return Err(source.error_at(
                    span,
                    "recording.path",
                    format!(
                        "required field `path` is missing from [recording]: video is recorded to a local folder, and [storage] url is {scheme}://, not a folder; write e.g. path = \"/var/lib/borderflow/video\""
                    ),
                ));
            }
        },
    };
    let segment = match raw.segment {
        Some(value) => {
            let value_span = value.span();
            let text = value.get_ref().clone();
            let segment = duration(source, value, "recording.segment")?;
            if !(RecordingConfig::MIN_SEGMENT..=RecordingConfig::MAX_SEGMENT).contains(&segment) {
                return Err(source.error_at(
                    value_span,
                    "recording.segment",
                    format!("a segment is 2s to 1h long (one file of video each); found \"{text}\""),
                ));
            }
            segment
        }
        None => RecordingConfig::DEFAULT_SEGMENT,
    };
    Ok(RecordingConfig { path, segment })
}

/// A duration written as a whole number and a unit: `45s`, `90m`, `12h`, `30d`, `2w`.
pub(super) fn duration(source: &Source<'_>, value: Spanned<String>, field: &str) -> Result<Duration, ConfigError> {
    let span = value.span();
    let text = value.into_inner();
    let trimmed = text.trim();
    let digits_end = trimmed.find(|c: char| !c.is_ascii_digit()).unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(digits_end);
    let seconds_per_unit = match unit.trim() {
        "s" => Some(1),
        "m" => Some(60),
        "h" => Some(3600),
        "d" => Some(86_400),
        "w" => Some(7 * 86_400),
        _ => None,
    };
    let seconds = match (number.parse::<u64>(), seconds_per_unit) {
        (Ok(n), Some(per)) => n.checked_mul(per),
        _ => None,
    };
    match seconds {
        Some(0) => Err(source.error_at(span, field, format!("the period \"{text}\" is zero; it must be longer"))),
        Some(seconds) => Ok(Duration::from_secs(seconds)),
        None => Err(source.error_at(
            span,
            field,
            format!(
                "\"{text}\" is not a duration; write a whole number and a unit: s (seconds), m (minutes), h (hours), d (days) or w (weeks), e.g. \"30d\" or \"12h\""
            ),
        )),
    }
}

fn views(source: &Source<'_>, raw: Vec<RawView>) -> Result<Vec<ViewConfig>, ConfigError> {
    let mut first_line_of_name: HashMap<String, usize> = HashMap::new();
    let mut views = Vec::with_capacity(raw.len());
    for (index, view) in raw.into_iter().enumerate() {
        let at = format!("view[{}]", index + 1);
        let name_span = view.name.span();
        let name = sql_name(source, view.name, &at, "view")?;
        let key = name.to_ascii_lowercase();
        if let Some(first_line) = first_line_of_name.get(&key) {
            return Err(source.error_at(
                name_span,
                format!("{at}.name"),
                format!(
                    "view name `{name}` is already used by the view at line {first_line}; view names must be unique"
                ),
            ));
        }
        first_line_of_name.insert(key, source.line_of(name_span.start));
        let sql = non_empty(source, view.sql, &format!("{at}.sql"), "the view's SQL")?;
        views.push(ViewConfig { name, sql });
    }
    Ok(views)
}

/// A view's or table's name, which SQL must be able to use unquoted.
fn sql_name(source: &Source<'_>, value: Spanned<String>, at: &str, what: &str) -> Result<String, ConfigError> {
    let span = value.span();
    let name = value.into_inner();
    let is_identifier = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !is_identifier {
        return Err(source.error_at(
            span,
            format!("{at}.name"),
            format!("{what} name \"{name}\" cannot be used in SQL without quotes; use letters, digits and `_`, starting with a letter"),
        ));
    }
    Ok(name)
}

fn tables(source: &Source<'_>, raw: Vec<RawTable>) -> Result<Vec<TableConfig>, ConfigError> {
    let mut tables: Vec<TableConfig> = Vec::with_capacity(raw.len());
    for (index, table) in raw.into_iter().enumerate() {
        let at = format!("table[{}]", index + 1);
        let name_span = table.name.span();
        let name = sql_name(source, table.name, &at, "table")?;
        let taken = ENGINE_TABLES.iter().any(|t| t.eq_ignore_ascii_case(&name))
            || tables.iter().any(|t| t.name.eq_ignore_ascii_case(&name));
        if taken {
            return Err(source.error_at(
                name_span,
                format!("{at}.name"),
                format!("table name `{name}` is already taken (the engine's own tables are {})", ENGINE_TABLES.join(", ")),
            ));
        }
        let path = data_file(source, table.path, &format!("{at}.path"))?;
        tables.push(TableConfig { name, path });
    }
    Ok(tables)
}

fn watchlist_config(source: &Source<'_>, raw: Spanned<RawWatchlist>) -> Result<WatchlistConfig, ConfigError> {
    let span = raw.span();
    let raw = raw.into_inner();
    let from = match (raw.path, raw.object) {
        (Some(path), None) => WatchlistSource::File(data_file(source, path, "watchlist.path")?),
        (None, Some(object)) => {
            let object_span = object.span();
            let key = non_empty(source, object, "watchlist.object", "the object's key")?.trim_matches('/').to_string();
            let extension = key.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase()).unwrap_or_default();
            if extension != "parquet" && extension != "csv" {
                return Err(source.error_at(object_span, "watchlist.object", format!("{key} is neither a .parquet nor a .csv object")));
            }
            if key.split('/').any(|part| part.is_empty() || part == "." || part == "..") {
                return Err(source.error_at(object_span, "watchlist.object", format!("{key} is not a key in the store: no empty, `.` or `..` parts")));
            }
            WatchlistSource::Object(key)
        }
        (Some(path), Some(_)) => {
            return Err(source.error_at(path.span(), "watchlist.path", "give path (a local file) or object (a key in [storage] url), not both"));
        }
        (None, None) => {
            return Err(source.error_at(span, "watchlist", "give path (a local file) or object (a key in [storage] url)"));
        }
    };
    let reload = match raw.reload {
        Some(value) => duration(source, value, "watchlist.reload")?,
        None => WatchlistConfig::DEFAULT_RELOAD,
    };
    Ok(WatchlistConfig { from, reload })
}

/// A Parquet or CSV file that must exist, resolved against the config's folder.
fn data_file(source: &Source<'_>, raw: Spanned<String>, field: &str) -> Result<PathBuf, ConfigError> {
    let folder = Path::new(&source.file).parent().map(Path::to_path_buf).unwrap_or_default();
    let path_span = raw.span();
    let path = folder.join(non_empty(source, raw, field, "the path")?);
    let extension = path.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
    if extension != "parquet" && extension != "csv" {
        return Err(source.error_at(path_span, field, format!("{} is neither a .parquet nor a .csv file", path.display())));
    }
    if !path.is_file() {
        return Err(source.error_at(path_span, field, format!("{} does not exist", path.display())));
    }
    Ok(path)
}

fn scenario_config(source: &Source<'_>, raw: RawScenario) -> Result<ScenarioSourceConfig, ConfigError> {
    let seed = {
        let span = raw.seed.span();
        let seed = raw.seed.into_inner();
        u64::try_from(seed)
            .map_err(|_| source.error_at(span, "scenario.seed", format!("the seed must be 0 or more; found {seed}")))?
    };
    let start = {
        let span = raw.start.span();
        let value = raw.start.into_inner();
        let date = match &value {
            toml::Value::String(text) => chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").ok(),
            toml::Value::Datetime(dt) if dt.time.is_none() && dt.offset.is_none() => dt
                .date
                .and_then(|d| chrono::NaiveDate::from_ymd_opt(i32::from(d.year), u32::from(d.month), u32::from(d.day))),
            _ => None,
        };
        date.ok_or_else(|| {
            source.error_at(span, "scenario.start", format!("expected a date like \"2026-11-27\", found {value}"))
        })?
    };
    let days = match raw.days {
        None => 1,
        Some(days) => {
            let span = days.span();
            let days = days.into_inner();
            match u32::try_from(days) {
                Ok(days) if days >= 1 => days,
                _ => {
                    return Err(source.error_at(span, "scenario.days", format!("days must be 1 or more; found {days}")));
                }
            }
        }
    };
    let traffic_scale = match raw.traffic_scale {
        None => 1.0,
        Some(scale) => {
            let span = scale.span();
            let scale = scale.into_inner();
            if !(scale.is_finite() && scale > 0.0) {
                return Err(source.error_at(
                    span,
                    "scenario.traffic_scale",
                    format!("traffic_scale multiplies the typical traffic and must be more than 0; found {scale}"),
                ));
            }
            scale
        }
    };
    Ok(ScenarioSourceConfig { seed, start, days, traffic_scale })
}

/// An id that names a post, camera or crossing: letters, digits, `-` and `_`.
pub(super) fn identifier(source: &Source<'_>, value: Spanned<String>, field: &str, what: &str) -> Result<String, ConfigError> {
    let span = value.span();
    let id = value.into_inner();
    if id.is_empty() {
        return Err(source.error_at(span, field, format!("the {what} is empty")));
    }
    if let Some(bad) = id.chars().find(|c| !(c.is_alphanumeric() || *c == '-' || *c == '_')) {
        return Err(source.error_at(
            span,
            field,
            format!("the {what} \"{id}\" contains {bad:?}; use letters, digits, `-` and `_`"),
        ));
    }
    Ok(id)
}

pub(super) fn non_empty(source: &Source<'_>, value: Spanned<String>, field: &str, what: &str) -> Result<String, ConfigError> {
    let span = value.span();
    let text = value.into_inner();
    if text.trim().is_empty() {
        return Err(source.error_at(span, field, format!("{what} is empty")));
    }
    Ok(text)
}

pub(super) fn scheme_list(schemes: &[&str]) -> String {
    let written: Vec<String> = schemes.iter().map(|s| format!("{s}://")).collect();
    match written.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
        _ => written.join(""),
    }
}
