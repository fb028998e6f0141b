//! A third-party camera's plate event, parsed from its vendor format, and
//! its turn into a [`PlateRead`].

use borderflow_types::plate_grammar::plate_country;
use borderflow_types::{FeedCamera, FeedConfig, JsonFields, PlateRead, plate_norm};
use sha2::{Digest, Sha256};

/// One plate event as a camera sent it, before it is checked against the feed.
#[derive(Clone, Debug, PartialEq)]
pub struct VendorEvent {
    /// The camera's own id of the event; repeated when the camera sends it again.
    pub event_id: String,
    /// What the event calls the camera, most specific first (Hikvision:
    /// `ip/channel`, the IP address, the channel).
    pub device: Vec<String>,
    pub plate_text: String,
    pub captured_at_ms: i64,
    /// 0..=1.
    pub confidence: f32,
    /// The plate crop (JPEG), when the camera sent one.
    pub image: Option<Vec<u8>>,
}

/// Why an event was not taken; `field` names the part of the event at fault.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventError {
    pub field: String,
    pub message: String,
}

impl EventError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> EventError {
        EventError { field: field.into(), message: message.into() }
    }
}

impl std::fmt::Display for EventError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// What an event is once parsed: a plate, or something the feed answers
/// and lets go (a heartbeat, another kind of alarm, a vehicle without a
/// readable plate).
#[derive(Clone, Debug, PartialEq)]
pub enum Parsed {
    Plate(VendorEvent),
    Ignored(String),
}

/// RFC 3339 text (`2025-12-02T08:01:02+02:00`, `…Z`, fractions allowed) in
/// milliseconds since the Unix epoch.
pub fn rfc3339_ms(text: &str, field: &str) -> Result<i64, EventError> {
    chrono::DateTime::parse_from_rfc3339(text.trim())
        .map(|t| t.timestamp_millis())
        .map_err(|e| EventError::new(field, format!("\"{text}\" is not an RFC 3339 time such as 2025-12-02T08:01:02+02:00 ({e})")))
}

/// Parses a JSON event with the feed's JSON Pointers.
pub fn parse_json(value: &serde_json::Value, fields: &JsonFields) -> Result<Parsed, EventError> {
    let text = |pointer: &str| -> Result<String, EventError> {
        match value.pointer(pointer) {
            Some(serde_json::Value::String(s)) => Ok(s.clone()),
            Some(serde_json::Value::Number(n)) => Ok(n.to_string()),
            Some(other) => Err(EventError::new(pointer, format!("is {}, not text", kind(other)))),
            None => Err(EventError::new(pointer, "is missing")),
        }
    };
    let event_id = text(&fields.event_id)?;
    if event_id.trim().is_empty() {
        return Err(EventError::new(&fields.event_id, "is empty"));
    }
    let device = text(&fields.camera)?;
    let plate_text = text(&fields.plate)?;
    let captured_at_ms = match value.pointer(&fields.time) {
        Some(serde_json::Value::String(s)) => rfc3339_ms(s, &fields.time)?,
        Some(serde_json::Value::Number(n)) => n.as_i64().filter(|ms| *ms >= 0).ok_or_else(|| EventError::new(&fields.time, format!("{n} is not a whole number of milliseconds since 1970")))?,
        Some(other) => return Err(EventError::new(&fields.time, format!("is {}, not a time", kind(other)))),
        None => return Err(EventError::new(&fields.time, "is missing")),
    };
    let confidence = match fields.confidence.as_deref().map(|p| (p, value.pointer(p))) {
        None | Some((_, None)) => 1.0,
        Some((pointer, Some(v))) => {
            let n = v.as_f64().ok_or_else(|| EventError::new(pointer, format!("is {}, not a number", kind(v))))?;
            confidence(n, pointer)?
        }
    };
    let image = match fields.image.as_deref().map(|p| (p, value.pointer(p))) {
        None | Some((_, None)) | Some((_, Some(serde_json::Value::Null))) => None,
        Some((pointer, Some(serde_json::Value::String(b64)))) => {
            use base64::Engine as _;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(b64.trim())
                .map_err(|e| EventError::new(pointer, format!("is not base64 ({e})")))?;
            Some(jpeg(bytes, pointer)?)
        }
        Some((pointer, Some(other))) => return Err(EventError::new(pointer, format!("is {}, not base64 text", kind(other)))),
    };
    Ok(Parsed::Plate(VendorEvent { event_id, device: vec![device], plate_text, captured_at_ms, confidence, image }))
}

fn kind(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "text",
        serde_json::Value::Array(_) => "a list",
        serde_json::Value::Object(_) => "an object",
    }
}

/// A confidence as cameras give it, 0–1 or 0–100, as 0..=1.
pub fn confidence(n: f64, field: &str) -> Result<f32, EventError> {
    match n {
        n if (0.0..=1.0).contains(&n) => Ok(n as f32),
        n if (0.0..=100.0).contains(&n) => Ok((n / 100.0) as f32),
        n => Err(EventError::new(field, format!("{n} is not a confidence (0 to 1, or 0 to 100)"))),
    }
}

/// The bytes, if they are a JPEG image (a crop stored as anything else
/// would be served as a JPEG later).
pub fn jpeg(bytes: Vec<u8>, field: &str) -> Result<Vec<u8>, EventError> {
    if bytes.len() < 4 || bytes[..3] != [0xFF, 0xD8, 0xFF] {
        return Err(EventError::new(field, "is not a JPEG image"));
    }
    Ok(bytes)
}

/// The camera of the feed the event names, by its most specific name.
pub fn feed_camera<'a>(feed: &'a FeedConfig, event: &VendorEvent) -> Option<&'a FeedCamera> {
    event.device.iter().find_map(|name| feed.cameras.iter().find(|c| &c.device == name))
}

/// The read's id: a ULID whose time is the event's and whose other 80 bits
/// are a hash of the feed, the camera and the camera's event id, so that an
/// event sent again (a retry, the camera's own retransmission after a
/// restart) has the read id it had and the engine takes it once.
pub fn read_id(feed: &str, camera: &str, event_id: &str, captured_at_ms: i64) -> String {
    let digest = Sha256::digest(format!("{feed}\u{1f}{camera}\u{1f}{event_id}").as_bytes());
    let mut random = [0u8; 16];
    random[6..].copy_from_slice(&digest[..10]);
    ulid::Ulid::from_parts(captured_at_ms.max(0) as u64, u128::from_be_bytes(random)).to_string()
}

/// The event as a read of the post: normalised plate, the country whose
/// grammar it fits (the post's country preferred), the camera's place.
pub fn to_read(post_id: &str, post_country: &str, feed: &FeedConfig, camera: &FeedCamera, event: &VendorEvent) -> PlateRead {
    let norm = plate_norm(&event.plate_text);
    PlateRead {
        read_id: read_id(&feed.id, &camera.id, &event.event_id, event.captured_at_ms),
        post_id: post_id.to_string(),
        camera_id: camera.id.clone(),
        country: post_country.to_string(),
        lane: camera.lane,
        direction: camera.direction,
        point: camera.point,
        captured_at_ms: event.captured_at_ms,
        plate_text: event.plate_text.trim().to_string(),
        plate_country: plate_country(&norm, Some(post_country)).map(str::to_string),
        plate_norm: norm,
        confidence: event.confidence,
        frames: 1,
        bbox: None,
        crop_uri: None,
    }
}

/// Plate texts cameras send when they saw a vehicle but read no plate.
pub fn no_plate(text: &str) -> bool {
    let norm = plate_norm(text);
    norm.is_empty() || norm.eq_ignore_ascii_case("unknown") || norm.eq_ignore_ascii_case("noplate")
}
