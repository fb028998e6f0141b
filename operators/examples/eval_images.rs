//! Runs the `eval-images` harness (src/eval_images.rs of the root package)
//! from this crate, until the `borderflow eval-images DIR` command is wired:
//! `cargo run -p borderflow-operators --example eval_images -- DIR [LIMIT] [CSV] [MAX_SIDE]`.

#[path = "../../src/eval_images.rs"]
mod eval_images;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let Some(dir) = args.get(1) else {
        eprintln!("usage: eval_images DIR [LIMIT] [CSV] [MAX_SIDE]");
        std::process::exit(2);
    };
    let mut options = eval_images::EvalOptions { progress: true, ..Default::default() };
    options.limit = args.get(2).and_then(|v| v.parse().ok()).filter(|&n: &usize| n > 0);
    options.csv = args.get(3).map(std::path::PathBuf::from);
    if let Some(side) = args.get(4).and_then(|v| v.parse().ok()) {
        options.reader.detector.max_side = side;
    }
    match eval_images::run(std::path::Path::new(dir), &options) {
        Ok(summary) => println!("{summary}"),
        Err(e) => {
            eprintln!("eval-images: {e}");
            std::process::exit(1);
        }
    }
}
