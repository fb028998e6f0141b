//! The main job: simulated traffic through the engine into Parquet.
//!
//! Reads come from the deterministic scenario (every crossing for `demo`, one
//! post's share for `run --config`), are replayed through the standing view
//! on timely workers, and are written, with the view's changelog and snapshot
//! and the scenario's ground truth, as Parquet to the object store. The job
//! then reads its own output back with DataFusion and checks the view against
//! a batch `GROUP BY` over the written reads.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::{ArrayRef, Int64Array, RecordBatch, StringArray, TimestampMillisecondArray};
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use borderflow_connectors::scenario::{self, Scenario, ScenarioConfig};
use borderflow_connectors::{ParquetStore, StoreError, WrittenFile};
use borderflow_engine::passage_counts::{self, PassageCountChange, PassageKey};
use borderflow_engine::{PlateRead, Runtime, TableConfig, ViewConfig, plate_read_schema, pre_arrival_schema, reads_to_batch};
use borderflow_queries::row::sorted_rows;
use borderflow_queries::{History, QueryError, StandingViews, ViewError};

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
    /// SQL views kept up to date over `reads` and written beside it.
    pub views: Vec<ViewConfig>,
    /// Reference tables from files that the views may use.
    pub tables: Vec<TableConfig>,
    /// Replace one lane per crossing by rendered video read through the
    /// video pipeline (see `video_job`).
    pub video_lanes: bool,
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
    pub files: Vec<WrittenFile>,
    pub timings: Vec<(&'static str, Duration)>,
    /// What the video lanes did, when the spec asked for them.
    pub video_lanes: Option<crate::video_job::VideoLanesReport>,
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
        let report = crate::video_job::replace_with_video_reads(&mut reads, &spec.runtime);
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
    let sql_views = tokio.block_on(maintain_views(&spec.views, &spec.tables, &reads, &scenario.watchlist_batch(), spec.tick_ms, spec.runtime.workers()))?;
    lap("sql views", &mut timings);

    progress.stage("writing Parquet");
    let store = ParquetStore::open(&spec.storage_url)?;
    let mut files = tokio.block_on(write_outputs(&store, &reads, &changes, &counts, &scenario))?;
    for view in &spec.views {
        let (snapshot, view_changes) = (sql_views.snapshot(&view.name)?, sql_views.changes(&view.name)?);
        files.push(tokio.block_on(store.write_batch(&format!("views/{}/snapshot.parquet", view.name), &snapshot))?);
        files.push(tokio.block_on(store.write_batch(&format!("views/{}/changes/part-0.parquet", view.name), &view_changes))?);
    }
    lap("write", &mut timings);

    progress.stage("checking the view against DataFusion");
    tokio.block_on(check_against_datafusion(&store, &counts))?;
    let mut sql_view_report = Vec::new();
    for view in &spec.views {
        let (snapshot, answer) = (sql_views.snapshot(&view.name)?, tokio.block_on(sql_views.batch_answer(&view.name))?);
        let sorted = |b: &RecordBatch| sorted_rows(b).map_err(|e| JobError::Disagreement(e.to_string()));
        if sorted(&snapshot)? != sorted(&answer)? {
            return Err(JobError::Disagreement(format!("view {}: incremental and batch results differ", view.name)));
        }
        sql_view_report.push((view.name.clone(), snapshot.num_rows(), sql_views.changes(&view.name)?.num_rows()));
    }
    lap("check", &mut timings);

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
        files,
        timings,
        video_lanes,
    })
}

/// Keeps the SQL views up to date over the reads, committing once per tick
/// of the replay's ingestion clock.
async fn maintain_views(
    views: &[ViewConfig],
    tables: &[TableConfig],
    reads: &[PlateRead],
    watchlist: &RecordBatch,
    tick_ms: u64,
    workers: usize,
) -> Result<StandingViews, JobError> {
    let mut standing = post_views(views, tables, watchlist, workers).await?;
    let tick_ms = tick_ms.max(1) as i64;
    let mut start = 0;
    while start < reads.len() {
        let tick = reads[start].captured_at_ms.div_euclid(tick_ms);
        let end = start + reads[start..].iter().take_while(|r| r.captured_at_ms.div_euclid(tick_ms) == tick).count();
        standing.insert("reads", &reads_to_batch(&reads[start..end]))?;
        standing.commit_at(((tick + 1) * tick_ms).max(0) as u64);
        start = end;
    }
    Ok(standing)
}

/// A post's tables and standing views, before any read arrives.
/// Views see `reads`, `posts` (the crossings reference table),
/// `watchlist`, `pre_arrival` (records from the neighbour's posts) and the
/// configuration's own tables.
pub async fn post_views(
    views: &[ViewConfig],
    tables: &[TableConfig],
    watchlist: &RecordBatch,
    workers: usize,
) -> Result<StandingViews, JobError> {
    let mut standing = StandingViews::with_workers(workers)?;
    standing.register_table("reads", plate_read_schema())?;
    let posts = posts_batch();
    standing.register_table("posts", posts.schema())?;
    standing.insert("posts", &posts)?;
    standing.register_table("watchlist", watchlist.schema())?;
    standing.insert("watchlist", watchlist)?;
    standing.register_table("pre_arrival", pre_arrival_schema())?;
    for table in tables {
        let contents = load_table(table).await?;
        standing.register_table(&table.name, contents.schema())?;
        standing.insert(&table.name, &contents)?;
    }
    for view in views {
        standing.create_view(&view.name, &view.sql).await?;
    }
    Ok(standing)
}

/// A configured reference table's rows, read with DataFusion.
async fn load_table(table: &TableConfig) -> Result<RecordBatch, JobError> {
    let failed = |e: &dyn std::fmt::Display| JobError::Table(format!("table `{}` ({}): {e}", table.name, table.path.display()));
    let ctx = datafusion::prelude::SessionContext::new();
    let path = table.path.to_string_lossy();
    let frame = if path.ends_with(".csv") {
        ctx.read_csv(path.as_ref(), datafusion::prelude::CsvReadOptions::new()).await
    } else {
        ctx.read_parquet(path.as_ref(), datafusion::prelude::ParquetReadOptions::default()).await
    }
    .map_err(|e| failed(&e))?;
    let schema = Arc::new(frame.schema().as_arrow().clone());
    let batches = frame.collect().await.map_err(|e| failed(&e))?;
    arrow::compute::concat_batches(&schema, &batches).map_err(|e| failed(&e))
}

/// The posts of the crossings table: id, name, country, crossing, the post
/// across the border, lanes and the usual transit time between the two.
pub fn posts_batch() -> RecordBatch {
    let posts: Vec<(&borderflow_engine::PostInfo, &borderflow_engine::CrossingInfo)> =
        borderflow_engine::CROSSINGS.iter().flat_map(|c| c.posts().map(|p| (p, c))).collect();
    let schema = Arc::new(Schema::new(vec![
        Field::new("post_id", DataType::Utf8, false),
        Field::new("name", DataType::Utf8, false),
        Field::new("country", DataType::Utf8, false),
        Field::new("crossing", DataType::Utf8, false),
        Field::new("neighbour", DataType::Utf8, false),
        Field::new("lanes", DataType::Int64, false),
        Field::new("transit_minutes", DataType::Int64, false),
    ]));
    let text = |f: &dyn Fn(&(&borderflow_engine::PostInfo, &borderflow_engine::CrossingInfo)) -> String| -> ArrayRef {
        Arc::new(StringArray::from_iter_values(posts.iter().map(f)))
    };
    let columns: Vec<ArrayRef> = vec![
        text(&|(p, _)| p.id.to_string()),
        text(&|(p, _)| p.name.to_string()),
        text(&|(p, _)| p.country.to_string()),
        text(&|(_, c)| c.id.to_string()),
        text(&|(p, c)| c.peer_of(p.id).map_or(String::new(), |n| n.id.to_string())),
        Arc::new(Int64Array::from_iter_values(posts.iter().map(|(p, _)| i64::from(p.lanes)))),
        Arc::new(Int64Array::from_iter_values(posts.iter().map(|(_, c)| i64::from(c.transit_minutes)))),
    ];
    RecordBatch::try_new(schema, columns).expect("columns match the schema")
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
