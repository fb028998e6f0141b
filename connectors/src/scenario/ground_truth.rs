//! Ground truth: what really happened in a scenario, as rows and as Arrow.
//!
//! [`Passage`] is one vehicle's crossing with its four scheduled camera times
//! and what became of each read; [`Anomaly`] is something a risk view should
//! flag, with the reads that prove it; [`WatchlistEntry`] is one row of the
//! watchlist the scenario ships with. The `*_batch` functions turn them into
//! flat Arrow record batches (Utf8, UInt8/UInt16, Boolean, Timestamp(ms, UTC),
//! lists of Utf8) ready to be written to Parquet next to the reads.

use std::fmt;
use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanArray, ListBuilder, RecordBatch, StringArray, StringBuilder,
    TimestampMillisecondArray, UInt8Array, UInt16Array,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use borderflow_types::{Direction, Point};

/// The four camera positions a crossing passes, in the order it passes them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Stage {
    /// Arrival at the post of the country being left (`exit`, `arrival`).
    ExitArrival,
    /// Departure from that post towards the bridge (`exit`, `departure`).
    ExitDeparture,
    /// Arrival at the neighbour's post (`entry`, `arrival`).
    EntryArrival,
    /// Departure from the neighbour's post into the country (`entry`, `departure`).
    EntryDeparture,
}

impl Stage {
    pub const ALL: [Stage; 4] = [
        Stage::ExitArrival,
        Stage::ExitDeparture,
        Stage::EntryArrival,
        Stage::EntryDeparture,
    ];

    pub fn direction(self) -> Direction {
        match self {
            Stage::ExitArrival | Stage::ExitDeparture => Direction::Exit,
            Stage::EntryArrival | Stage::EntryDeparture => Direction::Entry,
        }
    }

    pub fn point(self) -> Point {
        match self {
            Stage::ExitArrival | Stage::EntryArrival => Point::Arrival,
            Stage::ExitDeparture | Stage::EntryDeparture => Point::Departure,
        }
    }

    /// Position in [`Stage::ALL`], for indexing a passage's per-stage arrays.
    pub fn index(self) -> usize {
        self as usize
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Stage::ExitArrival => "exit_arrival",
            Stage::ExitDeparture => "exit_departure",
            Stage::EntryArrival => "entry_arrival",
            Stage::EntryDeparture => "entry_departure",
        }
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What became of the read a camera should have made.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ReadOutcome {
    /// Read, text correct.
    Read,
    /// Read, text wrong (noise: one character; a planted `misread`: two or more).
    Misread,
    /// Missed by the camera (noise): no read emitted.
    Missed,
    /// The vehicle never passed the camera (a planted `entry_without_exit`).
    NotSeen,
}

/// Kinds of planted (and detected) anomalies; the names are the ones the
/// `risk_flags` view is scored against.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AnomalyKind {
    ClonedPlate,
    Watchlisted,
    EntryWithoutExit,
    LongDwell,
    Misread,
    FrequentCrosser,
}

impl AnomalyKind {
    pub const ALL: [AnomalyKind; 6] = [
        AnomalyKind::ClonedPlate,
        AnomalyKind::Watchlisted,
        AnomalyKind::EntryWithoutExit,
        AnomalyKind::LongDwell,
        AnomalyKind::Misread,
        AnomalyKind::FrequentCrosser,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AnomalyKind::ClonedPlate => "cloned_plate",
            AnomalyKind::Watchlisted => "watchlisted",
            AnomalyKind::EntryWithoutExit => "entry_without_exit",
            AnomalyKind::LongDwell => "long_dwell",
            AnomalyKind::Misread => "misread",
            AnomalyKind::FrequentCrosser => "frequent_crosser",
        }
    }
}

impl fmt::Display for AnomalyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One vehicle's crossing from one country's post to the neighbour's.
#[derive(Clone, Debug, PartialEq)]
pub struct Passage {
    /// ULID, from the exit arrival time.
    pub passage_id: String,
    /// The physical vehicle (`veh-000042`); a cloned plate is two vehicles with one plate.
    pub vehicle_id: String,
    /// The true plate, normalised ([`borderflow_types::plate_norm`]).
    pub plate: String,
    /// Country of registration (ISO 3166 alpha-2).
    pub plate_country: String,
    pub crossing: String,
    /// The post the vehicle leaves its country through (readings `exit`).
    pub from_post: String,
    /// The neighbour's post it enters through (readings `entry`).
    pub to_post: String,
    pub from_country: String,
    pub to_country: String,
    /// Lane used at `from_post` (1-based), and at `to_post`.
    pub exit_lane: u16,
    pub entry_lane: u16,
    /// Scheduled camera times, ms since the Unix epoch (UTC).
    pub exit_arrival_ms: i64,
    pub exit_departure_ms: i64,
    pub entry_arrival_ms: i64,
    pub entry_departure_ms: i64,
    /// The read emitted at each [`Stage`] (indexed by [`Stage::index`]); `None`
    /// where the read was missed or the vehicle was not seen.
    pub read_ids: [Option<String>; 4],
    /// What became of each stage's read.
    pub outcomes: [ReadOutcome; 4],
    /// The anomaly this passage was planted for, if any (planted passages are
    /// exempt from random noise).
    pub planted: Option<AnomalyKind>,
}

impl Passage {
    pub fn scheduled_ms(&self, stage: Stage) -> i64 {
        match stage {
            Stage::ExitArrival => self.exit_arrival_ms,
            Stage::ExitDeparture => self.exit_departure_ms,
            Stage::EntryArrival => self.entry_arrival_ms,
            Stage::EntryDeparture => self.entry_departure_ms,
        }
    }

    pub fn read_id(&self, stage: Stage) -> Option<&str> {
        self.read_ids[stage.index()].as_deref()
    }

    pub fn outcome(&self, stage: Stage) -> ReadOutcome {
        self.outcomes[stage.index()]
    }

    /// The post a stage's camera stands at.
    pub fn post_at(&self, stage: Stage) -> &str {
        match stage.direction() {
            Direction::Exit => &self.from_post,
            Direction::Entry => &self.to_post,
        }
    }

    /// The read ids emitted for this passage, in stage order.
    pub fn emitted_read_ids(&self) -> impl Iterator<Item = &str> {
        self.read_ids.iter().flatten().map(String::as_str)
    }

    fn stages_with(&self, outcome: ReadOutcome) -> impl Iterator<Item = &'static str> + '_ {
        Stage::ALL
            .into_iter()
            .filter(move |s| self.outcome(*s) == outcome)
            .map(Stage::as_str)
    }
}

/// Something a risk view should flag, with the reads that prove it.
#[derive(Clone, Debug, PartialEq)]
pub struct Anomaly {
    /// ULID, from the first evidence read's time.
    pub anomaly_id: String,
    pub kind: AnomalyKind,
    /// `true` when planted on purpose; `false` when random noise or ordinary
    /// traffic happened to produce it (found by scanning the ground truth).
    pub planted: bool,
    /// The true plate, normalised.
    pub plate: String,
    /// The posts involved.
    pub post_ids: Vec<String>,
    /// The reads that are the evidence; every one is in [`super::Scenario::reads`].
    pub read_ids: Vec<String>,
    pub passage_ids: Vec<String>,
    /// Time of the first and last evidence read (ms since the Unix epoch, UTC).
    pub first_seen_ms: i64,
    pub last_seen_ms: i64,
    pub description: String,
}

/// One row of the watchlist.
#[derive(Clone, Debug, PartialEq)]
pub struct WatchlistEntry {
    /// Normalised plate.
    pub plate: String,
    pub reason: String,
    /// 1 low, 2 medium, 3 high.
    pub severity: u8,
    /// The entry applies to reads captured in `[valid_from_ms, valid_to_ms)`.
    pub valid_from_ms: i64,
    pub valid_to_ms: i64,
}

impl WatchlistEntry {
    pub fn severity_label(&self) -> &'static str {
        match self.severity {
            0 | 1 => "low",
            2 => "medium",
            _ => "high",
        }
    }

    pub fn is_valid_at(&self, at_ms: i64) -> bool {
        self.valid_from_ms <= at_ms && at_ms < self.valid_to_ms
    }
}

fn timestamp_type() -> DataType {
    DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()))
}

fn list_of_strings_type() -> DataType {
    DataType::List(Arc::new(Field::new("item", DataType::Utf8, true)))
}

fn strings<'a>(values: impl Iterator<Item = &'a str>) -> ArrayRef {
    Arc::new(StringArray::from_iter_values(values))
}

fn timestamps(values: impl Iterator<Item = i64>) -> ArrayRef {
    Arc::new(TimestampMillisecondArray::from_iter_values(values).with_timezone("UTC"))
}

fn string_lists<I, S>(rows: impl Iterator<Item = I>) -> ArrayRef
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let mut builder = ListBuilder::new(StringBuilder::new());
    for row in rows {
        for value in row {
            builder.values().append_value(value.as_ref());
        }
        builder.append(true);
    }
    Arc::new(builder.finish())
}

/// Schema of [`passages_batch`].
pub fn passage_schema() -> SchemaRef {
    let ts = timestamp_type;
    Arc::new(Schema::new(vec![
        Field::new("passage_id", DataType::Utf8, false),
        Field::new("vehicle_id", DataType::Utf8, false),
        Field::new("plate", DataType::Utf8, false),
        Field::new("plate_country", DataType::Utf8, false),
        Field::new("crossing", DataType::Utf8, false),
        Field::new("from_post", DataType::Utf8, false),
        Field::new("to_post", DataType::Utf8, false),
        Field::new("from_country", DataType::Utf8, false),
        Field::new("to_country", DataType::Utf8, false),
        Field::new("exit_lane", DataType::UInt16, false),
        Field::new("entry_lane", DataType::UInt16, false),
        Field::new("exit_arrival_at", ts(), false),
        Field::new("exit_departure_at", ts(), false),
        Field::new("entry_arrival_at", ts(), false),
        Field::new("entry_departure_at", ts(), false),
        Field::new("exit_arrival_read_id", DataType::Utf8, true),
        Field::new("exit_departure_read_id", DataType::Utf8, true),
        Field::new("entry_arrival_read_id", DataType::Utf8, true),
        Field::new("entry_departure_read_id", DataType::Utf8, true),
        Field::new("read_ids", list_of_strings_type(), false),
        Field::new("missed", list_of_strings_type(), false),
        Field::new("misread", list_of_strings_type(), false),
        Field::new("not_seen", list_of_strings_type(), false),
        Field::new("planted", DataType::Utf8, true),
    ]))
}

/// The passages as one record batch ([`passage_schema`]). `missed`, `misread`
/// and `not_seen` list the stages (`exit_arrival`, …) with that outcome.
pub fn passages_batch(passages: &[Passage]) -> RecordBatch {
    let stage_read_ids = |stage: Stage| -> ArrayRef {
        Arc::new(
            passages
                .iter()
                .map(|p| p.read_id(stage))
                .collect::<StringArray>(),
        )
    };
    let columns: Vec<ArrayRef> = vec![
        strings(passages.iter().map(|p| p.passage_id.as_str())),
        strings(passages.iter().map(|p| p.vehicle_id.as_str())),
        strings(passages.iter().map(|p| p.plate.as_str())),
        strings(passages.iter().map(|p| p.plate_country.as_str())),
        strings(passages.iter().map(|p| p.crossing.as_str())),
        strings(passages.iter().map(|p| p.from_post.as_str())),
        strings(passages.iter().map(|p| p.to_post.as_str())),
        strings(passages.iter().map(|p| p.from_country.as_str())),
        strings(passages.iter().map(|p| p.to_country.as_str())),
        Arc::new(UInt16Array::from_iter_values(
            passages.iter().map(|p| p.exit_lane),
        )),
        Arc::new(UInt16Array::from_iter_values(
            passages.iter().map(|p| p.entry_lane),
        )),
        timestamps(passages.iter().map(|p| p.exit_arrival_ms)),
        timestamps(passages.iter().map(|p| p.exit_departure_ms)),
        timestamps(passages.iter().map(|p| p.entry_arrival_ms)),
        timestamps(passages.iter().map(|p| p.entry_departure_ms)),
        stage_read_ids(Stage::ExitArrival),
        stage_read_ids(Stage::ExitDeparture),
        stage_read_ids(Stage::EntryArrival),
        stage_read_ids(Stage::EntryDeparture),
        string_lists(passages.iter().map(|p| p.emitted_read_ids())),
        string_lists(passages.iter().map(|p| p.stages_with(ReadOutcome::Missed))),
        string_lists(passages.iter().map(|p| p.stages_with(ReadOutcome::Misread))),
        string_lists(passages.iter().map(|p| p.stages_with(ReadOutcome::NotSeen))),
        Arc::new(
            passages
                .iter()
                .map(|p| p.planted.map(AnomalyKind::as_str))
                .collect::<StringArray>(),
        ),
    ];
    RecordBatch::try_new(passage_schema(), columns)
        .expect("columns are built to match passage_schema")
}

/// Schema of [`anomalies_batch`].
pub fn anomaly_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("anomaly_id", DataType::Utf8, false),
        Field::new("kind", DataType::Utf8, false),
        Field::new("planted", DataType::Boolean, false),
        Field::new("plate", DataType::Utf8, false),
        Field::new("post_ids", list_of_strings_type(), false),
        Field::new("read_ids", list_of_strings_type(), false),
        Field::new("passage_ids", list_of_strings_type(), false),
        Field::new("first_seen_at", timestamp_type(), false),
        Field::new("last_seen_at", timestamp_type(), false),
        Field::new("description", DataType::Utf8, false),
    ]))
}

/// The anomalies as one record batch ([`anomaly_schema`]).
pub fn anomalies_batch(anomalies: &[Anomaly]) -> RecordBatch {
    let columns: Vec<ArrayRef> = vec![
        strings(anomalies.iter().map(|a| a.anomaly_id.as_str())),
        strings(anomalies.iter().map(|a| a.kind.as_str())),
        Arc::new(
            anomalies
                .iter()
                .map(|a| Some(a.planted))
                .collect::<BooleanArray>(),
        ),
        strings(anomalies.iter().map(|a| a.plate.as_str())),
        string_lists(anomalies.iter().map(|a| a.post_ids.iter())),
        string_lists(anomalies.iter().map(|a| a.read_ids.iter())),
        string_lists(anomalies.iter().map(|a| a.passage_ids.iter())),
        timestamps(anomalies.iter().map(|a| a.first_seen_ms)),
        timestamps(anomalies.iter().map(|a| a.last_seen_ms)),
        strings(anomalies.iter().map(|a| a.description.as_str())),
    ];
    RecordBatch::try_new(anomaly_schema(), columns)
        .expect("columns are built to match anomaly_schema")
}

/// Schema of [`watchlist_batch`].
pub fn watchlist_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("plate", DataType::Utf8, false),
        Field::new("reason", DataType::Utf8, false),
        Field::new("severity", DataType::UInt8, false),
        Field::new("severity_label", DataType::Utf8, false),
        Field::new("valid_from", timestamp_type(), false),
        Field::new("valid_to", timestamp_type(), false),
    ]))
}

/// The watchlist as one record batch ([`watchlist_schema`]).
pub fn watchlist_batch(watchlist: &[WatchlistEntry]) -> RecordBatch {
    let columns: Vec<ArrayRef> = vec![
        strings(watchlist.iter().map(|w| w.plate.as_str())),
        strings(watchlist.iter().map(|w| w.reason.as_str())),
        Arc::new(UInt8Array::from_iter_values(
            watchlist.iter().map(|w| w.severity),
        )),
        strings(watchlist.iter().map(|w| w.severity_label())),
        timestamps(watchlist.iter().map(|w| w.valid_from_ms)),
        timestamps(watchlist.iter().map(|w| w.valid_to_ms)),
    ];
    RecordBatch::try_new(watchlist_schema(), columns)
        .expect("columns are built to match watchlist_schema")
}
