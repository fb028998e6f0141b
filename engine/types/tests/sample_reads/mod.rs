//! Plate reads for the fuzz targets that need real ones to start from:
//! the `i`-th read of a post's camera, every third without a plate box
//! (a null in the `bbox` struct column), every second without a country.

use borderflow_types::{BBox, Direction, PlateRead, Point};

pub fn sample_read(i: u32, post_id: &str, direction: Direction) -> PlateRead {
    PlateRead {
        read_id: format!("01J{i:023}"),
        post_id: post_id.into(),
        camera_id: format!("{post_id}-{}-departure-1", direction.as_str()),
        country: if post_id == "otaci" { "MD".into() } else { "UA".into() },
        lane: 1 + (i % 3) as u16,
        direction,
        point: Point::Departure,
        captured_at_ms: 1_795_000_000_000 / 86_400_000 * 86_400_000 + i64::from(i) * 60_000,
        plate_text: format!("ABC {i:03}"),
        plate_norm: format!("ABC{i:03}"),
        plate_country: (i % 2 == 0).then(|| "MD".to_string()),
        confidence: 0.9,
        frames: 4,
        bbox: (i % 3 != 0).then_some(BBox { x: 1.0, y: 2.0, w: 30.0, h: 10.0 }),
        crop_uri: None,
    }
}
