//! The store and log options the write-ahead log's tests open a log with:
//! Otaci's store in `store/` of a test folder, `reads` kept by `captured_at`.

use borderflow_engine::wal::WalOptions;
use borderflow_engine::{PostConfig, Storage};

pub fn storage(dir: &std::path::Path) -> Storage {
    let config = PostConfig::from_toml(
        "[post]\nid = \"otaci\"\nname = \"Otaci\"\ncountry = \"MD\"\ncrossing = \"otaci-mohyliv-podilskyi\"\n[storage]\nurl = \"file://./store\"\n",
        &dir.join("post.toml"),
    )
    .expect("config");
    Storage::open(&config.storage).expect("storage")
}

pub fn options() -> WalOptions {
    let mut options = WalOptions::new("otaci");
    options.event_columns.insert("reads".into(), "captured_at".into());
    options
}
