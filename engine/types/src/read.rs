//! The plate read: one vehicle passage seen by one camera, and its Arrow form.
//!
//! [`plate_read_schema`] is the contract analysts see (column names and types
//! are documented in ARCHITECTURE.md); [`reads_to_batch`] and
//! [`reads_from_batch`] convert between the row form the dataflow carries and
//! Arrow record batches that sinks write and sources read.

use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, OnceLock};

use arrow::array::{
    Array, ArrayRef, Float32Array, Float32Builder, RecordBatch, StringArray, StringBuilder,
    StructArray, StructBuilder, TimestampMillisecondArray, UInt16Array,
};
use arrow::datatypes::{DataType, Field, Fields, Schema, SchemaRef, TimeUnit};

use crate::error::SchemaError;

/// Whether a vehicle is entering or leaving the country the camera stands in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    Entry,
    Exit,
}

/// Where a camera stands in the post's control zone.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Point {
    /// Where vehicles arrive at the post.
    Arrival,
    /// Where vehicles leave the post towards the road or the bridge.
    Departure,
}

impl Direction {
    pub const ALL: [Direction; 2] = [Direction::Entry, Direction::Exit];

    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Entry => "entry",
            Direction::Exit => "exit",
        }
    }
}

impl Point {
    pub const ALL: [Point; 2] = [Point::Arrival, Point::Departure];

    pub fn as_str(self) -> &'static str {
        match self {
            Point::Arrival => "arrival",
            Point::Departure => "departure",
        }
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for Point {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Direction {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "entry" => Ok(Direction::Entry),
            "exit" => Ok(Direction::Exit),
            other => Err(format!("unknown direction `{other}` (expected `entry` or `exit`)")),
        }
    }
}

impl FromStr for Point {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "arrival" => Ok(Point::Arrival),
            "departure" => Ok(Point::Departure),
            other => Err(format!("unknown point `{other}` (expected `arrival` or `departure`)")),
        }
    }
}

/// The plate's box in the best frame, in pixels (top-left origin).
#[derive(Clone, Copy, Debug, PartialEq, PartialOrd, serde::Deserialize, serde::Serialize)]
pub struct BBox {
    pub x: f32,
    pub y: f32,
    pub w: f32,
    pub h: f32,
}

/// One vehicle passage seen by one camera: the voted result of a track.
#[derive(Clone, Debug, PartialEq, serde::Deserialize, serde::Serialize)]
pub struct PlateRead {
    /// ULID; unique, stable across retries and replays (the idempotency key).
    pub read_id: String,
    pub post_id: String,
    pub camera_id: String,
    /// ISO 3166 alpha-2 code of the side of the border the camera stands on.
    pub country: String,
    pub lane: u16,
    pub direction: Direction,
    pub point: Point,
    /// Event time of the best frame, milliseconds since the Unix epoch (UTC).
    pub captured_at_ms: i64,
    /// As read, Latin letters.
    pub plate_text: String,
    /// Normalised key (see [`crate::plate_norm`]).
    pub plate_norm: String,
    /// Country whose plate grammar matched, if any.
    pub plate_country: Option<String>,
    pub confidence: f32,
    /// Frames in the track that were read.
    pub frames: u16,
    pub bbox: Option<BBox>,
    pub crop_uri: Option<String>,
}

fn bbox_fields() -> Fields {
    Fields::from(vec![
        Field::new("x", DataType::Float32, false),
        Field::new("y", DataType::Float32, false),
        Field::new("w", DataType::Float32, false),
        Field::new("h", DataType::Float32, false),
    ])
}

/// The Arrow schema of plate reads (ARCHITECTURE.md, "Core contracts").
pub fn plate_read_schema() -> SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            Arc::new(Schema::new(vec![
                Field::new("read_id", DataType::Utf8, false),
                Field::new("post_id", DataType::Utf8, false),
                Field::new("camera_id", DataType::Utf8, false),
                Field::new("country", DataType::Utf8, false),
                Field::new("lane", DataType::UInt16, false),
                Field::new("direction", DataType::Utf8, false),
                Field::new("point", DataType::Utf8, false),
                Field::new(
                    "captured_at",
                    DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
                    false,
                ),
                Field::new("plate_text", DataType::Utf8, false),
                Field::new("plate_norm", DataType::Utf8, false),
                Field::new("plate_country", DataType::Utf8, true),
                Field::new("confidence", DataType::Float32, false),
                Field::new("frames", DataType::UInt16, false),
                Field::new("bbox", DataType::Struct(bbox_fields()), true),
                Field::new("crop_uri", DataType::Utf8, true),
            ]))
        })
        .clone()
}

/// Converts reads to one record batch with [`plate_read_schema`].
/// Reads as the Parquet history lays them out: one file per post and UTC
/// event date, `reads/<post_id>/<YYYY-MM-DD>/part-<first read_id>.parquet`,
/// its rows sorted by (captured_at, read_id). The name depends only on the
/// rows, so writing the same reads again rewrites the same file.
pub fn reads_history_parts(reads: &[PlateRead]) -> Vec<(String, Vec<PlateRead>)> {
    let mut partitions: std::collections::BTreeMap<(&str, String), Vec<PlateRead>> = std::collections::BTreeMap::new();
    for read in reads {
        let date = chrono::DateTime::from_timestamp_millis(read.captured_at_ms)
            .map(|t| t.date_naive().to_string())
            .unwrap_or_else(|| "invalid-date".to_string());
        partitions.entry((read.post_id.as_str(), date)).or_default().push(read.clone());
    }
    partitions
        .into_iter()
        .map(|((post_id, date), mut rows)| {
            rows.sort_by(|a, b| (a.captured_at_ms, &a.read_id).cmp(&(b.captured_at_ms, &b.read_id)));
            (format!("reads/{post_id}/{date}/part-{}.parquet", rows[0].read_id), rows)
        })
        .collect()
}

pub fn reads_to_batch(reads: &[PlateRead]) -> RecordBatch {
    fn strings<'a>(values: impl Iterator<Item = &'a str>) -> ArrayRef {
        Arc::new(StringArray::from_iter_values(values))
    }
    fn optional_strings<'a>(values: impl Iterator<Item = Option<&'a str>>) -> ArrayRef {
        let mut builder = StringBuilder::new();
        for value in values {
            builder.append_option(value);
        }
        Arc::new(builder.finish())
    }

    let mut bbox = StructBuilder::from_fields(bbox_fields(), reads.len());
    for read in reads {
        let b = read.bbox.unwrap_or(BBox { x: 0.0, y: 0.0, w: 0.0, h: 0.0 });
        for (i, v) in [b.x, b.y, b.w, b.h].into_iter().enumerate() {
            bbox.field_builder::<Float32Builder>(i)
                .expect("bbox fields are Float32")
                .append_value(v);
        }
        bbox.append(read.bbox.is_some());
    }

    let columns: Vec<ArrayRef> = vec![
        strings(reads.iter().map(|r| r.read_id.as_str())),
        strings(reads.iter().map(|r| r.post_id.as_str())),
        strings(reads.iter().map(|r| r.camera_id.as_str())),
        strings(reads.iter().map(|r| r.country.as_str())),
        Arc::new(UInt16Array::from_iter_values(reads.iter().map(|r| r.lane))),
        strings(reads.iter().map(|r| r.direction.as_str())),
        strings(reads.iter().map(|r| r.point.as_str())),
        Arc::new(
            TimestampMillisecondArray::from_iter_values(reads.iter().map(|r| r.captured_at_ms))
                .with_timezone("UTC"),
        ),
        strings(reads.iter().map(|r| r.plate_text.as_str())),
        strings(reads.iter().map(|r| r.plate_norm.as_str())),
        optional_strings(reads.iter().map(|r| r.plate_country.as_deref())),
        Arc::new(Float32Array::from_iter_values(reads.iter().map(|r| r.confidence))),
        Arc::new(UInt16Array::from_iter_values(reads.iter().map(|r| r.frames))),
        Arc::new(bbox.finish()),
        optional_strings(reads.iter().map(|r| r.crop_uri.as_deref())),
    ];
    RecordBatch::try_new(plate_read_schema(), columns)
        .expect("columns are built to match plate_read_schema")
}

fn column<'a, T: 'static>(batch: &'a RecordBatch, name: &str) -> Result<&'a T, SchemaError> {
    let array = batch
        .column_by_name(name)
        .ok_or_else(|| SchemaError::MissingColumn { column: name.to_string() })?;
    array.as_any().downcast_ref::<T>().ok_or_else(|| SchemaError::WrongType {
        column: name.to_string(),
        found: array.data_type().to_string(),
    })
}

fn required<'a>(array: &'a StringArray, name: &str, row: usize) -> Result<&'a str, SchemaError> {
    if array.is_null(row) {
        return Err(SchemaError::NullValue { column: name.to_string(), row });
    }
    Ok(array.value(row))
}

fn optional(array: &StringArray, row: usize) -> Option<String> {
    (!array.is_null(row)).then(|| array.value(row).to_string())
}

/// Converts a record batch with the plate read columns back to rows.
///
/// Columns are found by name, so a batch may carry extra columns. Errors name
/// the column and the row.
pub fn reads_from_batch(batch: &RecordBatch) -> Result<Vec<PlateRead>, SchemaError> {
    let read_id = column::<StringArray>(batch, "read_id")?;
    let post_id = column::<StringArray>(batch, "post_id")?;
    let camera_id = column::<StringArray>(batch, "camera_id")?;
    let country = column::<StringArray>(batch, "country")?;
    let lane = column::<UInt16Array>(batch, "lane")?;
    let direction = column::<StringArray>(batch, "direction")?;
    let point = column::<StringArray>(batch, "point")?;
    let captured_at = column::<TimestampMillisecondArray>(batch, "captured_at")?;
    let plate_text = column::<StringArray>(batch, "plate_text")?;
    let plate_norm = column::<StringArray>(batch, "plate_norm")?;
    let plate_country = column::<StringArray>(batch, "plate_country")?;
    let confidence = column::<Float32Array>(batch, "confidence")?;
    let frames = column::<UInt16Array>(batch, "frames")?;
    let bbox = column::<StructArray>(batch, "bbox")?;
    let crop_uri = column::<StringArray>(batch, "crop_uri")?;
    let bbox_part = |i: usize| -> Result<&Float32Array, SchemaError> {
        let column = format!("bbox.{}", bbox_fields()[i].name());
        let part = bbox.columns().get(i).ok_or_else(|| SchemaError::MissingColumn { column: column.clone() })?;
        part.as_any().downcast_ref::<Float32Array>().ok_or_else(|| SchemaError::WrongType {
            column,
            found: part.data_type().to_string(),
        })
    };
    let (bx, by, bw, bh) = (bbox_part(0)?, bbox_part(1)?, bbox_part(2)?, bbox_part(3)?);

    let mut reads = Vec::with_capacity(batch.num_rows());
    for row in 0..batch.num_rows() {
        let bad = |column: &str, message: String| SchemaError::BadValue {
            column: column.to_string(),
            row,
            message,
        };
        reads.push(PlateRead {
            read_id: required(read_id, "read_id", row)?.to_string(),
            post_id: required(post_id, "post_id", row)?.to_string(),
            camera_id: required(camera_id, "camera_id", row)?.to_string(),
            country: required(country, "country", row)?.to_string(),
            lane: lane.value(row),
            direction: required(direction, "direction", row)?
                .parse()
                .map_err(|m| bad("direction", m))?,
            point: required(point, "point", row)?.parse().map_err(|m| bad("point", m))?,
            captured_at_ms: captured_at.value(row),
            plate_text: required(plate_text, "plate_text", row)?.to_string(),
            plate_norm: required(plate_norm, "plate_norm", row)?.to_string(),
            plate_country: optional(plate_country, row),
            confidence: confidence.value(row),
            frames: frames.value(row),
            bbox: (!bbox.is_null(row)).then(|| BBox {
                x: bx.value(row),
                y: by.value(row),
                w: bw.value(row),
                h: bh.value(row),
            }),
            crop_uri: optional(crop_uri, row),
        });
    }
    Ok(reads)
}
