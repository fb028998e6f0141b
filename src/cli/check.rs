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
    println!("  cameras  {}", config.cameras.len());
    for camera in &config.cameras {
        println!("    {:<36} lane {:<2} {:<5} {:<9} {}", camera.id, camera.lane, camera.direction, camera.point, camera.uri);
    }
    println!("  views    {}", config.views.iter().map(|v| v.name.as_str()).collect::<Vec<_>>().join(", "));
    Ok(())
}
