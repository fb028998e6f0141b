//! `[[feed]]`, `[[webhook]]` and `[mqtt]`, checked: the connectors a post
//! uses besides its own video (third-party ANPR cameras' events, HTTP
//! endpoints that want the risk flags, a message bus).

use std::collections::HashMap;

use toml::Spanned;

use super::cameras::{direction, lane, point};
use super::checks::{duration, identifier, non_empty, relative_path};
use super::raw::{RawFeed, RawJsonFields, RawMqtt, RawWebhook};
use super::source::Source;
use super::{CameraConfig, ConfigError, FeedCamera, FeedConfig, FeedFormat, JsonFields, MqttConfig, PostSection, WebhookConfig};

/// The largest event a feed takes, in KiB, whatever its config says.
const MAX_EVENT_KB: i64 = 64 * 1024;

pub(super) fn feeds(source: &Source<'_>, post: &PostSection, cameras: &[CameraConfig], raw: Vec<Spanned<RawFeed>>) -> Result<Vec<FeedConfig>, ConfigError> {
    let mut feed_ids: HashMap<String, usize> = HashMap::new();
    let mut camera_ids: HashMap<String, String> = cameras.iter().map(|c| (c.id.clone(), "a [[camera]]".to_string())).collect();
    let mut feeds = Vec::with_capacity(raw.len());
    for (i, spanned) in raw.into_iter().enumerate() {
        let table_span = spanned.span();
        let feed = spanned.into_inner();
        let at = |field: &str| format!("feed[{}].{field}", i + 1);
        let id_span = feed.id.span();
        let id = identifier(source, feed.id, &at("id"), "feed id")?;
        if let Some(first) = feed_ids.insert(id.clone(), i + 1) {
            return Err(source.error_at(id_span, at("id"), format!("feed id `{id}` is already used by feed[{first}]; feed ids must be unique")));
        }
        let format_span = feed.format.span();
        let format = match (feed.format.into_inner().as_str(), feed.fields) {
            ("hikvision-isapi", None) => FeedFormat::HikvisionIsapi,
            ("hikvision-isapi", Some(fields)) => {
                return Err(source.error_at(fields.span(), at("fields"), "[feed.fields] is for format = \"json\"; Hikvision's events have their own fields"));
            }
            ("json", Some(fields)) => FeedFormat::Json(json_fields(source, fields.into_inner(), &at("fields"))?),
            ("json", None) => {
                return Err(source.error_at(format_span, at("fields"), "format = \"json\" needs [feed.fields]: JSON Pointers to event_id, camera, plate and time"));
            }
            (other, _) => {
                return Err(source.error_at(format_span, at("format"), format!("unknown feed format \"{other}\"; use \"hikvision-isapi\" or \"json\"")));
            }
        };
        let listen_span = feed.listen.span();
        let listen = feed.listen.into_inner();
        if let Err(e) = listen.parse::<std::net::SocketAddr>() {
            return Err(source.error_at(listen_span, at("listen"), format!("`{listen}` is not an address and port such as \"127.0.0.1:8830\" ({e})")));
        }
        let path = |value: Option<Spanned<String>>, field: &str| value.map(|value| relative_path(source, value, &at(field))).transpose();
        let cert_span = feed.tls_cert.as_ref().or(feed.tls_key.as_ref()).map(Spanned::span);
        let ca_span = feed.client_ca.as_ref().map(Spanned::span);
        let (tokens, tls_cert, tls_key, client_ca) = (path(feed.tokens, "tokens")?, path(feed.tls_cert, "tls_cert")?, path(feed.tls_key, "tls_key")?, path(feed.client_ca, "client_ca")?);
        if tls_cert.is_some() != tls_key.is_some()
            && let Some(span) = cert_span
        {
            return Err(source.error_at(span, at("tls_cert"), "give both tls_cert and tls_key, or neither"));
        }
        if client_ca.is_some()
            && tls_cert.is_none()
            && let Some(span) = ca_span
        {
            return Err(source.error_at(span, at("client_ca"), "client certificates need TLS: give tls_cert and tls_key too"));
        }
        let max_event_bytes = match feed.max_event_kb {
            None => 4 * 1024 * 1024,
            Some(kb) if (1..=MAX_EVENT_KB).contains(kb.get_ref()) => *kb.get_ref() as usize * 1024,
            Some(kb) => {
                return Err(source.error_at(kb.span(), at("max_event_kb"), format!("max_event_kb is from 1 to {MAX_EVENT_KB}; found {}", kb.get_ref())));
            }
        };
        if feed.camera.is_empty() {
            return Err(source.error_at(
                table_span,
                at("camera"),
                "a feed names at least one [[feed.camera]] (device, id, lane, direction, point): an event from a camera it does not name is refused",
            ));
        }
        let mut devices: HashMap<String, usize> = HashMap::new();
        let mut feed_cameras = Vec::with_capacity(feed.camera.len());
        for (j, camera) in feed.camera.into_iter().enumerate() {
            let at = |field: &str| format!("feed[{}].camera[{}].{field}", i + 1, j + 1);
            let device_span = camera.device.span();
            let device = non_empty(source, camera.device, &at("device"), "the device name")?;
            if let Some(first) = devices.insert(device.clone(), j + 1) {
                return Err(source.error_at(device_span, at("device"), format!("device \"{device}\" is already feed[{}].camera[{first}]", i + 1)));
            }
            let camera_span = camera.id.span();
            let camera_id = identifier(source, camera.id, &at("id"), "camera id")?;
            if let Some(other) = camera_ids.insert(camera_id.clone(), at("id")) {
                return Err(source.error_at(camera_span, at("id"), format!("camera id `{camera_id}` is already used by {other}; camera ids must be unique")));
            }
            feed_cameras.push(FeedCamera {
                device,
                id: camera_id,
                lane: lane(source, camera.lane, &at("lane"))?,
                direction: direction(source, camera.direction, &at("direction"), &post.country)?,
                point: point(source, camera.point, &at("point"))?,
            });
        }
        feeds.push(FeedConfig { id, format, listen, tokens, tls_cert, tls_key, client_ca, max_event_bytes, cameras: feed_cameras });
    }
    Ok(feeds)
}

fn json_fields(source: &Source<'_>, raw: RawJsonFields, at: &str) -> Result<JsonFields, ConfigError> {
    let pointer = |value: Spanned<String>, field: &str| -> Result<String, ConfigError> {
        let span = value.span();
        let text = value.into_inner();
        // RFC 6901: a pointer is empty (the whole document) or starts with `/`;
        // the whole event is never one field.
        if !text.starts_with('/') {
            return Err(source.error_at(span, format!("{at}.{field}"), format!("\"{text}\" is not a JSON Pointer; write it as \"/{}\" (RFC 6901)", text.trim_start_matches('/'))));
        }
        Ok(text)
    };
    Ok(JsonFields {
        event_id: pointer(raw.event_id, "event_id")?,
        camera: pointer(raw.camera, "camera")?,
        plate: pointer(raw.plate, "plate")?,
        time: pointer(raw.time, "time")?,
        confidence: raw.confidence.map(|p| pointer(p, "confidence")).transpose()?,
        image: raw.image.map(|p| pointer(p, "image")).transpose()?,
    })
}

pub(super) fn webhooks(source: &Source<'_>, raw: Vec<Spanned<RawWebhook>>) -> Result<Vec<WebhookConfig>, ConfigError> {
    let mut names: HashMap<String, usize> = HashMap::new();
    let mut webhooks = Vec::with_capacity(raw.len());
    for (i, spanned) in raw.into_iter().enumerate() {
        let hook = spanned.into_inner();
        let at = |field: &str| format!("webhook[{}].{field}", i + 1);
        let name_span = hook.name.span();
        let name = identifier(source, hook.name, &at("name"), "webhook name")?;
        if let Some(first) = names.insert(name.clone(), i + 1) {
            return Err(source.error_at(name_span, at("name"), format!("webhook name `{name}` is already used by webhook[{first}]")));
        }
        let url_span = hook.url.span();
        let text = hook.url.into_inner();
        match url::Url::parse(&text) {
            Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => {}
            Ok(_) => return Err(source.error_at(url_span, at("url"), format!("\"{text}\" is not an http:// or https:// URL with a host"))),
            Err(e) => return Err(source.error_at(url_span, at("url"), format!("\"{text}\" is not a URL ({e})"))),
        }
        let view = match hook.view {
            Some(view) => {
                let span = view.span();
                let name = view.into_inner();
                if name.is_empty() || !name.chars().all(|c| c.is_alphanumeric() || c == '_') {
                    return Err(source.error_at(span, at("view"), format!("\"{name}\" is not a view name (letters, digits and `_`)")));
                }
                name
            }
            None => "risk_flags".to_string(),
        };
        webhooks.push(WebhookConfig {
            name,
            url: text,
            view,
            secret: hook.secret.map(|s| relative_path(source, s, &at("secret"))).transpose()?,
            timeout: hook.timeout.map(|t| duration(source, t, &at("timeout"))).transpose()?.unwrap_or(std::time::Duration::from_secs(10)),
            max_backoff: hook.max_backoff.map(|t| duration(source, t, &at("max_backoff"))).transpose()?.unwrap_or(std::time::Duration::from_secs(300)),
        });
    }
    Ok(webhooks)
}

pub(super) fn mqtt_config(source: &Source<'_>, post: &PostSection, raw: Spanned<RawMqtt>) -> Result<MqttConfig, ConfigError> {
    let raw = raw.into_inner();
    let broker_span = raw.broker.span();
    let text = raw.broker.into_inner();
    let bad = |why: String| source.error_at(broker_span.clone(), "mqtt.broker", format!("\"{text}\" {why}; write mqtt://host:port, e.g. \"mqtt://127.0.0.1:1883\""));
    let url = url::Url::parse(&text).map_err(|e| bad(format!("is not a URL ({e})")))?;
    if url.scheme() != "mqtt" {
        return Err(bad(format!("has the scheme `{}`", url.scheme())));
    }
    let host = url.host_str().filter(|h| !h.is_empty()).ok_or_else(|| bad("names no host".to_string()))?.to_string();
    let port = url.port().unwrap_or(1883);
    let topic = |value: Option<Spanned<String>>, field: &str, default: String, publish: bool| -> Result<String, ConfigError> {
        let Some(value) = value else { return Ok(default) };
        let span = value.span();
        let topic = value.into_inner();
        if topic.is_empty() || topic.contains('\0') {
            return Err(source.error_at(span, format!("mqtt.{field}"), "a topic is a non-empty text without NUL"));
        }
        if publish && (topic.contains('+') || topic.contains('#')) {
            return Err(source.error_at(span, format!("mqtt.{field}"), format!("\"{topic}\" has a wildcard (`+` or `#`); messages are published on one topic")));
        }
        Ok(topic)
    };
    let prefix = format!("borderflow/{}", post.id);
    let buffer = match raw.buffer {
        None => 10_000,
        Some(n) if (1..=10_000_000).contains(n.get_ref()) => *n.get_ref() as usize,
        Some(n) => return Err(source.error_at(n.span(), "mqtt.buffer", format!("buffer is from 1 to 10000000 messages; found {}", n.get_ref()))),
    };
    Ok(MqttConfig {
        host,
        port,
        client_id: raw.client_id.map(|c| non_empty(source, c, "mqtt.client_id", "the client id")).transpose()?.unwrap_or_else(|| format!("borderflow-{}", post.id)),
        reads_topic: topic(raw.reads_topic, "reads_topic", format!("{prefix}/reads"), true)?,
        flags_topic: topic(raw.flags_topic, "flags_topic", format!("{prefix}/risk_flags"), true)?,
        health_topic: topic(raw.health_topic, "health_topic", format!("{prefix}/health"), true)?,
        input_topic: raw.input_topic.map(|t| topic(Some(t), "input_topic", String::new(), false)).transpose()?,
        buffer,
    })
}
