//! End-to-end throughput of the first slice: scenario generation and the
//! standing view `passages_per_post`, on 1 and 2 workers. Prints one JSON
//! object. Run with `make bench` (or `cargo bench -p borderflow-benches`).

use std::sync::Arc;
use std::time::Instant;

use borderflow_connectors::scenario::{ScenarioConfig, generate};
use borderflow_engine::Runtime;
use borderflow_engine::passage_counts::replay_passage_counts;

fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

fn main() {
    let runs = 5;
    let config = ScenarioConfig { days: 3, ..ScenarioConfig::default() };

    let mut generate_s = Vec::new();
    let mut reads = Vec::new();
    for _ in 0..runs {
        let start = Instant::now();
        reads = generate(&config).reads;
        generate_s.push(start.elapsed().as_secs_f64());
    }
    let reads = Arc::new(reads);
    let n = reads.len() as f64;

    let mut results = Vec::new();
    for workers in [1, 2] {
        let samples: Vec<f64> = (0..runs)
            .map(|_| {
                let start = Instant::now();
                let changes = replay_passage_counts(&Runtime::with_workers(workers), Arc::clone(&reads), 60_000)
                    .expect("dataflow runs");
                std::hint::black_box(changes);
                start.elapsed().as_secs_f64()
            })
            .collect();
        let secs = median(samples);
        results.push(format!(
            r#"{{"workers": {workers}, "median_s": {secs:.4}, "reads_per_s": {:.0}}}"#,
            n / secs
        ));
    }
    let gen_secs = median(generate_s);
    println!(
        r#"{{"bench": "dataflow", "reads": {}, "days": {}, "runs": {runs}, "generate": {{"median_s": {gen_secs:.4}, "reads_per_s": {:.0}}}, "passages_per_post": [{}]}}"#,
        reads.len(),
        config.days,
        n / gen_secs,
        results.join(", ")
    );
}
