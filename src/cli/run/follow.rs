//! `borderflow run --config post.toml --follow`: a post as a long-running
//! process over the embedded [`Engine`].
//!
//! The post's scenario reads are fed to the engine tick by tick of a replay
//! clock (`tick_ms` of simulated time per commit, each commit at the end of
//! its tick), one tick every `pace` of wall time, as a live source would.
//! The engine recovers its log first; the source then resumes after the last
//! commit time in the log, which is its acknowledged position. So the
//! process can be killed at any moment (SIGKILL included) and started again,
//! and it ends with the same views and the same changelog files as a run
//! that was never interrupted. A push that fails (the object store is down)
//! is retried with backoff until it succeeds or `give_up_after` has passed.

use std::time::{Duration, Instant};

use borderflow_connectors::scenario;
use borderflow_engine::{PlateRead, PostConfig, reads_to_batch};

use borderflow_engine::{Engine, EngineError, EngineOptions};

/// How `--follow` runs.
#[derive(Clone, Debug)]
pub struct FollowOptions {
    pub engine: EngineOptions,
    /// Simulated time per commit.
    pub tick_ms: u64,
    /// Wall time between commits.
    pub pace: Duration,
    /// A push still failing after this long stops the run.
    pub give_up_after: Duration,
}

impl Default for FollowOptions {
    fn default() -> Self {
        FollowOptions { engine: EngineOptions::default(), tick_ms: 300_000, pace: Duration::ZERO, give_up_after: Duration::from_secs(600) }
    }
}

/// What a `--follow` run did.
#[derive(Clone, Debug)]
pub struct FollowReport {
    pub recovered_records: usize,
    pub recovered_reads: usize,
    pub recovery: Duration,
    pub cut_back: Option<(String, u64)>,
    /// Commits made by this process (after recovery).
    pub commits: usize,
    pub reads_pushed: usize,
    /// Pushes that failed and were retried.
    pub retries: usize,
    /// Each view's rows at the end.
    pub views: Vec<(String, usize)>,
}

/// The post's scenario reads in commits: (commit time, reads), in order.
/// The first commit carries no reads: it is the time the watchlist is loaded.
pub fn scenario_ticks(config: &PostConfig, tick_ms: u64) -> Result<(Vec<(u64, Vec<PlateRead>)>, arrow::array::RecordBatch), String> {
    let scenario = scenario::generate(&crate::cli::demo::job::post_scenario(config)?);
    let tick_ms = tick_ms.max(1) as i64;
    let mut ticks: Vec<(u64, Vec<PlateRead>)> = Vec::new();
    for read in scenario.reads_for_post(&config.post.id) {
        let end = ((read.captured_at_ms.div_euclid(tick_ms) + 1) * tick_ms).max(1) as u64;
        match ticks.last_mut() {
            Some((time, reads)) if *time == end => reads.push(read.clone()),
            _ => ticks.push((end, vec![read.clone()])),
        }
    }
    if let Some(&(first, _)) = ticks.first() {
        ticks.insert(0, (first - tick_ms as u64, Vec::new()));
    }
    Ok((ticks, scenario.watchlist_batch()))
}

/// The scenario's first commit: the post's `[watchlist]` file if it has
/// one (a file that cannot be read is logged, and the post runs on with the
/// watchlist it has), else the scenario's watchlist.
pub(crate) fn first_watchlist(engine: &mut Engine, scenario_watchlist: &arrow::array::RecordBatch, time_ms: u64) -> Result<usize, EngineError> {
    if engine.config().watchlist.is_none() {
        return engine.upsert_watchlist_at(scenario_watchlist, time_ms).map(|()| 0);
    }
    match engine.reload_watchlist_at(time_ms) {
        Ok(_) => Ok(0),
        // Logged by the engine; the post runs on with the list it had.
        Err(EngineError::Input(_)) => Ok(0),
        Err(error) => Err(error),
    }
}

/// Runs `push` until it succeeds; a failure of the log, the store or a sink
/// (the object store is down) is retried with backoff until `give_up_after`
/// has passed. Returns what `push` returned and the retries.
pub(crate) fn push_with_retry(
    engine: &mut Engine,
    give_up_after: Duration,
    mut push: impl FnMut(&mut Engine) -> Result<usize, EngineError>,
) -> Result<(usize, usize), String> {
    let started = Instant::now();
    let mut backoff = Duration::from_millis(100);
    let mut retries = 0;
    loop {
        match push(engine) {
            Ok(n) => return Ok((n, retries)),
            Err(error @ (EngineError::Wal(_) | EngineError::Storage(_) | EngineError::Sink { .. })) if started.elapsed() < give_up_after => {
                retries += 1;
                tracing::warn!(%error, retry_in_ms = backoff.as_millis() as u64, "push failed; retrying");
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
            Err(error) => return Err(error.to_string()),
        }
    }
}

/// Flushes the engine (retried: the final flush and sweep write to the
/// store too), then shuts it down. Returns the reads' history files the
/// engine wrote.
pub(crate) fn flush_and_shut_down(mut engine: Engine) -> Result<usize, String> {
    let mut retries = 0;
    loop {
        match engine.flush() {
            Ok(()) => break,
            Err(error) if retries < 20 => {
                retries += 1;
                tracing::warn!(%error, "final flush failed; retrying");
                std::thread::sleep(Duration::from_secs(1));
            }
            Err(error) => return Err(error.to_string()),
        }
    }
    let files = engine.history_files_written();
    engine.shutdown().map_err(|e| e.to_string())?;
    Ok(files)
}

/// Runs the post to the end of its scenario (see the module documentation).
pub fn follow(config: PostConfig, options: &FollowOptions, progress: &dyn Fn(&str)) -> Result<FollowReport, String> {
    let (ticks, watchlist) = scenario_ticks(&config, options.tick_ms)?;
    let mut engine = Engine::open(config, options.engine.clone()).map_err(|e| e.to_string())?;
    let recovery = engine.recovery().clone();
    progress(&format!(
        "recovered {} log records ({} reads) from {} segments in {:.3}s",
        recovery.records,
        recovery.reads,
        recovery.segments,
        recovery.duration.as_secs_f64()
    ));
    let mut report = FollowReport {
        recovered_records: recovery.records,
        recovered_reads: recovery.reads,
        recovery: recovery.duration,
        cut_back: recovery.cut_back.clone(),
        commits: 0,
        reads_pushed: 0,
        retries: 0,
        views: Vec::new(),
    };
    let resume_after = engine.log_time_ms();
    for (i, (time, reads)) in ticks.iter().enumerate() {
        if *time <= resume_after {
            continue;
        }
        let pushed = push_with_retry(&mut engine, options.give_up_after, |engine| {
            if i == 0 { first_watchlist(engine, &watchlist, *time) } else { engine.push_reads_at(&reads_to_batch(reads), *time) }
        })?;
        report.reads_pushed += pushed.0;
        report.retries += pushed.1;
        report.commits += 1;
        if !options.pace.is_zero() {
            std::thread::sleep(options.pace);
        }
    }
    for name in engine.view_names() {
        let rows = engine.snapshot(&name).map_err(|e| e.to_string())?.num_rows();
        report.views.push((name, rows));
    }
    flush_and_shut_down(engine)?;
    Ok(report)
}
