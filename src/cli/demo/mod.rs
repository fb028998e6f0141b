//! `borderflow demo`: every crossing's simulated traffic, both sides,
//! through the standing views ([`job`]), with one lane per crossing read
//! from rendered video ([`video_lanes`]); prints the passages, the views,
//! the flags and their scores against the ground truth.

use std::collections::BTreeMap;

use chrono::NaiveDate;

use crate::connectors::scenario::ScenarioConfig;
use crate::engine::{Runtime, ViewConfig, crossings};
use crate::cli::{Spinner, storage_url};
use job::{JobReport, JobSpec, run_job};

pub mod job;
pub mod video_lanes;

/// The demo's own SQL view, beside the standard views of `queries/sql/`.
const DEMO_VIEWS: &[(&str, &str)] = &[
    (
        "hourly_arrivals",
        "SELECT post_id, date_trunc('hour', captured_at) AS hour, count(*) AS vehicles \
         FROM reads WHERE point = 'arrival' GROUP BY post_id, date_trunc('hour', captured_at)",
    ),
];

#[allow(clippy::too_many_arguments)]
pub fn command(
    runtime: Runtime,
    out: &str,
    seed: u64,
    date: NaiveDate,
    days: u32,
    scale: f64,
    standard_views: bool,
    view_commit_minutes: u64,
) -> Result<(), String> {
    let spec = JobSpec {
        scenario: ScenarioConfig { seed, start: date, days, traffic_scale: scale, ..ScenarioConfig::default() },
        posts: None,
        storage_url: storage_url(out)?,
        runtime,
        tick_ms: 300_000,
        view_tick_ms: view_commit_minutes.max(1) * 60_000,
        views: DEMO_VIEWS.iter().map(|(name, sql)| ViewConfig { name: name.to_string(), sql: sql.to_string() }).collect(),
        tables: Vec::new(),
        watchlist: None,
        exchange_keys: crate::engine::demo_exchange_keys(),
        standard_views,
        video_lanes: true,
    };
    println!(
        "Borderflow demo: {} crossings, both sides, {days} simulated day(s) from {date}, seed {seed}",
        crossings::CROSSINGS.len()
    );
    let spinner = Spinner::new();
    let report = run_job(&spec, &spinner).map_err(|e| e.to_string());
    spinner.0.finish_and_clear();
    print_report(&report?);
    Ok(())
}

/// The three standard views: counts, top rows, and their scores against
/// the ground truth.
fn print_standard_views(report: &JobReport) {
    use crate::connectors::scenario::scoring::column_values;
    let top = |name: &str, sort: &[(&str, bool)], columns: &[&str], n: usize| -> String {
        let Some(batch) = report.standard.get(name) else { return String::new() };
        let options = arrow::compute::SortOptions::default();
        let sort_columns: Vec<arrow::compute::SortColumn> = sort
            .iter()
            .filter_map(|(c, descending)| {
                batch.column_by_name(c).map(|values| arrow::compute::SortColumn {
                    values: values.clone(),
                    options: Some(arrow::compute::SortOptions { descending: *descending, ..options }),
                })
            })
            .collect();
        let rows = arrow::compute::lexsort_to_indices(&sort_columns, Some(n)).ok();
        let picked = rows.and_then(|rows| {
            let batch = batch.project(&columns.iter().filter_map(|c| batch.schema().index_of(c).ok()).collect::<Vec<_>>()).ok()?;
            arrow::compute::take_record_batch(&batch, &rows).ok()
        });
        picked.and_then(|b| arrow::util::pretty::pretty_format_batches(&[b]).ok()).map_or(String::new(), |t| t.to_string())
    };
    let rows = |name: &str| report.standard.get(name).map_or(0, |b| b.num_rows());
    println!();
    println!("cross_border_matches: {} matches", rows("cross_border_matches"));
    if let Some(score) = &report.match_score {
        println!("  against the ground truth: {score}");
    }
    println!("{}", top("cross_border_matches", &[("entry_at", true)], &["crossing", "exit_post_id", "entry_post_id", "plate_norm", "exit_at", "entry_at", "transit_s", "match"], 5));
    println!("dwell_times: {} passages through a post; dwell_percentiles: {} post-hours; transit_percentiles: {} post-hours", rows("dwell_times"), rows("dwell_percentiles"), rows("transit_percentiles"));
    println!("{}", top("dwell_percentiles", &[("passages", true)], &["post_id", "direction", "hour", "passages", "p50_s", "p90_s", "p99_s"], 5));
    if let Some(flags) = report.standard.get("risk_flags") {
        let mut per_rule: BTreeMap<String, usize> = BTreeMap::new();
        for rule in column_values(flags, "rule") {
            *per_rule.entry(rule).or_default() += 1;
        }
        println!(
            "risk_flags: {} flags ({})",
            flags.num_rows(),
            per_rule.iter().map(|(r, n)| format!("{r} {n}")).collect::<Vec<_>>().join(", ")
        );
        for score in &report.flag_scores {
            println!("  {score}");
        }
        println!("{}", top("risk_flags", &[("severity", true), ("flagged_at", true)], &["rule", "plate_norm", "post_id", "flagged_at", "severity", "detail"], 8));
    }
}

pub(crate) fn print_report(report: &JobReport) {
    use crate::engine::{Direction, Point};
    println!();
    println!("Passages per post (standing view passages_per_post, {} workers):", report.workers);
    println!("  {:<20} {:>7} {:>9} {:>7} {:>9}", "post", "entry", "", "exit", "");
    println!("  {:<20} {:>7} {:>9} {:>7} {:>9}", "", "arrival", "departure", "arrival", "departure");
    let mut posts: Vec<&str> = report.counts.keys().map(|k| k.post_id.as_str()).collect();
    posts.dedup();
    for post in posts {
        let count = |direction, point| {
            report
                .counts
                .iter()
                .find(|(k, _)| k.post_id == post && k.direction == direction && k.point == point)
                .map_or(0, |(_, n)| *n)
        };
        println!(
            "  {:<20} {:>7} {:>9} {:>7} {:>9}",
            post,
            count(Direction::Entry, Point::Arrival),
            count(Direction::Entry, Point::Departure),
            count(Direction::Exit, Point::Arrival),
            count(Direction::Exit, Point::Departure),
        );
    }
    println!();
    println!("{} reads of {} simulated passages; {} view changes.", report.reads, report.passages, report.view_changes);
    println!(
        "Anomalies in the ground truth (planted, and produced by chance): {}",
        report.anomalies.iter().map(|(k, n)| format!("{k} {n}")).collect::<Vec<_>>().join(", ")
    );
    if let Some(video) = &report.video_lanes {
        println!("Video: {}.", video.summary());
    }
    println!(
        "SQL views: {}.",
        report.sql_views.iter().map(|(name, rows, changes)| format!("{name} {rows} rows ({changes} changes)")).collect::<Vec<_>>().join(", ")
    );
    println!("Checked: DataFusion over the written Parquet gives the same counts as the standing view,");
    println!("         and DataFusion's batch answer equals every SQL view's incremental result.");
    let bytes: usize = report.files.iter().map(|f| f.bytes).sum();
    println!();
    println!("Wrote {} Parquet files ({:.1} MB) under {}", report.files.len(), bytes as f64 / 1e6, report.storage_url);
    println!("  reads/<post>/<date>/*.parquet, views/<view>/{{changes,snapshot}}, ground_truth/*.parquet");
    let timings: Vec<String> =
        report.timings.iter().map(|(stage, d)| format!("{stage} {:.2}s", d.as_secs_f64())).collect();
    println!("Timings: {}", timings.join(", "));
    if !report.standard.is_empty() {
        print_standard_views(report);
        let names: Vec<&str> = report.standard.keys().map(String::as_str).collect();
        println!(
            "The standard views are written to {}/views/{{{}}}/{{snapshot,changes/part-0}}.parquet",
            report.storage_url.trim_end_matches('/'),
            names.join(",")
        );
    }
}
