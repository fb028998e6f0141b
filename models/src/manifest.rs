//! The model manifest (`models/manifest.toml`, compiled in) and where the
//! model files are on disk.
//!
//! `scripts/setup` extracts the files from the pinned registry packages into
//! `.local/models/` of the checkout and checks their sha256; the engine never
//! downloads a model. `BORDERFLOW_MODELS_DIR` overrides where they are looked for.

use std::path::{Path, PathBuf};

use serde::Deserialize;

const MANIFEST: &str = include_str!("../manifest.toml");

/// One model of the manifest.
#[derive(Clone, Debug, Deserialize)]
pub struct ModelEntry {
    /// How the code refers to the model (`text_detector`, `text_recognizer`).
    pub name: String,
    pub file: String,
    pub sha256: String,
    /// The registry package the file comes from (`pypi:rapidocr-onnxruntime`).
    pub package: String,
    pub version: String,
    /// The file's path inside the package.
    pub member: String,
    pub licence: String,
    pub upstream: String,
    pub input: String,
    pub output: String,
    /// A file of the same package holding the recognizer's alphabet, one
    /// class per line, where the model's metadata does not.
    #[serde(default)]
    pub alphabet: Option<String>,
    #[serde(default)]
    pub alphabet_sha256: Option<String>,
    #[serde(default)]
    pub alphabet_member: Option<String>,
}

#[derive(Deserialize)]
struct Manifest {
    model: Vec<ModelEntry>,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum ModelFileError {
    #[error("model {name:?} is not in models/manifest.toml")]
    Unknown { name: String },
    #[error("model file {file} not found (looked in: {searched}); run `make setup` or set BORDERFLOW_MODELS_DIR")]
    NotFound { file: String, searched: String },
}

/// Every model of the manifest.
pub fn manifest() -> Vec<ModelEntry> {
    // The manifest is compiled in and parsed in a test, so a parse error is a
    // build defect, not something a user can cause.
    toml::from_str::<Manifest>(MANIFEST).map(|m| m.model).unwrap_or_default()
}

/// The manifest entry named `name`.
pub fn model_entry(name: &str) -> Result<ModelEntry, ModelFileError> {
    manifest()
        .into_iter()
        .find(|m| m.name == name)
        .ok_or_else(|| ModelFileError::Unknown { name: name.to_string() })
}

/// Where the file of the model named `name` is.
pub fn model_path(name: &str) -> Result<PathBuf, ModelFileError> {
    find_file(&model_entry(name)?.file)
}

/// Where the alphabet file of the model named `name` is (`None`: the model carries its alphabet).
pub fn alphabet_path(name: &str) -> Result<Option<PathBuf>, ModelFileError> {
    model_entry(name)?.alphabet.map(|file| find_file(&file)).transpose()
}

/// `file` in the first of the model directories that has it.
fn find_file(file: &str) -> Result<PathBuf, ModelFileError> {
    let mut dirs = Vec::new();
    if let Some(dir) = std::env::var_os("BORDERFLOW_MODELS_DIR") {
        dirs.push(PathBuf::from(dir));
    }
    dirs.push(Path::new(env!("CARGO_MANIFEST_DIR")).join("../.local/models"));
    if let Some(dir) = std::env::current_exe().ok().and_then(|exe| exe.parent().map(Path::to_path_buf)) {
        dirs.push(dir.join("models"));
    }
    dirs.extend(crate::runtime::local_dirs("models"));
    let candidates: Vec<PathBuf> = dirs.iter().map(|d| d.join(file)).collect();
    candidates.iter().find(|p| p.is_file()).cloned().ok_or_else(|| ModelFileError::NotFound {
        file: file.to_string(),
        searched: dirs.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_parses_and_names_both_ocr_models() {
        let models = toml::from_str::<Manifest>(MANIFEST).expect("manifest.toml parses").model;
        for name in ["text_detector", "text_recognizer", "second_text_recognizer"] {
            let m = models.iter().find(|m| m.name == name).expect("model listed");
            assert_eq!(m.sha256.len(), 64);
            assert_eq!(m.licence, "Apache-2.0");
            // An alphabet file comes with its digest and its place in the package.
            if m.alphabet.is_some() {
                assert_eq!(m.alphabet_sha256.as_ref().map(String::len), Some(64), "{name}");
                assert!(m.alphabet_member.as_ref().is_some_and(|member| member.ends_with(m.alphabet.as_deref().unwrap_or("-"))), "{name}");
            }
        }
    }
}
