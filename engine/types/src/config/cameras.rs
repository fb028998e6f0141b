//! The `[[camera]]` tables: ids, URIs and their source settings, lanes,
//! directions and points, frame rates, counting lines, the side a vehicle
//! comes from, and whether the camera is recorded.

use std::collections::HashMap;

use toml::Spanned;

use super::checks::{identifier, scheme_list};
use super::raw::{RawCamera, RawLine};
use super::source::{Source, normalize};
use super::{CameraConfig, CameraSourceSettings, ConfigError, CountingLine, PostSection, RtspTransport, Side};
use crate::{Direction, Point};

/// Camera URI schemes the connectors read.
const CAMERA_SCHEMES: &[&str] = &["file", "rtsp", "http", "https", "dir"];

/// Camera URI schemes whose stream can be recorded as it arrives (H.264 or H.265).
const RECORDABLE_SCHEMES: &[&str] = &["file", "rtsp"];

pub(super) fn cameras(source: &Source<'_>, post: &PostSection, recording: bool, raw: Vec<RawCamera>) -> Result<Vec<CameraConfig>, ConfigError> {
    let mut first_line_of_id: HashMap<String, usize> = HashMap::new();
    let mut cameras = Vec::with_capacity(raw.len());
    for (index, camera) in raw.into_iter().enumerate() {
        let at = format!("camera[{}]", index + 1);
        let id_span = camera.id.span();
        let id = identifier(source, camera.id.clone(), &format!("{at}.id"), "camera id")?;
        if let Some(first_line) = first_line_of_id.get(&id) {
            return Err(source.error_at(
                id_span,
                format!("{at}.id"),
                format!(
                    "camera id `{id}` is already used by the camera at line {first_line}; camera ids must be unique"
                ),
            ));
        }
        first_line_of_id.insert(id.clone(), source.line_of(id_span.start));
        let side_span = camera.from_side.span();
        let uri = camera_uri(source, camera.uri.clone(), &format!("{at}.uri"))?;
        let mut settings = camera_source_settings(source, &at, &uri, &camera)?;
        settings.record = record(source, &at, &id, &uri, recording, &camera)?;
        let config = CameraConfig {
            uri,
            lane: lane(source, camera.lane, &format!("{at}.lane"))?,
            direction: direction(source, camera.direction, &format!("{at}.direction"), &post.country)?,
            point: point(source, camera.point, &format!("{at}.point"))?,
            counting_line: counting_line(source, camera.counting_line, &format!("{at}.counting_line"))?,
            from_side: side(source, camera.from_side, &format!("{at}.from_side"))?,
            max_fps: camera.max_fps.map(|fps| max_fps(source, fps, &format!("{at}.max_fps"))).transpose()?,
            source: settings,
            id,
        };
        check_side_against_line(source, &config, side_span, &format!("{at}.from_side"))?;
        cameras.push(config);
    }
    Ok(cameras)
}

/// The camera's stream reader settings: each in its range, and only on the
/// kind of camera it applies to (a `latency_ms` on a `file://` camera is a
/// mistake worth saying, not a setting to ignore).
fn camera_source_settings(source: &Source<'_>, at: &str, uri: &str, camera: &RawCamera) -> Result<CameraSourceSettings, ConfigError> {
    let scheme = uri.split_once("://").map_or("", |(s, _)| s);
    let rtsp = &["rtsp"][..];
    let live = &["rtsp", "http", "https"][..];
    let number = |value: &Option<Spanned<i64>>,
                  key: &str,
                  range: std::ops::RangeInclusive<i64>,
                  schemes: Option<&[&str]>,
                  what: &str|
     -> Result<Option<i64>, ConfigError> {
        let Some(value) = value else { return Ok(None) };
        let field = format!("{at}.{key}");
        fits_scheme(source, value.span(), &field, key, scheme, schemes)?;
        let n = *value.get_ref();
        if !range.contains(&n) {
            return Err(source.error_at(
                value.span(),
                field,
                format!("{key} is {what}, from {} to {}; found {n}", range.start(), range.end()),
            ));
        }
        Ok(Some(n))
    };
    let transport = match &camera.transport {
        None => None,
        Some(value) => {
            let field = format!("{at}.transport");
            fits_scheme(source, value.span(), &field, "transport", scheme, Some(rtsp))?;
            match value.get_ref().as_str() {
                "tcp" => Some(RtspTransport::Tcp),
                "udp" => Some(RtspTransport::Udp),
                other => {
                    return Err(source.error_at(
                        value.span(),
                        field,
                        format!("unknown transport \"{other}\"; use \"tcp\" (RTP inside the RTSP connection, through firewalls) or \"udp\""),
                    ));
                }
            }
        }
    };
    Ok(CameraSourceSettings {
        transport,
        latency_ms: number(&camera.latency_ms, "latency_ms", 0..=10_000, Some(rtsp), "the RTSP jitter buffer in milliseconds")?.map(|n| n as u32),
        stall_timeout_ms: number(&camera.stall_timeout_ms, "stall_timeout_ms", 100..=3_600_000, Some(live), "how long a live stream may deliver no frame, in milliseconds")?
            .map(|n| n as u64),
        image_interval_ms: number(&camera.image_interval_ms, "image_interval_ms", 1..=86_400_000, Some(&["dir"][..]), "the event time between two images, in milliseconds")?
            .map(|n| n as u64),
        queue_frames: number(&camera.queue_frames, "queue_frames", 1..=10_000, None, "the number of decoded frames waiting for the engine")?.map(|n| n as usize),
        decoder_threads: number(&camera.decoder_threads, "decoder_threads", 0..=64, None, "the number of video decoder threads (0: the decoder decides)")?
            .map(|n| n as u32),
        record: false,
    })
}

/// `record`: only with a `[recording]` table; by default on for the cameras
/// whose stream is kept as it arrives (see [`RECORDABLE_SCHEMES`]).
fn record(source: &Source<'_>, at: &str, id: &str, uri: &str, recording: bool, camera: &RawCamera) -> Result<bool, ConfigError> {
    let scheme = uri.split_once("://").map_or("", |(s, _)| s);
    let recordable = RECORDABLE_SCHEMES.contains(&scheme);
    let Some(value) = &camera.record else { return Ok(recording && recordable) };
    let field = format!("{at}.record");
    if !recording {
        return Err(source.error_at(
            value.span(),
            field,
            format!("camera `{id}` sets record, but the file has no [recording] table (where its video goes); add one, or leave record out"),
        ));
    }
    match value.get_ref().as_str() {
        "off" => Ok(false),
        "continuous" if recordable => Ok(true),
        "continuous" => Err(source.error_at(
            value.span(),
            field,
            format!(
                "camera `{id}` cannot be recorded: recording keeps a camera's own H.264 or H.265 stream without re-encoding, and this {scheme}:// camera gives {}; use record = \"off\"",
                if scheme == "dir" { "still images" } else { "MJPEG" }
            ),
        )),
        other => Err(source.error_at(value.span(), field, format!("unknown record mode \"{other}\"; use \"continuous\" or \"off\""))),
    }
}

/// An error when `key` is set on a camera whose scheme it does not apply to.
fn fits_scheme(
    source: &Source<'_>,
    span: std::ops::Range<usize>,
    field: &str,
    key: &str,
    scheme: &str,
    schemes: Option<&[&str]>,
) -> Result<(), ConfigError> {
    match schemes {
        Some(schemes) if !schemes.contains(&scheme) => Err(source.error_at(
            span,
            field,
            format!("{key} applies to {} cameras only; this camera's uri is {scheme}://", scheme_list(schemes)),
        )),
        _ => Ok(()),
    }
}

fn camera_uri(source: &Source<'_>, value: Spanned<String>, field: &str) -> Result<String, ConfigError> {
    let span = value.span();
    let uri = value.into_inner();
    let Some((scheme, rest)) = uri.split_once("://") else {
        return Err(source.error_at(
            span,
            field,
            format!(
                "`{uri}` has no scheme; write e.g. \"rtsp://host:8554/path\", \"file://clips/lane1.mp4\" or \"dir://frames/lane1\""
            ),
        ));
    };
    if !CAMERA_SCHEMES.contains(&scheme) {
        return Err(source.error_at(
            span,
            field,
            format!("unsupported camera scheme `{scheme}`; use {}", scheme_list(CAMERA_SCHEMES)),
        ));
    }
    if rest.trim().is_empty() {
        return Err(source.error_at(span, field, format!("the {scheme}:// URI names nothing after the scheme")));
    }
    // A recording or an image folder given by a relative path is beside
    // the configuration file, like every other path in it.
    if matches!(scheme, "file" | "dir") && !rest.starts_with('/') {
        return Ok(format!("{scheme}://{}", normalize(&source.base_dir.join(rest)).display()));
    }
    Ok(uri)
}

pub(super) fn lane(source: &Source<'_>, value: Spanned<i64>, field: &str) -> Result<u16, ConfigError> {
    let span = value.span();
    let lane = value.into_inner();
    match u16::try_from(lane) {
        Ok(lane) if lane >= 1 => Ok(lane),
        _ => Err(source.error_at(span, field, format!("lanes are numbered from 1 (to 65535); found {lane}"))),
    }
}

pub(super) fn direction(
    source: &Source<'_>,
    value: Spanned<String>,
    field: &str,
    country: &str,
) -> Result<Direction, ConfigError> {
    let span = value.span();
    let text = value.into_inner();
    text.parse().map_err(|_: String| {
        source.error_at(
            span,
            field,
            format!(
                "unknown direction \"{text}\"; use \"entry\" (vehicles entering {country}) or \"exit\" (vehicles leaving {country})"
            ),
        )
    })
}

pub(super) fn point(source: &Source<'_>, value: Spanned<String>, field: &str) -> Result<Point, ConfigError> {
    let span = value.span();
    let text = value.into_inner();
    text.parse().map_err(|_: String| {
        source.error_at(
            span,
            field,
            format!(
                "unknown point \"{text}\"; use \"arrival\" (where vehicles arrive at the post) or \"departure\" (where they leave it)"
            ),
        )
    })
}

fn side(source: &Source<'_>, value: Spanned<String>, field: &str) -> Result<Side, ConfigError> {
    let span = value.span();
    let text = value.into_inner();
    match text.as_str() {
        "top" => Ok(Side::Top),
        "bottom" => Ok(Side::Bottom),
        "left" => Ok(Side::Left),
        "right" => Ok(Side::Right),
        _ => Err(source.error_at(
            span,
            field,
            format!("unknown side \"{text}\"; use \"top\", \"bottom\", \"left\" or \"right\""),
        )),
    }
}

fn max_fps(source: &Source<'_>, value: Spanned<i64>, field: &str) -> Result<u32, ConfigError> {
    let span = value.span();
    let fps = value.into_inner();
    match u32::try_from(fps) {
        Ok(fps) if fps >= 1 => Ok(fps),
        _ => Err(source.error_at(
            span,
            field,
            format!("max_fps must be 1 or more (leave it out to process every frame); found {fps}"),
        )),
    }
}

fn counting_line(source: &Source<'_>, value: RawLine, field: &str) -> Result<CountingLine, ConfigError> {
    const SHAPE: &str =
        "a counting line is two points [[x1, y1], [x2, y2]], in fractions of the frame's width and height";
    let line_span = value.span();
    let points = value.into_inner();
    if points.len() != 2 {
        return Err(source.error_at(line_span, field, format!("{SHAPE}; found {} point(s)", points.len())));
    }
    let mut xy = [[0.0f32; 2]; 2];
    for (i, point) in points.into_iter().enumerate() {
        let point_span = point.span();
        let coordinates = point.into_inner();
        if coordinates.len() != 2 {
            return Err(source.error_at(
                point_span,
                field,
                format!("{SHAPE}; point {} has {} number(s)", i + 1, coordinates.len()),
            ));
        }
        for (j, coordinate) in coordinates.into_iter().enumerate() {
            let span = coordinate.span();
            let v = coordinate.into_inner();
            if !(0.0..=1.0).contains(&v) {
                let axis = if j == 0 { "x (a fraction of the width)" } else { "y (a fraction of the height)" };
                return Err(source.error_at(
                    span,
                    field,
                    format!("point {} is outside the frame: its {axis} is {v}, not between 0 and 1", i + 1),
                ));
            }
            xy[i][j] = v as f32;
        }
    }
    if xy[0] == xy[1] {
        return Err(source.error_at(
            line_span,
            field,
            format!(
                "the two points of the counting line are the same ([{}, {}]); it needs two distinct points to cross the lane",
                xy[0][0], xy[0][1]
            ),
        ));
    }
    Ok(CountingLine { a: xy[0], b: xy[1] })
}

/// A horizontal line has no left or right side, a vertical one no top or bottom.
fn check_side_against_line(
    source: &Source<'_>,
    camera: &CameraConfig,
    side_span: std::ops::Range<usize>,
    field: &str,
) -> Result<(), ConfigError> {
    let CountingLine { a, b } = camera.counting_line;
    let contradiction = match camera.from_side {
        Side::Left | Side::Right if a[1] == b[1] => Some("horizontal, so vehicles cross it from the top or the bottom"),
        Side::Top | Side::Bottom if a[0] == b[0] => Some("vertical, so vehicles cross it from the left or the right"),
        _ => None,
    };
    match contradiction {
        None => Ok(()),
        Some(why) => Err(source.error_at(
            side_span,
            field,
            format!("from_side \"{}\" does not fit the counting line: the line is {why}", camera.from_side),
        )),
    }
}
