//! Hikvision ISAPI ANPR events: the `EventNotificationAlert` document a
//! camera's "notify surveillance center" (HTTP listening) sends, either as
//! the whole body (`application/xml`) or as the `anpr.xml` part of a
//! `multipart/form-data` body whose `licensePlatePicture.jpg` part is the
//! plate crop and `detectionPicture.jpg` the scene.
//!
//! The fields taken: `ipAddress` and `channelID` (the camera), `dateTime`
//! (ISO 8601 with its UTC offset), `eventType` (`ANPR`; heartbeats and other
//! alarms are answered and let go), `ANPR/licensePlate` (`unknown` when the
//! camera saw a vehicle but read no plate), `ANPR/confidenceLevel` (0–100)
//! and `UUID` (the event's id, when the firmware sends one; else the
//! channel, time and plate together identify it).

use bytes::Bytes;
use serde::Deserialize;

use super::event::{EventError, Parsed, VendorEvent, confidence, jpeg, no_plate, rfc3339_ms};

#[derive(Deserialize)]
struct Alert {
    #[serde(rename = "ipAddress")]
    ip_address: Option<String>,
    #[serde(rename = "channelID")]
    channel_id: Option<String>,
    #[serde(rename = "dateTime")]
    date_time: Option<String>,
    #[serde(rename = "eventType")]
    event_type: Option<String>,
    #[serde(rename = "ANPR")]
    anpr: Option<Anpr>,
    #[serde(rename = "UUID")]
    uuid: Option<String>,
}

#[derive(Deserialize)]
struct Anpr {
    #[serde(rename = "licensePlate")]
    license_plate: Option<String>,
    #[serde(rename = "confidenceLevel")]
    confidence_level: Option<String>,
}

/// Parses an `EventNotificationAlert` document; `image` is the plate crop
/// sent beside it.
pub fn parse_alert(xml: &str, image: Option<Vec<u8>>) -> Result<Parsed, EventError> {
    let alert: Alert = quick_xml::de::from_str(xml).map_err(|e| EventError::new("EventNotificationAlert", format!("is not an ISAPI event document ({e})")))?;
    let event_type = alert.event_type.as_deref().map(str::trim).unwrap_or_default();
    if !event_type.eq_ignore_ascii_case("ANPR") {
        let what = if event_type.is_empty() { "an event without eventType".to_string() } else { format!("a `{event_type}` event") };
        return Ok(Parsed::Ignored(what));
    }
    let anpr = alert.anpr.ok_or_else(|| EventError::new("EventNotificationAlert/ANPR", "is missing from an ANPR event"))?;
    let plate_text = anpr.license_plate.map(|p| p.trim().to_string()).ok_or_else(|| EventError::new("EventNotificationAlert/ANPR/licensePlate", "is missing"))?;
    if no_plate(&plate_text) {
        return Ok(Parsed::Ignored(format!("a vehicle without a readable plate (\"{plate_text}\")")));
    }
    let time_text = alert.date_time.ok_or_else(|| EventError::new("EventNotificationAlert/dateTime", "is missing"))?;
    let captured_at_ms = rfc3339_ms(&time_text, "EventNotificationAlert/dateTime")?;
    let channel = alert.channel_id.map(|c| c.trim().to_string()).filter(|c| !c.is_empty());
    let ip = alert.ip_address.map(|c| c.trim().to_string()).filter(|c| !c.is_empty());
    let mut device = Vec::new();
    if let (Some(ip), Some(channel)) = (&ip, &channel) {
        device.push(format!("{ip}/{channel}"));
    }
    device.extend(ip.iter().cloned());
    device.extend(channel.iter().cloned());
    if device.is_empty() {
        return Err(EventError::new("EventNotificationAlert/channelID", "is missing, and so is ipAddress: the event names no camera"));
    }
    let confidence = match anpr.confidence_level {
        Some(level) => {
            let field = "EventNotificationAlert/ANPR/confidenceLevel";
            let n: f64 = level.trim().parse().map_err(|_| EventError::new(field, format!("\"{level}\" is not a number")))?;
            confidence(n, field)?
        }
        None => 1.0,
    };
    let event_id = match alert.uuid.map(|u| u.trim().to_string()).filter(|u| !u.is_empty()) {
        Some(uuid) => uuid,
        None => format!("{}|{time_text}|{plate_text}", device[0]),
    };
    Ok(Parsed::Plate(VendorEvent { event_id, device, plate_text, captured_at_ms, confidence, image }))
}

/// Parses a request body as a camera sends it: the XML document alone, or
/// a `multipart/form-data` body with the document and the pictures.
pub async fn parse_body(content_type: Option<&str>, body: Bytes) -> Result<Parsed, EventError> {
    let boundary = content_type.and_then(|ct| multer::parse_boundary(ct).ok());
    let Some(boundary) = boundary else {
        let xml = std::str::from_utf8(&body).map_err(|_| EventError::new("body", "is not UTF-8 XML"))?;
        return parse_alert(xml, None);
    };
    let stream = futures::stream::once(async move { Ok::<Bytes, std::io::Error>(body) });
    let mut multipart = multer::Multipart::new(stream, boundary);
    let mut xml = None;
    let mut plate_picture = None;
    loop {
        let field = match multipart.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => break,
            Err(e) => return Err(EventError::new("body", format!("is not a well-formed multipart/form-data body ({e})"))),
        };
        let name = field.name().unwrap_or_default().to_string();
        let file = field.file_name().unwrap_or_default().to_string();
        let is_xml = field.content_type().is_some_and(|m| m.subtype() == "xml") || name.ends_with(".xml") || file.ends_with(".xml");
        let part = if name.is_empty() { file.clone() } else { name.clone() };
        let bytes = field.bytes().await.map_err(|e| EventError::new(format!("body part `{part}`"), format!("cannot be read ({e})")))?;
        if is_xml && xml.is_none() {
            xml = Some(String::from_utf8(bytes.to_vec()).map_err(|_| EventError::new(format!("body part `{part}`"), "is not UTF-8 XML"))?);
        } else if name.contains("licensePlatePicture") || file.contains("licensePlatePicture") {
            plate_picture = Some(jpeg(bytes.to_vec(), &format!("body part `{part}`"))?);
        }
    }
    let xml = xml.ok_or_else(|| EventError::new("body", "has no XML part (anpr.xml) in its multipart/form-data"))?;
    parse_alert(&xml, plate_picture)
}
