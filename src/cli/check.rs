//! `borderflow check --config post.toml`: reads and checks a post's
//! configuration and says what it describes.

use std::path::Path;

use crate::engine::PostConfig;

pub fn command(config_path: &Path) -> Result<(), String> {
    let config = PostConfig::from_file(config_path).map_err(|e| e.to_string())?;
    println!("{}: valid", config_path.display());
    println!("  post     {} ({}, {}), crossing {}", config.post.id, config.post.name, config.post.country, config.post.crossing);
    if let Some(peer) = &config.peer {
        println!("  peer     {}", peer.post);
    }
    println!("  storage  {}", config.storage.url);
    if let Some(recording) = &config.recording {
        let recorded: Vec<&str> = config.cameras.iter().filter(|c| c.source.record).map(|c| c.id.as_str()).collect();
        println!(
            "  video    {} ({} s segments, kept {} d): {} of {} camera(s) recorded{}",
            recording.path.display(),
            recording.segment.as_secs(),
            config.storage.retention.video.as_secs() / 86_400,
            recorded.len(),
            config.cameras.len(),
            if recorded.is_empty() { String::new() } else { format!(" ({})", recorded.join(", ")) }
        );
    }
    println!("  cameras  {}", config.cameras.len());
    for camera in &config.cameras {
        println!("    {:<36} lane {:<2} {:<5} {:<9} {}", camera.id, camera.lane, camera.direction, camera.point, camera.uri);
    }
    println!("  views    {}", config.views.iter().map(|v| v.name.as_str()).collect::<Vec<_>>().join(", "));
    for feed in &config.feeds {
        let format = match feed.format {
            crate::engine::FeedFormat::HikvisionIsapi => "hikvision-isapi",
            crate::engine::FeedFormat::Json(_) => "json",
        };
        println!("  feed     {} ({format}) on {}, {} camera(s)", feed.id, feed.listen, feed.cameras.len());
        for camera in &feed.cameras {
            println!("    {:<36} lane {:<2} {:<5} {:<9} device {}", camera.id, camera.lane, camera.direction, camera.point, camera.device);
        }
    }
    for hook in &config.webhooks {
        println!("  webhook  {}: {} rows to {}", hook.name, hook.view, hook.url);
    }
    if let Some(mqtt) = &config.mqtt {
        println!("  mqtt     {}:{} ({}, {}, {}{})", mqtt.host, mqtt.port, mqtt.reads_topic, mqtt.flags_topic, mqtt.health_topic, mqtt.input_topic.as_deref().map(|t| format!(", in: {t}")).unwrap_or_default());
    }
    Ok(())
}
