//! The ONNX Runtime library that `scripts/setup` installed loads and runs a
//! real graph, without the user setting anything.

use borderflow_models::{init_onnx_runtime, onnx_runtime_path};

#[test]
fn setup_installed_onnx_runtime_is_found_and_loads() {
    let path = onnx_runtime_path().expect("make setup installs ONNX Runtime");
    assert!(path.ends_with("libonnxruntime.so.1.31.1"), "unexpected library {}", path.display());
    let loaded = init_onnx_runtime().expect("ONNX Runtime loads");
    assert_eq!(loaded, path);
    // A second call reuses the loaded library.
    assert_eq!(init_onnx_runtime().expect("still loaded"), path);
}
