//! Finding and loading the ONNX Runtime shared library.
//!
//! The `ort` crate is built with `load-dynamic`: nothing is linked or fetched
//! at build time. `scripts/setup` puts the library from the pinned PyPI wheel
//! in `.local/onnxruntime/` of the checkout; the engine looks there, beside its
//! executable, in `.local/onnxruntime/` of the current folder and the folders
//! above it, and wherever `ORT_DYLIB_PATH` says (which wins).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The ONNX Runtime release the project pins (scripts/setup).
pub const ONNX_RUNTIME_VERSION: &str = "1.31.1";
const LIBRARY: &str = "libonnxruntime.so.1.31.1";

#[derive(Debug, Clone, thiserror::Error)]
pub enum OnnxRuntimeError {
    #[error("ONNX Runtime library not found (looked in: {searched}); run `make setup` or set ORT_DYLIB_PATH")]
    NotFound { searched: String },
    #[error("loading ONNX Runtime from {path}: {message}")]
    Load { path: String, message: String },
}

/// Where the ONNX Runtime library is: `ORT_DYLIB_PATH` if set, else the first
/// of the project's `.local/onnxruntime/` and the executable's folder that has it.
pub fn onnx_runtime_path() -> Result<PathBuf, OnnxRuntimeError> {
    if let Some(path) = std::env::var_os("ORT_DYLIB_PATH") {
        return Ok(PathBuf::from(path));
    }
    let mut candidates = vec![
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../.local/onnxruntime").join(LIBRARY),
    ];
    if let Some(dir) = std::env::current_exe().ok().and_then(|exe| exe.parent().map(Path::to_path_buf)) {
        candidates.push(dir.join(LIBRARY));
    }
    candidates.extend(local_dirs("onnxruntime").into_iter().map(|d| d.join(LIBRARY)));
    candidates.iter().find(|p| p.is_file()).cloned().ok_or_else(|| OnnxRuntimeError::NotFound {
        searched: candidates.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "),
    })
}

/// `.local/<sub>` in the current directory and in each folder above it: a
/// checkout's set-up files from anywhere inside it (tests run in their
/// crate's folder), whatever path the code was built at (a build reused
/// from another clone bakes in that clone's `CARGO_MANIFEST_DIR`).
pub(crate) fn local_dirs(sub: &str) -> Vec<PathBuf> {
    let Ok(cwd) = std::env::current_dir() else { return vec![PathBuf::from(".local").join(sub)] };
    cwd.ancestors().map(|d| d.join(".local").join(sub)).collect()
}

/// Loads ONNX Runtime once per process and returns the path it came from.
pub fn init_onnx_runtime() -> Result<PathBuf, OnnxRuntimeError> {
    loaded().map(|(path, _)| path.clone())
}

/// The process's ONNX Runtime environment (sessions are built in it), loading
/// the library first if needed.
pub(crate) fn environment() -> Result<ort::environment::Environment, OnnxRuntimeError> {
    loaded().map(|(_, environment)| environment.clone())
}

fn loaded() -> Result<&'static (PathBuf, ort::environment::Environment), OnnxRuntimeError> {
    static LOADED: OnceLock<Result<(PathBuf, ort::environment::Environment), OnnxRuntimeError>> = OnceLock::new();
    LOADED
        .get_or_init(|| {
            let path = onnx_runtime_path()?;
            let load_error = |message: String| OnnxRuntimeError::Load {
                path: path.display().to_string(),
                message,
            };
            // The environment is kept for the life of the process: ort only
            // holds a weak reference to it, and sessions are built in it.
            let environment = ort::init_from(&path)
                .map_err(|e| load_error(e.to_string()))?
                .with_name("borderflow")
                .build()
                .map_err(|e| load_error(e.to_string()))?;
            tracing::info!(path = %path.display(), "ONNX Runtime loaded");
            Ok((path, environment))
        })
        .as_ref()
        .map_err(Clone::clone)
}
