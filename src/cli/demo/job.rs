//! The main job: simulated traffic through the engine into Parquet.
//!
//! Reads come from the deterministic scenario (every crossing for `demo`, one
//! post's share for `run --config`), are replayed through the standing views
//! on timely workers (the standard views of `queries/sql/` and the
//! configuration's own), with the neighbour's exit reads arriving as hashed
//! pre-arrival records, and are written, with every view's changelog and
//! snapshot and the scenario's ground truth, as Parquet to the object store.
//! The job then checks each view against DataFusion's batch answer, reads
//! its own output back to check the passage counts, and scores `risk_flags`
//! and `cross_border_matches` against the ground truth.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::{ArrayRef, Int64Array, RecordBatch, StringArray, TimestampMillisecondArray};
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use borderflow_connectors::scenario::{self, Scenario, ScenarioConfig};
use borderflow_connectors::{ParquetStore, StoreError, WrittenFile};
use borderflow_engine::passage_counts::{self, PassageCountChange, PassageKey};
use borderflow_engine::crossings::{self};
use borderflow_engine::{
    PostConfig,
    Direction, ExchangeKeys, PlateRead, Runtime, TableConfig, ViewConfig, conform_watchlist, plate_read_schema,
};
use borderflow_queries::row::sorted_rows;
use borderflow_queries::standard::MAIN_VIEWS;
use borderflow_queries::{History, QueryError, StandingViews, ViewError};

use borderflow_engine::{PostTables, feed_reads, post_views};

use borderflow_connectors::scenario::scoring::{MatchScore, RuleScore, score_flags, score_matches};

/// What to run.
#[derive(Clone, Debug)]
pub struct JobSpec {
    pub scenario: ScenarioConfig,
    /// Only these posts' reads (all posts when `None`).
    pub posts: Option<Vec<String>>,
    /// Absolute object store URL the job writes under.
    pub storage_url: String,
    pub runtime: Runtime,
    /// Granularity of the replay's ingestion clock.
    pub tick_ms: u64,
    /// Traffic between two commits of the SQL views: the reads of each such
    /// stretch reach the views together (their answers at the end do not
    /// depend on it; their changelogs have a time per commit).
    pub view_tick_ms: u64,
    /// SQL views kept up to date over `reads` and written beside it.
    pub views: Vec<ViewConfig>,
    /// Reference tables from files that the views may use.
    pub tables: Vec<TableConfig>,
    /// The watchlist, read from the post's `[watchlist]` file (else the
    /// scenario's watchlist).
    pub watchlist: Option<RecordBatch>,
    /// The keys plates are hashed with for the exchange between posts.
    pub exchange_keys: ExchangeKeys,
    /// Maintain the standard views of `queries/sql/` too.
    pub standard_views: bool,
    /// Replace one lane per crossing by rendered video read through the
    /// video pipeline (see `video_job`).
    pub video_lanes: bool,
}



/// The simulated traffic a post's `[scenario]` section describes: its
/// crossing's, from the section's seed, start, days and traffic scale.
pub fn post_scenario(config: &PostConfig) -> Result<ScenarioConfig, String> {
    let Some(source) = &config.scenario else {
        return Err(format!("post `{}` has no [scenario] section", config.post.id));
    };
    let crossing = crossings::find_crossing(&config.post.crossing)
        .ok_or_else(|| format!("post.crossing `{}` is not a known crossing", config.post.crossing))?;
    Ok(ScenarioConfig {
        seed: source.seed,
        start: source.start,
        days: source.days,
        traffic_scale: source.traffic_scale,
        crossings: vec![crossing],
        ..ScenarioConfig::default()
    })
}

/// Why a job failed.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Query(#[from] QueryError),
    #[error("dataflow failed: {0}")]
    Dataflow(String),
    #[error("starting the async runtime: {0}")]
    Io(#[from] std::io::Error),
    #[error("the standing view disagrees with DataFusion over the written reads: {0}")]
    Disagreement(String),
    #[error(transparent)]
    View(#[from] ViewError),
    #[error("{0}")]
    Table(String),
    #[error(transparent)]
    Engine(#[from] borderflow_engine::EngineError),
}

/// What a job did.
#[derive(Debug)]
pub struct JobReport {
    pub storage_url: String,
    pub workers: usize,
    pub reads: usize,
    pub passages: usize,
    pub anomalies: BTreeMap<String, usize>,
    /// The standing view's final contents.
    pub counts: BTreeMap<PassageKey, i64>,
    pub view_changes: usize,
    /// Each SQL view's name, rows at the end, and changes.
    pub sql_views: Vec<(String, usize, usize)>,
    /// The standard views' contents at the end (for the summary).
    pub standard: BTreeMap<String, RecordBatch>,
    /// `risk_flags` per rule against the ground truth (every post only).
    pub flag_scores: Vec<RuleScore>,
    /// `cross_border_matches` against the ground truth (every post only).
    pub match_score: Option<MatchScore>,
    pub files: Vec<WrittenFile>,
    pub timings: Vec<(&'static str, Duration)>,
    /// What the video lanes did, when the spec asked for them.
    pub video_lanes: Option<crate::cli::demo::video_lanes::VideoLanesReport>,
}

/// Stages report progress through this.
pub trait Progress {
    fn stage(&self, name: &str);
}

impl Progress for () {
    fn stage(&self, _name: &str) {}
}

/// Runs the job to the end.
pub fn run_job(spec: &JobSpec, progress: &dyn Progress) -> Result<JobReport, JobError> {
    let mut timings = Vec::new();
    let mut clock = Instant::now();
    let mut lap = |name: &'static str, timings: &mut Vec<(&'static str, Duration)>| {
        timings.push((name, clock.elapsed()));
        clock = Instant::now();
    };

    progress.stage("generating traffic");
    let scenario = scenario::generate(&spec.scenario);
    let keep = |post: &str| spec.posts.as_ref().is_none_or(|posts| posts.iter().any(|p| p == post));
    let mut reads: Vec<PlateRead> = scenario.reads.iter().filter(|r| keep(&r.post_id)).cloned().collect();
    lap("generate", &mut timings);
    // The video hook: one lane per crossing read from rendered video.
    let video_lanes = spec.video_lanes.then(|| {
        progress.stage("reading rendered video, one lane per crossing");
        let report = crate::cli::demo::video_lanes::replace_with_video_reads(&mut reads, &spec.runtime);
        lap("video", &mut timings);
        report
    });
    let reads = Arc::new(reads);

    progress.stage("running the dataflow");
    let changes = passage_counts::replay_passage_counts(&spec.runtime, Arc::clone(&reads), spec.tick_ms)
        .map_err(JobError::Dataflow)?;
    let counts = passage_counts::final_counts(&changes);
    lap("dataflow", &mut timings);

    let tokio = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    progress.stage("maintaining SQL views");
    let watchlist = match &spec.watchlist {
        Some(batch) => batch.clone(),
        None => conform_watchlist(&scenario.watchlist_batch(), "the scenario's watchlist").map_err(JobError::Table)?,
    };
    // The neighbours of the posts run here send their exit reads.
    let neighbours: Vec<&str> = crossings::all_posts()
        .filter(|p| keep(p.id))
        .filter_map(|p| crossings::find_crossing(p.crossing).and_then(|c| c.peer_of(p.id)).map(|n| n.id))
        .collect();
    let sent: Vec<PlateRead> = scenario
        .reads
        .iter()
        .filter(|r| r.direction == Direction::Exit && neighbours.contains(&r.post_id.as_str()))
        .cloned()
        .collect();
    let post = PostTables { views: &spec.views, tables: &spec.tables, watchlist: &watchlist, keys: &spec.exchange_keys, standard: spec.standard_views };
    let sql_views = tokio.block_on(maintain_views(&post, &reads, &sent, spec.view_tick_ms, &spec.runtime))?;
    lap("sql views", &mut timings);

    progress.stage("writing Parquet");
    let store = ParquetStore::open(&spec.storage_url)?;
    let mut files = tokio.block_on(write_outputs(&store, &reads, &changes, &counts, &scenario))?;
    let standard_views: &[&str] = if spec.standard_views { MAIN_VIEWS } else { &[] };
    let written: Vec<&str> = standard_views.iter().copied().chain(spec.views.iter().map(|v| v.name.as_str())).collect();
    for name in &written {
        let (snapshot, view_changes) = (sql_views.snapshot(name)?, sql_views.changes(name)?);
        files.push(tokio.block_on(store.write_batch(&format!("views/{name}/snapshot.parquet"), &snapshot))?);
        files.push(tokio.block_on(store.write_batch(&format!("views/{name}/changes/part-0.parquet"), &view_changes))?);
    }
    lap("write", &mut timings);

    progress.stage("checking the view against DataFusion");
    tokio.block_on(check_against_datafusion(&store, &counts))?;
    let mut sql_view_report = Vec::new();
    // Each view against DataFusion's batch answer over the tables and the
    // views it selects from: all of them equal means each equals its
    // whole query computed in batch (see `batch_step_answer`).
    for name in sql_views.view_names() {
        let (snapshot, answer) = (sql_views.snapshot(&name)?, tokio.block_on(sql_views.batch_step_answer(&name))?);
        let sorted = |b: &RecordBatch| sorted_rows(b).map_err(|e| JobError::Disagreement(e.to_string()));
        if sorted(&snapshot)? != sorted(&answer)? {
            return Err(JobError::Disagreement(format!("view {name}: incremental and batch results differ")));
        }
        sql_view_report.push((name.clone(), snapshot.num_rows(), sql_views.changes(&name)?.num_rows()));
    }
    lap("check", &mut timings);

    let standard: BTreeMap<String, RecordBatch> =
        standard_views.iter().map(|name| Ok((name.to_string(), sql_views.snapshot(name)?))).collect::<Result<_, ViewError>>()?;
    let (flag_scores, match_score) = if spec.posts.is_none() && spec.standard_views {
        (score_flags(&standard["risk_flags"], &scenario), Some(score_matches(&standard["cross_border_matches"], &scenario)))
    } else {
        (Vec::new(), None)
    };

    let mut anomalies = BTreeMap::new();
    for anomaly in &scenario.anomalies {
        if anomaly.post_ids.iter().any(|p| keep(p)) {
            let origin = if anomaly.planted { "" } else { " (by chance)" };
            *anomalies.entry(format!("{}{origin}", anomaly.kind)).or_default() += 1;
        }
    }
    Ok(JobReport {
        storage_url: store.url().to_string(),
        workers: spec.runtime.workers(),
        reads: reads.len(),
        passages: scenario.passages.len(),
        anomalies,
        counts,
        view_changes: changes.len(),
        sql_views: sql_view_report,
        standard,
        flag_scores,
        match_score,
        files,
        timings,
        video_lanes,
    })
}


/// Keeps the SQL views up to date over the reads and the pre-arrival
/// records of the `sent` exit reads, committing once per tick of the
/// replay's ingestion clock; a record arrives in the tick its read was made.
async fn maintain_views(
    post: &PostTables<'_>,
    reads: &[PlateRead],
    sent: &[PlateRead],
    tick_ms: u64,
    runtime: &Runtime,
) -> Result<StandingViews, JobError> {
    let mut standing = post_views(post, runtime).await?;
    let tick_ms = tick_ms.max(1) as i64;
    let mut ticks: BTreeMap<i64, (Vec<PlateRead>, Vec<PlateRead>)> = BTreeMap::new();
    for read in reads {
        ticks.entry(read.captured_at_ms.div_euclid(tick_ms)).or_default().0.push(read.clone());
    }
    for read in sent {
        ticks.entry(read.captured_at_ms.div_euclid(tick_ms)).or_default().1.push(read.clone());
    }
    for (tick, (reads, sent)) in ticks {
        feed_reads(&mut standing, &reads, &sent, post.keys)?;
        standing.commit_at(((tick + 1) * tick_ms).max(0) as u64);
    }
    Ok(standing)
}




async fn write_outputs(
    store: &ParquetStore,
    reads: &[PlateRead],
    changes: &[PassageCountChange],
    counts: &BTreeMap<PassageKey, i64>,
    scenario: &Scenario,
) -> Result<Vec<WrittenFile>, StoreError> {
    let view = passage_counts::VIEW_NAME;
    let mut files = store.write_reads(reads).await?;
    files.push(store.write_batch(&format!("views/{view}/changes/part-0.parquet"), &changes_batch(changes)).await?);
    files.push(store.write_batch(&format!("views/{view}/snapshot.parquet"), &snapshot_batch(counts)).await?);
    files.push(store.write_batch("ground_truth/passages.parquet", &scenario.passages_batch()).await?);
    files.push(store.write_batch("ground_truth/anomalies.parquet", &scenario.anomalies_batch()).await?);
    files.push(store.write_batch("ground_truth/watchlist.parquet", &scenario.watchlist_batch()).await?);
    Ok(files)
}

fn key_columns<'a>(keys: impl Iterator<Item = &'a PassageKey> + Clone) -> Vec<ArrayRef> {
    vec![
        Arc::new(StringArray::from_iter_values(keys.clone().map(|k| k.post_id.as_str()))),
        Arc::new(StringArray::from_iter_values(keys.clone().map(|k| k.direction.as_str()))),
        Arc::new(StringArray::from_iter_values(keys.map(|k| k.point.as_str()))),
    ]
}

fn view_fields() -> Vec<Field> {
    vec![
        Field::new("post_id", DataType::Utf8, false),
        Field::new("direction", DataType::Utf8, false),
        Field::new("point", DataType::Utf8, false),
        Field::new("passages", DataType::Int64, false),
    ]
}

/// The view's changelog: its columns plus `_diff` and `_time`.
fn changes_batch(changes: &[PassageCountChange]) -> RecordBatch {
    let mut fields = view_fields();
    fields.push(Field::new("_diff", DataType::Int64, false));
    fields.push(Field::new("_time", DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())), false));
    let mut columns = key_columns(changes.iter().map(|c| &c.key));
    columns.push(Arc::new(Int64Array::from_iter_values(changes.iter().map(|c| c.passages))));
    columns.push(Arc::new(Int64Array::from_iter_values(changes.iter().map(|c| c.diff))));
    columns.push(Arc::new(
        TimestampMillisecondArray::from_iter_values(changes.iter().map(|c| c.time_ms as i64)).with_timezone("UTC"),
    ));
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).expect("columns match the changelog schema")
}

fn snapshot_batch(counts: &BTreeMap<PassageKey, i64>) -> RecordBatch {
    let mut columns = key_columns(counts.keys());
    columns.push(Arc::new(Int64Array::from_iter_values(counts.values().copied())));
    RecordBatch::try_new(Arc::new(Schema::new(view_fields())), columns).expect("columns match the snapshot schema")
}

/// The oracle: DataFusion's batch answer over the Parquet the job wrote must
/// equal the incrementally maintained view.
async fn check_against_datafusion(
    store: &ParquetStore,
    counts: &BTreeMap<PassageKey, i64>,
) -> Result<(), JobError> {
    let (object_store, _) = store.object_store();
    let history = History::new(store.url(), object_store);
    history.register_parquet("reads", &store.folder_url("reads"), Some(plate_read_schema())).await?;
    let batches = history
        .sql("SELECT post_id, direction, point, count(*) AS passages FROM reads GROUP BY post_id, direction, point")
        .await?;
    let mut batch_counts = BTreeMap::new();
    for batch in &batches {
        let text = |i: usize| batch.column(i).as_any().downcast_ref::<StringArray>().cloned();
        let (Some(post), Some(direction), Some(point)) = (text(0), text(1), text(2)) else {
            return Err(JobError::Disagreement("unexpected column types".into()));
        };
        let passages = batch.column(3).as_any().downcast_ref::<Int64Array>().cloned();
        let Some(passages) = passages else {
            return Err(JobError::Disagreement("count(*) is not Int64".into()));
        };
        for row in 0..batch.num_rows() {
            let key = PassageKey {
                post_id: post.value(row).to_string(),
                direction: direction.value(row).parse().map_err(JobError::Disagreement)?,
                point: point.value(row).parse().map_err(JobError::Disagreement)?,
            };
            batch_counts.insert(key, passages.value(row));
        }
    }
    if &batch_counts != counts {
        return Err(JobError::Disagreement(format!("view {counts:?}, DataFusion {batch_counts:?}")));
    }
    Ok(())
}
