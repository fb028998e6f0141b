//! Plate reads survive the trip to Arrow and back, and a batch that breaks the
//! contract is refused with the column and row named.

use std::sync::Arc;

use arrow::array::{RecordBatch, StringArray};
use borderflow_types::{BBox, Direction, PlateRead, Point, plate_norm, plate_read_schema, reads_from_batch, reads_to_batch};

fn read(i: u32, bbox: Option<BBox>, plate_country: Option<&str>) -> PlateRead {
    let text = format!("ABC {:03}", i % 1000);
    PlateRead {
        read_id: ulid::Ulid::from_parts(1_764_000_000_000 + u64::from(i), u128::from(i)).to_string(),
        post_id: "otaci".into(),
        camera_id: format!("otaci-exit-arrival-{}", i % 3 + 1),
        country: "MD".into(),
        lane: (i % 3 + 1) as u16,
        direction: if i.is_multiple_of(2) { Direction::Exit } else { Direction::Entry },
        point: if i.is_multiple_of(3) { Point::Arrival } else { Point::Departure },
        captured_at_ms: 1_764_000_000_000 + i64::from(i) * 1000,
        plate_norm: plate_norm(&text),
        plate_text: text,
        plate_country: plate_country.map(str::to_string),
        confidence: 0.5 + (i % 50) as f32 / 100.0,
        frames: (i % 20) as u16,
        bbox,
        crop_uri: i.is_multiple_of(4).then(|| format!("file:///crops/{i}.jpg")),
    }
}

#[test]
fn reads_round_trip_through_arrow() {
    let reads: Vec<PlateRead> = (0..100)
        .map(|i| {
            let bbox = (i % 5 != 0).then_some(BBox { x: i as f32, y: 2.0, w: 120.5, h: 30.25 });
            read(i, bbox, (i % 7 != 0).then_some("MD"))
        })
        .collect();
    let batch = reads_to_batch(&reads);
    assert_eq!(batch.schema(), plate_read_schema());
    assert_eq!(batch.num_rows(), 100);
    assert_eq!(reads_from_batch(&batch).expect("valid batch"), reads);
}

#[test]
fn the_schema_is_the_documented_contract() {
    let schema = plate_read_schema();
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    assert_eq!(
        names,
        [
            "read_id", "post_id", "camera_id", "country", "lane", "direction", "point", "captured_at",
            "plate_text", "plate_norm", "plate_country", "confidence", "frames", "bbox", "crop_uri"
        ]
    );
    let nullable: Vec<&str> =
        schema.fields().iter().filter(|f| f.is_nullable()).map(|f| f.name().as_str()).collect();
    assert_eq!(nullable, ["plate_country", "bbox", "crop_uri"]);
}

#[test]
fn a_bad_direction_is_refused_with_column_and_row() {
    let batch = reads_to_batch(&[read(1, None, None), read(2, None, None)]);
    let mut columns = batch.columns().to_vec();
    let index = batch.schema().index_of("direction").expect("direction column");
    columns[index] = Arc::new(StringArray::from(vec!["entry", "sideways"]));
    let broken = RecordBatch::try_new(batch.schema(), columns).expect("same types");
    let message = reads_from_batch(&broken).expect_err("sideways is not a direction").to_string();
    assert!(message.contains("direction") && message.contains("row 1") && message.contains("sideways"), "{message}");
}

#[test]
fn a_missing_column_is_named() {
    let batch = reads_to_batch(&[read(1, None, None)]);
    let without = batch.project(&[0, 1, 2]).expect("projection");
    let message = reads_from_batch(&without).expect_err("columns are missing").to_string();
    assert!(message.contains("`country`"), "{message}");
}

/// Found while fuzzing what comes from outside: a pushed batch whose `bbox`
/// struct had fewer than its four parts made the reader index past them
/// (a panic); it is refused with the part named.
#[test]
fn a_bbox_without_its_parts_is_refused_not_a_panic() {
    let batch = reads_to_batch(&[read(1, None, None)]);
    let index = batch.schema().index_of("bbox").expect("bbox column");
    let x = Arc::new(arrow::array::Float32Array::from(vec![1.0f32])) as arrow::array::ArrayRef;
    let short = arrow::array::StructArray::from(vec![(Arc::new(arrow::datatypes::Field::new("x", arrow::datatypes::DataType::Float32, false)), x)]);
    let mut fields: Vec<arrow::datatypes::FieldRef> = batch.schema().fields().iter().cloned().collect();
    fields[index] = Arc::new(arrow::datatypes::Field::new("bbox", arrow::array::Array::data_type(&short).clone(), true));
    let mut columns = batch.columns().to_vec();
    columns[index] = Arc::new(short);
    let broken = RecordBatch::try_new(Arc::new(arrow::datatypes::Schema::new(fields)), columns).expect("a batch");
    let message = reads_from_batch(&broken).expect_err("bbox has one part").to_string();
    assert!(message.contains("bbox.y"), "{message}");
}
