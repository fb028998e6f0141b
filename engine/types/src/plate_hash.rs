//! Pseudonymised plate keys for the exchange between posts.
//!
//! A plate never crosses the border as text. The sending post hashes each
//! exit read's [`plate_norm`](crate::plate_norm) with HMAC-SHA256 under the
//! key the two customs services share ([`ExchangeKeys`]) and sends the
//! hashes as [`pre_arrival_schema`] records. The receiving post hashes its
//! own reads the same way ([`read_keys_batch`]) and joins on the hashes.
//!
//! A camera misreads a character now and then, and an exact hash cannot
//! tell a one-character misread from another vehicle. So each read is hashed
//! in several *variants* ([`key_variants`]): variant 0 is the whole key;
//! variant `k` (1 ≤ k ≤ length) is the key with its `k`-th character
//! replaced by `*`, so two reads that differ in one character share the
//! variant of that position (keys of at most [`MASKED_KEY_CHARS_MAX`]
//! characters); variant −1 is the confusion-folded key
//! ([`plate_fuzzy`](crate::plate_fuzzy)). Hashes of variants are joined only
//! with hashes of the same variant. The receiver learns which variant
//! matched, never a character.
//!
//! Keys are versioned. The sender hashes under every version its key file
//! lists (two during a rotation), and the receiver hashes its own reads
//! under every version its file lists too; the two are joined version by
//! version. So each side can add the new key and drop the old one on its
//! own schedule: records match as long as the sender's versions and the
//! receiver's have one in common. A record under a version the receiver
//! does not hold can match nothing; the exchange refuses it, logged.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{ArrayRef, Float32Array, Int16Array, RecordBatch, StringArray, TimestampMillisecondArray, UInt16Array};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::{Direction, PlateRead, plate_fuzzy};

/// The variant of a whole key.
pub const VARIANT_EXACT: i16 = 0;
/// The variant of the confusion-folded key.
pub const VARIANT_FUZZY: i16 = -1;

/// The shared secrets, by version, and the version this post hashes with.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ExchangeKeys {
    secrets: BTreeMap<u16, Vec<u8>>,
    current: u16,
}

impl std::fmt::Debug for ExchangeKeys {
    /// Never prints a secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExchangeKeys").field("versions", &self.secrets.keys().collect::<Vec<_>>()).field("current", &self.current).finish()
    }
}

impl ExchangeKeys {
    /// One key, version 1, current.
    pub fn single(secret: &[u8]) -> Self {
        let mut keys = ExchangeKeys::default();
        keys.insert(1, secret.to_vec());
        keys.set_current(1);
        keys
    }

    /// Adds a version; false if it is already there.
    pub fn insert(&mut self, version: u16, secret: Vec<u8>) -> bool {
        if self.secrets.contains_key(&version) {
            return false;
        }
        self.secrets.insert(version, secret);
        true
    }

    /// Makes `version` current; false if there is no such key.
    pub fn set_current(&mut self, version: u16) -> bool {
        let known = self.secrets.contains_key(&version);
        if known {
            self.current = version;
        }
        known
    }

    /// The version `plate_hmac(text)` uses by default in SQL (0: no keys);
    /// reads and records are hashed under every version.
    pub fn current(&self) -> u16 {
        self.current
    }

    /// The valid versions, ascending.
    pub fn versions(&self) -> impl Iterator<Item = u16> + '_ {
        self.secrets.keys().copied()
    }

    /// HMAC-SHA256 of `text` under `version`, as lower-case hex; `None` if
    /// the version is unknown.
    pub fn hmac(&self, text: &str, version: u16) -> Option<String> {
        let secret = self.secrets.get(&version)?;
        let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
        mac.update(text.as_bytes());
        Some(hex::encode(mac.finalize().into_bytes()))
    }
}

/// Keys longer than this (no registration plate is) get no masked
/// variants: masking each position of a key of n characters costs n² bytes,
/// and a read from outside may carry any text.
pub const MASKED_KEY_CHARS_MAX: usize = 24;

/// The texts a plate key is hashed in: `(variant, text)` for the whole key
/// (0), each position masked (1..=length, for keys of at most
/// [`MASKED_KEY_CHARS_MAX`] characters) and the confusion-folded key (−1).
pub fn key_variants(norm: &str) -> Vec<(i16, String)> {
    let chars: Vec<char> = norm.chars().collect();
    let masked = if chars.len() <= MASKED_KEY_CHARS_MAX { chars.len() } else { 0 };
    let mut variants = Vec::with_capacity(masked + 2);
    variants.push((VARIANT_EXACT, norm.to_string()));
    for k in 0..masked {
        let masked: String = chars.iter().enumerate().map(|(i, &c)| if i == k { '*' } else { c }).collect();
        variants.push((k as i16 + 1, masked));
    }
    variants.push((VARIANT_FUZZY, plate_fuzzy(norm)));
    variants
}

fn timestamp_ms() -> DataType {
    DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()))
}

/// The Arrow schema of pre-arrival records, what a post receives from its
/// neighbour across the bridge: for each exit read, one row per key
/// variant and key version. No plate text: `plate_hmac` is the keyed hash
/// (lower-case hex) of the variant's text. `read_id` is the sender's read
/// (the receiver is idempotent on it), then the post, direction, point,
/// capture time and confidence of the read.
pub fn pre_arrival_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("read_id", DataType::Utf8, false),
        Field::new("plate_hmac", DataType::Utf8, false),
        Field::new("variant", DataType::Int16, false),
        Field::new("key_version", DataType::UInt16, false),
        Field::new("post_id", DataType::Utf8, false),
        Field::new("direction", DataType::Utf8, false),
        Field::new("point", DataType::Utf8, false),
        Field::new("captured_at", timestamp_ms(), false),
        Field::new("confidence", DataType::Float32, false),
    ]))
}

/// The schema of a post's own hashed keys: `read_id`, `variant`,
/// `key_version` and `plate_hmac` under that version (every version held).
pub fn read_keys_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("read_id", DataType::Utf8, false),
        Field::new("variant", DataType::Int16, false),
        Field::new("key_version", DataType::UInt16, false),
        Field::new("plate_hmac", DataType::Utf8, false),
    ]))
}

/// The pre-arrival records a post sends for its exit reads (entry reads are
/// not sent), hashed under every valid key version.
pub fn pre_arrival_records(reads: &[PlateRead], keys: &ExchangeKeys) -> RecordBatch {
    let mut rows: Vec<(&PlateRead, i16, u16, String)> = Vec::new();
    for read in reads.iter().filter(|r| r.direction == Direction::Exit) {
        for (variant, text) in key_variants(&read.plate_norm) {
            for version in keys.versions() {
                let hash = keys.hmac(&text, version).expect("listed versions have secrets");
                rows.push((read, variant, version, hash));
            }
        }
    }
    fn text<'r, T: 'r>(rows: &'r [T], f: impl Fn(&'r T) -> &'r str) -> ArrayRef {
        Arc::new(StringArray::from_iter_values(rows.iter().map(f)))
    }
    let columns: Vec<ArrayRef> = vec![
        text(&rows, |r| &r.0.read_id),
        text(&rows, |r| &r.3),
        Arc::new(Int16Array::from_iter_values(rows.iter().map(|r| r.1))),
        Arc::new(UInt16Array::from_iter_values(rows.iter().map(|r| r.2))),
        text(&rows, |r| &r.0.post_id),
        text(&rows, |r| r.0.direction.as_str()),
        text(&rows, |r| r.0.point.as_str()),
        Arc::new(TimestampMillisecondArray::from_iter_values(rows.iter().map(|r| r.0.captured_at_ms)).with_timezone("UTC")),
        Arc::new(Float32Array::from_iter_values(rows.iter().map(|r| r.0.confidence))),
    ];
    RecordBatch::try_new(pre_arrival_schema(), columns).expect("columns match the pre-arrival schema")
}

/// A post's own reads hashed as the neighbour hashes its pre-arrival
/// records, under every key version held ([`read_keys_schema`]).
pub fn read_keys_batch(reads: &[PlateRead], keys: &ExchangeKeys) -> RecordBatch {
    let mut rows: Vec<(&str, i16, u16, String)> = Vec::new();
    for read in reads {
        for (variant, text) in key_variants(&read.plate_norm) {
            for version in keys.versions() {
                let hash = keys.hmac(&text, version).expect("listed versions have secrets");
                rows.push((&read.read_id, variant, version, hash));
            }
        }
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.0))),
        Arc::new(Int16Array::from_iter_values(rows.iter().map(|r| r.1))),
        Arc::new(UInt16Array::from_iter_values(rows.iter().map(|r| r.2))),
        Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.3.as_str()))),
    ];
    RecordBatch::try_new(read_keys_schema(), columns).expect("columns match the read keys schema")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc_4231_test_case_2() {
        // RFC 4231, test case 2: key "Jefe", data "what do ya want for nothing?".
        let keys = ExchangeKeys::single(b"Jefe");
        assert_eq!(
            keys.hmac("what do ya want for nothing?", 1).unwrap(),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_eq!(keys.hmac("x", 2), None);
    }

    #[test]
    fn during_a_rotation_reads_are_keyed_under_both_versions() {
        let mut keys = ExchangeKeys::single(b"old");
        assert!(keys.insert(2, b"new".to_vec()));
        let read = PlateRead {
            read_id: "r1".into(),
            post_id: "otaci".into(),
            camera_id: "otaci-entry-1".into(),
            country: "MD".into(),
            lane: 1,
            direction: Direction::Entry,
            point: crate::Point::Arrival,
            captured_at_ms: 0,
            plate_text: "ABC 123".into(),
            plate_norm: "ABC123".into(),
            plate_country: None,
            confidence: 0.9,
            frames: 3,
            bbox: None,
            crop_uri: None,
        };
        let batch = read_keys_batch(std::slice::from_ref(&read), &keys);
        let variants = key_variants("ABC123").len();
        assert_eq!(batch.num_rows(), variants * 2);
        let versions = batch.column(2).as_any().downcast_ref::<UInt16Array>().unwrap();
        let hashes = batch.column(3).as_any().downcast_ref::<StringArray>().unwrap();
        assert_eq!(versions.iter().filter(|v| *v == Some(2)).count(), variants);
        // The same text under each version: a different hash, each the one the sender computes.
        assert_eq!(hashes.value(0), keys.hmac("ABC123", versions.value(0)).unwrap());
        assert_ne!(keys.hmac("ABC123", 1), keys.hmac("ABC123", 2));
    }

    #[test]
    fn one_wrong_character_shares_exactly_one_masked_variant() {
        let a: BTreeMap<i16, String> = key_variants("ABC123").into_iter().collect();
        let b: BTreeMap<i16, String> = key_variants("ABC128").into_iter().collect();
        let shared: Vec<i16> = a.iter().filter(|(v, t)| b.get(v) == Some(t)).map(|(v, _)| *v).collect();
        assert_eq!(shared, vec![6]);
        let c: BTreeMap<i16, String> = key_variants("A8C123").into_iter().collect();
        assert_eq!(a[&VARIANT_FUZZY], c[&VARIANT_FUZZY]);
    }
}
