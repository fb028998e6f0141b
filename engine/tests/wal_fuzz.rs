//! Fuzzing write-ahead log recovery: a real segment, written by the log
//! itself, is damaged at random (bytes flipped, cut short, bytes appended,
//! a record's length overwritten, and damage behind the checksum: a
//! payload changed and its checksum made to match, so that the Arrow IPC
//! inside is decoded) and the log is opened again. Recovery must not panic
//! or allocate more than the segment could hold, must give back every
//! record before the damage, and must name the segment and the byte offset
//! when it stops.
//!
//! Why proptest and not cargo-fuzz or AFL: both need a nightly compiler or
//! their own toolchain, which the project's machines and CI do not have.
//! proptest runs on stable as an ordinary `cargo test`, from a fixed seed
//! by default, shrinks a failure to a small input, and takes more cases
//! from `BORDERFLOW_FUZZ_CASES` for long runs (see `fuzz_config`).

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};
use std::sync::atomic::{AtomicUsize, Ordering};

use borderflow_engine::wal::{SegmentEnd, Wal, WalError, WalOp, WalRecord, decode_segment};
use borderflow_engine::{Direction, ExchangeKeys, PlateRead, pre_arrival_records, reads_to_batch};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

#[path = "../types/tests/fuzz_config/mod.rs"]
mod fuzz_config;
#[path = "../types/tests/sample_reads/mod.rs"]
mod sample_reads;

use sample_reads::sample_read;
use crate::wal_store::{options, storage};

/// The largest single allocation asked for since the case began.
static LARGEST_ALLOCATION: AtomicUsize = AtomicUsize::new(0);

/// The system allocator, keeping [`LARGEST_ALLOCATION`].
struct Measured;

unsafe impl GlobalAlloc for Measured {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LARGEST_ALLOCATION.fetch_max(layout.size(), Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        LARGEST_ALLOCATION.fetch_max(layout.size(), Ordering::Relaxed);
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LARGEST_ALLOCATION.fetch_max(new_size, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Measured = Measured;

/// No allocation may pass this: the segment is a few kilobytes.
const ALLOCATION_LIMIT: usize = 64 << 20;

const START_MS: u64 = 1_795_000_000_000 / 86_400_000 * 86_400_000;

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime"))
}

/// A segment the log wrote itself: its bytes, path in the store, records,
/// and where each record starts (and, last, where the segment ends).
struct Original {
    relative: PathBuf,
    bytes: Vec<u8>,
    records: Vec<WalRecord>,
    starts: Vec<usize>,
}

fn original() -> &'static Original {
    static ORIGINAL: OnceLock<Original> = OnceLock::new();
    ORIGINAL.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        let reads: Vec<PlateRead> = (0..5).map(|i| sample_read(i, "otaci", if i % 2 == 0 { Direction::Exit } else { Direction::Entry })).collect();
        runtime().block_on(async {
            let (mut wal, _, _) = Wal::open(storage(dir.path()), options()).await.expect("open");
            wal.append(START_MS + 1, WalOp::Insert, "reads", &reads_to_batch(&reads[..2])).await.expect("append");
            wal.append(START_MS + 2, WalOp::Insert, "pre_arrival", &pre_arrival_records(&reads, &ExchangeKeys::single(b"key"))).await.expect("append");
            wal.append(START_MS + 3, WalOp::Insert, "reads", &reads_to_batch(&[])).await.expect("append");
            wal.append(START_MS + 4, WalOp::Upsert, "reads", &reads_to_batch(&reads[2..])).await.expect("append");
        });
        let store = dir.path().join("store");
        let mut stack = vec![store.clone()];
        let mut files = Vec::new();
        while let Some(folder) = stack.pop() {
            for entry in std::fs::read_dir(&folder).expect("store folder").flatten() {
                if entry.path().is_dir() { stack.push(entry.path()) } else { files.push(entry.path()) }
            }
        }
        assert_eq!(files.len(), 1, "one segment: {files:?}");
        let bytes = std::fs::read(&files[0]).expect("segment");
        let (records, end) = decode_segment(&bytes);
        assert_eq!((records.len(), end), (4, SegmentEnd::Clean));
        let mut starts = vec![0];
        while let Some(&at) = starts.last().filter(|&&at| at < bytes.len()) {
            let length = u32::from_le_bytes([bytes[at + 4], bytes[at + 5], bytes[at + 6], bytes[at + 7]]) as usize;
            starts.push(at + 12 + length);
        }
        let relative = files[0].strip_prefix(&store).expect("inside the store").to_path_buf();
        Original { relative, bytes, records, starts }
    })
}

/// One way of damaging the segment. Records and byte positions are taken
/// modulo the number there are, so that a failing input can be written
/// down as a regression test.
#[derive(Clone, Debug)]
enum Damage {
    FlipBytes(Vec<(usize, u8)>),
    CutAt(usize),
    Append(Vec<u8>),
    /// A record's length field overwritten.
    Length(usize, u32),
    /// Bytes of a record's payload flipped, and the checksum recomputed.
    BehindChecksum(usize, Vec<(usize, u8)>),
    /// Four bytes of a record's payload overwritten (a length inside the
    /// Arrow IPC, often), and the checksum recomputed.
    WordBehindChecksum(usize, usize, u32),
}

fn damage() -> impl Strategy<Value = Damage> {
    let flips = || proptest::collection::vec((any::<usize>(), 1..=255u8), 1..6);
    let word = prop_oneof![any::<u32>(), Just(u32::MAX), Just(0x7fff_ffff), Just(0x8000_0000), Just(0x4000_0000)];
    prop_oneof![
        2 => flips().prop_map(Damage::FlipBytes),
        1 => any::<usize>().prop_map(Damage::CutAt),
        1 => proptest::collection::vec(any::<u8>(), 1..40).prop_map(Damage::Append),
        1 => (any::<usize>(), word.clone()).prop_map(|(record, length)| Damage::Length(record, length)),
        2 => (any::<usize>(), flips()).prop_map(|(record, flips)| Damage::BehindChecksum(record, flips)),
        2 => (any::<usize>(), any::<usize>(), word).prop_map(|(record, at, value)| Damage::WordBehindChecksum(record, at, value)),
    ]
}

/// The damaged bytes, and whether the checksums still vouch for them.
fn apply(original: &Original, damage: &Damage) -> (Vec<u8>, bool) {
    let mut bytes = original.bytes.clone();
    let records = original.starts.len() - 1;
    let payload = |record: &usize| {
        let record = record % records;
        (original.starts[record], original.starts[record] + 12, original.starts[record + 1])
    };
    let reseal = |bytes: &mut Vec<u8>, start: usize, end: usize| {
        let crc = crc32fast::hash(&bytes[start + 12..end]);
        bytes[start + 8..start + 12].copy_from_slice(&crc.to_le_bytes());
    };
    match damage {
        Damage::FlipBytes(flips) => {
            for (at, mask) in flips {
                let i = at % bytes.len();
                bytes[i] ^= mask;
            }
            (bytes, false)
        }
        Damage::CutAt(at) => {
            bytes.truncate(at % bytes.len());
            (bytes, false)
        }
        Damage::Append(extra) => {
            bytes.extend_from_slice(extra);
            (bytes, false)
        }
        Damage::Length(record, length) => {
            let (start, _, _) = payload(record);
            bytes[start + 4..start + 8].copy_from_slice(&length.to_le_bytes());
            (bytes, false)
        }
        Damage::BehindChecksum(record, flips) => {
            let (start, from, end) = payload(record);
            for (at, mask) in flips {
                bytes[from + at % (end - from)] ^= mask;
            }
            reseal(&mut bytes, start, end);
            (bytes, true)
        }
        Damage::WordBehindChecksum(record, at, value) => {
            let (start, from, end) = payload(record);
            let i = from + at % (end - from - 3);
            bytes[i..i + 4].copy_from_slice(&value.to_le_bytes());
            reseal(&mut bytes, start, end);
            (bytes, true)
        }
    }
}

/// The index of the record holding the first byte that differs (the
/// number of records when the original is whole, with bytes appended).
fn first_damaged_record(original: &Original, damaged: &[u8]) -> usize {
    let first = original.bytes.iter().zip(damaged).position(|(a, b)| a != b).unwrap_or(original.bytes.len().min(damaged.len()));
    original.starts.iter().rposition(|&start| start <= first).unwrap_or(0)
}

/// One case at a time, so that each measures its own allocations.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn check(damage: &Damage) -> Result<(), TestCaseError> {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let original = original();
    LARGEST_ALLOCATION.store(0, Ordering::Relaxed);
    let (bytes, sealed) = apply(original, damage);
    let intact = first_damaged_record(original, &bytes);
    let records = original.records.len();

    // The segment's reader: the records before the damage, and where it stopped.
    let (found, end) = decode_segment(&bytes);
    prop_assert!(found.len() >= intact.min(records), "{} of the {intact} records before the damage came back", found.len());
    prop_assert_eq!(&found[..intact.min(records)], &original.records[..intact.min(records)]);
    if !sealed && bytes != original.bytes {
        prop_assert_eq!(found.len(), intact, "a damaged record is not read");
        // Cut exactly between two records, the segment is whole but shorter.
        let expected = (bytes.len() != original.starts[intact]).then_some(original.starts[intact]);
        let stopped = match &end {
            SegmentEnd::Truncated { offset } | SegmentEnd::Corrupt { offset, .. } => Some(*offset),
            SegmentEnd::Clean => None,
        };
        prop_assert_eq!(stopped, expected, "stops at the damaged record: {:?}", end);
    }

    // The whole recovery, on a store.
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("store").join(&original.relative);
    std::fs::create_dir_all(file.parent().expect("folder")).expect("segment folder");
    std::fs::write(&file, &bytes).expect("segment");
    let opened = runtime().block_on(Wal::open(storage(dir.path()), options()));
    match opened {
        Ok((_, recovered, _)) => {
            prop_assert!(recovered.len() >= intact.min(records));
            prop_assert_eq!(&recovered[..intact.min(records)], &original.records[..intact.min(records)]);
        }
        Err(WalError::Corrupt { segment, offset, message }) => {
            let name = original.relative.file_name().expect("name").to_string_lossy().into_owned();
            prop_assert!(segment.ends_with(&name), "the error names the segment {}: {}", name, segment);
            prop_assert!(offset <= bytes.len() && !message.is_empty());
            if !sealed {
                prop_assert_eq!(offset, original.starts[intact], "the offset of the damaged record: {}", message);
            }
        }
        Err(other) => prop_assert!(false, "recovery failed otherwise: {other}"),
    }
    let largest = LARGEST_ALLOCATION.load(Ordering::Relaxed);
    prop_assert!(largest < ALLOCATION_LIMIT, "an allocation of {largest} bytes");
    Ok(())
}

proptest! {
    #![proptest_config(fuzz_config::config(500))]

    #[test]
    fn damaged_segments_recover_what_came_before_or_name_the_damage(damage in damage()) {
        check(&damage)?;
    }
}

#[test]
fn the_original_segment_recovers_whole() {
    check(&Damage::Append(Vec::new())).expect("no damage");
}

// Inputs the fuzzer found before the log checked the Arrow IPC inside a
// record (`borderflow_engine::ipc_check`): arrow decoded whatever a record
// whose checksum matched declared.

/// A struct column's validity bitmap shorter than its values: a panic in
/// arrow ("buffer not large enough").
#[test]
fn regression_a_validity_bitmap_shorter_than_its_values() {
    check(&Damage::BehindChecksum(9068672293956097768, vec![(538813940262397896, 1)])).expect("refused in words");
    check(&Damage::WordBehindChecksum(6047285013173546147, 13878512235988960819, 16777216)).expect("refused in words");
}

/// A buffer's offset past the message body: a panic in arrow ("the offset
/// of the new Buffer cannot exceed the existing length").
#[test]
fn regression_a_buffer_past_the_body() {
    check(&Damage::WordBehindChecksum(2243770831076529896, 7730470344783606074, 2147483648)).expect("refused in words");
    check(&Damage::WordBehindChecksum(5804468099693963046, 7983880525341118235, 1)).expect("refused in words");
}

/// An offsets buffer whose length is not a whole number of offsets: a
/// panic in arrow (found with the checks above already in place).
#[test]
fn regression_offsets_that_are_not_a_whole_number() {
    check(&Damage::BehindChecksum(5748058302580025891, vec![(8903466692967590240, 33)])).expect("refused in words");
}

/// A buffer inside the bytes that follow the message, but past the body
/// the message declares, which is all arrow reads (found with the checks
/// above in place, by a run of 20 000 cases).
#[test]
fn regression_a_buffer_past_the_declared_body() {
    check(&Damage::WordBehindChecksum(1782290534722209958, 7107804128545641744, 2147483648)).expect("refused in words");
}

/// The Arrow IPC metadata length of the first record (payload bytes 28 to
/// 31, after the sequence number, time, operation, the table name `reads`
/// and the continuation marker) set to 2³¹−1: arrow allocated 2 GiB before
/// finding out that the bytes are not there.
#[test]
fn regression_a_metadata_length_does_not_allocate_gigabytes() {
    check(&Damage::WordBehindChecksum(0, 28, 0x7fff_ffff)).expect("refused in words, without the allocation");
}
