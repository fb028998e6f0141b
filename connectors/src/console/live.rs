//! The live view of one camera over a WebSocket (see the module above):
//! one binary message per frame, `[u32 big-endian: JSON length][JSON][JPEG]`,
//! the next sent when the page answers `next`.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::response::IntoResponse;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use borderflow_types::LiveFrame;

use super::{Caller, Console, refuse};

/// JPEG quality of the live view: plates stay legible at about a tenth of the raw size.
const JPEG_QUALITY: u8 = 75;

pub(crate) async fn live(
    State(console): State<Arc<Console>>,
    caller: Caller,
    Path(camera): Path<String>,
    // Checked after who asks: a refusal says why before a bad upgrade does.
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    if !caller.role.may_read("reads") {
        return refuse(StatusCode::FORBIDDEN, &format!("role `{}` may not read `reads` (the live view shows plates)", caller.role.name));
    }
    if !console.hub.cameras.iter().any(|c| c.id == camera) {
        return refuse(StatusCode::NOT_FOUND, &format!("post `{}` has no camera `{camera}`", console.hub.post_id));
    }
    match upgrade {
        Ok(upgrade) => upgrade.on_upgrade(move |socket| watch(console, camera, socket)),
        Err(rejection) => rejection.into_response(),
    }
}

async fn watch(console: Arc<Console>, camera: String, mut socket: WebSocket) {
    let _watching = console.hub.live.watch();
    let mut last_seq = 0;
    loop {
        // The newest frame after the last one sent.
        let frame = loop {
            if let Some(frame) = console.hub.live.latest(&camera, last_seq) {
                break frame;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        last_seq = frame.seq;
        let message = match tokio::task::spawn_blocking(move || encode(&frame)).await {
            Ok(Ok(message)) => message,
            Ok(Err(error)) => {
                tracing::warn!(%camera, %error, "console: a live frame could not be encoded");
                continue;
            }
            Err(_) => return,
        };
        if socket.send(Message::Binary(message.into())).await.is_err() {
            return;
        }
        // Wait for the page to have drawn it.
        loop {
            match socket.recv().await {
                Some(Ok(Message::Text(text))) if text.as_str() == "next" => break,
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                Some(Ok(_)) => {}
            }
        }
    }
}

/// One message: the frame's JSON (times, size, tracks, counting line) and its JPEG.
fn encode(live: &LiveFrame) -> Result<Vec<u8>, String> {
    let frame = &live.frame;
    let mut jpeg = Vec::with_capacity(frame.rgb.len() / 10);
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, JPEG_QUALITY)
        .encode(&frame.rgb, frame.width, frame.height, image::ExtendedColorType::Rgb8)
        .map_err(|e| e.to_string())?;
    let line = live.counting_line;
    let meta = serde_json::json!({
        "camera": &*frame.camera_id,
        "index": frame.index,
        "captured_at_ms": frame.captured_at_ms,
        "decoded_wall_ms": frame.wall_ms,
        "processed_wall_ms": live.processed_wall_ms,
        "sent_wall_ms": chrono::Utc::now().timestamp_millis(),
        "width": frame.width,
        "height": frame.height,
        "tracks": live.tracks,
        "line": [line.a, line.b],
    })
    .to_string();
    let mut message = Vec::with_capacity(4 + meta.len() + jpeg.len());
    message.extend_from_slice(&(meta.len() as u32).to_be_bytes());
    message.extend_from_slice(meta.as_bytes());
    message.extend_from_slice(&jpeg);
    Ok(message)
}
