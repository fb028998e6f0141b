//! The Borderflow engine for Python: the `borderflow` module, so a backend
//! or an analyst's notebook runs a post's engine in-process, the way
//! `examples/embed.rs` does in Rust. Entry point: `borderflow.Engine.open`.
//!
//! Data enters as pyarrow tables or record batches (reads in the plate read
//! schema, `borderflow.reads_schema()`; watchlist entries in
//! `borderflow.watchlist_schema()`), and leaves as pyarrow objects: a
//! `pyarrow.Table` for `sql`, `snapshot` and `table`, `pyarrow.RecordBatch`
//! changes from a subscription. Both ways go through the Arrow C data and
//! C stream interfaces (arrow-rs's `arrow-pyarrow`, the PyCapsule protocol
//! `__arrow_c_stream__` / `__arrow_c_array__`): columns are handed over, not
//! copied, and any library that speaks the protocol (polars, DuckDB
//! relations, nanoarrow) can push reads too.
//!
//! ```python
//! import borderflow
//!
//! with borderflow.Engine.open("examples/otaci-md.toml", storage="/tmp/otaci") as engine:
//!     flags = engine.subscribe("risk_flags")
//!     engine.push_reads(reads)            # a pyarrow.Table in reads_schema()
//!     for change in flags:                # the changes committed so far
//!         print(change.to_pylist())
//!     print(engine.sql("SELECT count(*) FROM reads"))
//! ```
//!
//! The engine's calls (opening and recovery, pushes, SQL, shutdown) release
//! the GIL while the engine works, so other Python threads go on.
//! Engine errors become `borderflow.Error` and its subclasses, with the
//! engine's message (a config error names its file, line and field).

use std::path::PathBuf;
use std::sync::mpsc::{Receiver, RecvTimeoutError, TryRecvError};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use arrow::array::RecordBatch;
use arrow::compute::concat_batches;
use arrow::ffi_stream::ArrowArrayStreamReader;
use arrow_pyarrow::{FromPyArrow, PyArrowType, Table};
use borderflow_engine::{Engine, EngineError, EngineOptions, PostConfig, Runtime, plate_read_schema, watchlist_schema};
use pyo3::exceptions::{PyException, PyTypeError};
use pyo3::prelude::*;
use pyo3::types::PyDict;

pyo3::create_exception!(borderflow, Error, PyException, "An error of the Borderflow engine.");
pyo3::create_exception!(borderflow, ConfigError, Error, "A post configuration the engine refuses (file:line:column: field: message).");
pyo3::create_exception!(borderflow, InputError, Error, "Input the engine refuses: a batch not in the schema (the column is named), a commit time not after the last.");
pyo3::create_exception!(borderflow, QueryError, Error, "SQL the engine refuses or cannot answer.");

fn engine_error(error: EngineError) -> PyErr {
    match error {
        EngineError::Input(message) => InputError::new_err(message),
        EngineError::Query(error) => QueryError::new_err(error.to_string()),
        other => Error::new_err(other.to_string()),
    }
}

/// One post's engine (`borderflow.Engine`): open it with `Engine.open`.
///
/// The engine sits behind a mutex so the object can be shared between
/// Python threads (pyo3 asks classes to be `Sync`); calls on one engine
/// take turns, as they do in Rust (`&mut Engine`).
#[pyclass(module = "borderflow", name = "Engine")]
struct PyEngine {
    /// `None` once shut down.
    engine: Mutex<Option<Engine>>,
}

impl PyEngine {
    fn lock(&self) -> PyResult<MutexGuard<'_, Option<Engine>>> {
        // A panic inside the engine poisons the mutex; the engine is then in
        // an unknown state and is not used again.
        self.engine.lock().map_err(|_| Error::new_err("the engine panicked in an earlier call; open it again"))
    }

    /// Runs `f` on the open engine with the GIL released.
    fn run<T: Send>(&self, py: Python<'_>, f: impl FnOnce(&mut Engine) -> Result<T, EngineError> + Send) -> PyResult<Result<T, EngineError>> {
        let mut guard = self.lock()?;
        let engine = guard.as_mut().ok_or_else(|| Error::new_err("the engine is shut down"))?;
        Ok(py.detach(|| f(engine)))
    }

    fn with_engine<T: Send>(&self, py: Python<'_>, f: impl FnOnce(&mut Engine) -> Result<T, EngineError> + Send) -> PyResult<T> {
        self.run(py, f)?.map_err(engine_error)
    }
}

#[pymethods]
impl PyEngine {
    /// Opens a post's engine from its configuration file and recovers what
    /// its write-ahead log holds. `storage` (a folder, or a URL such as
    /// `file:///…` or `s3://bucket/prefix`) replaces the config's
    /// `[storage] url`. `standard_views` also maintains the standard views
    /// (`cross_border_matches`, `dwell_times`, `risk_flags`, …); `workers`
    /// is the number of timely worker threads.
    #[staticmethod]
    #[pyo3(signature = (config, storage=None, standard_views=true, workers=1))]
    fn open(py: Python<'_>, config: PathBuf, storage: Option<String>, standard_views: bool, workers: usize) -> PyResult<Self> {
        let mut post = PostConfig::from_file(&config).map_err(|e| ConfigError::new_err(e.to_string()))?;
        if let Some(storage) = storage {
            post.storage.url = storage_url(&storage)?;
        }
        let options = EngineOptions { runtime: Runtime::with_workers(workers.max(1)), standard_views, ..EngineOptions::default() };
        let engine = py.detach(|| Engine::open(post, options)).map_err(engine_error)?;
        Ok(PyEngine { engine: Mutex::new(Some(engine)) })
    }

    /// Pushes reads (a pyarrow Table or RecordBatch in `reads_schema()`) as
    /// one commit, at `at_ms` (engine time, after the last commit) or at the
    /// wall clock. Returns how many reads were new: reads already pushed
    /// (by `read_id`) and reads older than the post's retention are dropped.
    #[pyo3(signature = (reads, at_ms=None))]
    fn push_reads(&self, py: Python<'_>, reads: &Bound<'_, PyAny>, at_ms: Option<u64>) -> PyResult<usize> {
        let batch = batch_from_python(reads)?;
        self.with_engine(py, |engine| match at_ms {
            Some(at_ms) => engine.push_reads_at(&batch, at_ms),
            None => engine.push_reads(&batch),
        })
    }

    /// Upserts watchlist entries (a pyarrow Table or RecordBatch in
    /// `watchlist_schema()`: plate, reason, severity, valid_from, valid_to)
    /// as one commit, at `at_ms` or at the wall clock.
    #[pyo3(signature = (entries, at_ms=None))]
    fn upsert_watchlist(&self, py: Python<'_>, entries: &Bound<'_, PyAny>, at_ms: Option<u64>) -> PyResult<()> {
        let batch = batch_from_python(entries)?;
        self.with_engine(py, |engine| match at_ms {
            Some(at_ms) => engine.upsert_watchlist_at(&batch, at_ms),
            None => engine.upsert_watchlist(&batch),
        })
    }

    /// The post's views, in creation order.
    fn view_names(&self, py: Python<'_>) -> PyResult<Vec<String>> {
        self.with_engine(py, |engine| Ok(engine.view_names()))
    }

    /// The post's tables: the engine's own (`reads`, `watchlist`, …) and the config's.
    fn table_names(&self, py: Python<'_>) -> PyResult<Vec<String>> {
        self.with_engine(py, |engine| Ok(engine.table_names()))
    }

    /// The time of the last commit (engine time, ms).
    #[getter]
    fn last_commit_ms(&self, py: Python<'_>) -> PyResult<u64> {
        self.with_engine(py, |engine| Ok(engine.log_time_ms()))
    }

    /// What recovery found when the engine opened: segments, records and
    /// reads replayed, and the seconds it took.
    fn recovery<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let report = self.with_engine(py, |engine| Ok(engine.recovery().clone()))?;
        let dict = PyDict::new(py);
        dict.set_item("segments", report.segments)?;
        dict.set_item("records", report.records)?;
        dict.set_item("reads", report.reads)?;
        dict.set_item("seconds", report.duration.as_secs_f64())?;
        Ok(dict)
    }

    /// A subscription to a view's changes: every later commit's changes
    /// (the view's columns, `_diff` +1/−1 and `_time`) as pyarrow
    /// RecordBatches. See `Subscription`.
    fn subscribe(&self, py: Python<'_>, view: &str) -> PyResult<Subscription> {
        let receiver = self.with_engine(py, |engine| engine.subscribe(view))?;
        Ok(Subscription { view: view.to_string(), receiver: Mutex::new(receiver) })
    }

    /// Ad-hoc SQL over the tables and the views' snapshots (`now()` is the
    /// last commit's time), as a pyarrow Table. Read-only: DDL and DML are
    /// refused.
    fn sql(&self, py: Python<'_>, query: &str) -> PyResult<PyArrowType<Table>> {
        // Whatever goes wrong inside an ad-hoc query (planning, a refusal,
        // execution) is the query's fault: a QueryError.
        let batch = self.run(py, |engine| engine.sql(query))?.map_err(|error| match error {
            EngineError::View(error) => QueryError::new_err(error.to_string()),
            other => engine_error(other),
        })?;
        table_to_python(batch)
    }

    /// A view's current contents, as a pyarrow Table.
    fn snapshot(&self, py: Python<'_>, view: &str) -> PyResult<PyArrowType<Table>> {
        let batch = self.with_engine(py, |engine| engine.snapshot(view))?;
        table_to_python(batch)
    }

    /// A table's current contents (`reads`, `watchlist`, `posts`, …), as a pyarrow Table.
    fn table(&self, py: Python<'_>, name: &str) -> PyResult<PyArrowType<Table>> {
        let batch = self.with_engine(py, |engine| engine.table(name))?;
        table_to_python(batch)
    }

    /// Flushes the views' changelogs and the reads' history to the post's
    /// storage, writes each view's snapshot, and closes the log. The engine
    /// takes no more calls; shutting down twice does nothing.
    fn shutdown(&self, py: Python<'_>) -> PyResult<()> {
        let engine = self.lock()?.take();
        match engine {
            Some(engine) => py.detach(|| engine.shutdown()).map_err(engine_error),
            None => Ok(()),
        }
    }

    /// Whether `shutdown` has run.
    #[getter]
    fn closed(&self) -> PyResult<bool> {
        Ok(self.lock()?.is_none())
    }

    fn __enter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    /// Shuts the engine down when the `with` block ends, however it ends.
    #[pyo3(signature = (_kind=None, _value=None, _traceback=None))]
    fn __exit__(&self, py: Python<'_>, _kind: Option<Py<PyAny>>, _value: Option<Py<PyAny>>, _traceback: Option<Py<PyAny>>) -> PyResult<bool> {
        self.shutdown(py)?;
        Ok(false)
    }

    fn __repr__(&self) -> PyResult<String> {
        Ok(match self.lock()?.as_ref() {
            Some(engine) => format!("<borderflow.Engine post={:?}>", engine.config().post.id),
            None => "<borderflow.Engine (shut down)>".to_string(),
        })
    }
}

/// A view's changes since `Engine.subscribe` (`borderflow.Subscription`).
///
/// Commits happen inside the engine's calls (`push_reads`, …), so once a
/// call returns its changes are here. Iterating yields the changes waiting
/// now and stops when there are none: it never blocks; iterate again after
/// the next commit. `poll()` returns them as a list; `wait(timeout_s)`
/// waits at most that long for one (for a push from another thread).
/// After `shutdown` the subscription yields what was left, then nothing.
#[pyclass(module = "borderflow", name = "Subscription")]
struct Subscription {
    view: String,
    receiver: Mutex<Receiver<RecordBatch>>,
}

impl Subscription {
    fn receiver(&self) -> PyResult<MutexGuard<'_, Receiver<RecordBatch>>> {
        self.receiver.lock().map_err(|_| Error::new_err("the subscription panicked in an earlier call"))
    }
}

#[pymethods]
impl Subscription {
    /// The view subscribed to.
    #[getter]
    fn view(&self) -> &str {
        &self.view
    }

    /// Every change waiting now, as a list of pyarrow RecordBatches (empty
    /// when there is none).
    fn poll(&self) -> PyResult<Vec<PyArrowType<RecordBatch>>> {
        Ok(self.receiver()?.try_iter().map(PyArrowType).collect())
    }

    /// The next change, waiting at most `timeout_s` seconds for one; `None`
    /// when none came (or the engine shut down).
    fn wait(&self, py: Python<'_>, timeout_s: f64) -> PyResult<Option<PyArrowType<RecordBatch>>> {
        let timeout = Duration::try_from_secs_f64(timeout_s.max(0.0)).map_err(|e| PyTypeError::new_err(format!("timeout_s: {e}")))?;
        let mut guard = self.receiver()?;
        // A receiver is not `Sync`: the released thread takes it by `&mut`.
        let receiver: &mut Receiver<RecordBatch> = &mut guard;
        match py.detach(move || receiver.recv_timeout(timeout)) {
            Ok(batch) => Ok(Some(PyArrowType(batch))),
            Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => Ok(None),
        }
    }

    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__(&self) -> PyResult<Option<PyArrowType<RecordBatch>>> {
        match self.receiver()?.try_recv() {
            Ok(batch) => Ok(Some(PyArrowType(batch))),
            Err(TryRecvError::Empty | TryRecvError::Disconnected) => Ok(None),
        }
    }

    fn __repr__(&self) -> String {
        format!("<borderflow.Subscription view={:?}>", self.view)
    }
}

/// The schema of pushed reads (the plate read contract), as a pyarrow Schema.
#[pyfunction]
fn reads_schema() -> PyArrowType<arrow::datatypes::Schema> {
    PyArrowType(plate_read_schema().as_ref().clone())
}

/// The schema of watchlist entries, as a pyarrow Schema.
#[pyfunction(name = "watchlist_schema")]
fn watchlist_schema_py() -> PyArrowType<arrow::datatypes::Schema> {
    PyArrowType(watchlist_schema().as_ref().clone())
}

/// One batch from a Python object: a stream (pyarrow Table or
/// RecordBatchReader, anything with `__arrow_c_stream__`) becomes one
/// batch, so a push is one commit; else a record batch (`__arrow_c_array__`).
fn batch_from_python(value: &Bound<'_, PyAny>) -> PyResult<RecordBatch> {
    if value.hasattr("__arrow_c_stream__")? {
        let stream = ArrowArrayStreamReader::from_pyarrow_bound(value)?;
        let schema = arrow::array::RecordBatchReader::schema(&stream);
        let batches = stream.collect::<Result<Vec<_>, _>>().map_err(|e| InputError::new_err(e.to_string()))?;
        return concat_batches(&schema, &batches).map_err(|e| InputError::new_err(e.to_string()));
    }
    if value.hasattr("__arrow_c_array__")? || value.hasattr("_export_to_c")? {
        return RecordBatch::from_pyarrow_bound(value);
    }
    Err(PyTypeError::new_err(format!(
        "expected a pyarrow Table or RecordBatch (or an object with __arrow_c_stream__), got {}",
        value.get_type().name()?
    )))
}

fn table_to_python(batch: RecordBatch) -> PyResult<PyArrowType<Table>> {
    let schema = batch.schema();
    Table::try_new(vec![batch], schema).map(PyArrowType).map_err(|e| Error::new_err(e.to_string()))
}

/// A storage URL from what a Python caller passes: a URL as it is, a
/// folder as the `file://` URL of its absolute path.
fn storage_url(storage: &str) -> PyResult<String> {
    if storage.contains("://") {
        return Ok(storage.to_string());
    }
    let folder = std::path::absolute(storage).map_err(|e| ConfigError::new_err(format!("storage `{storage}`: {e}")))?;
    url::Url::from_directory_path(&folder)
        .map(|url| url.to_string())
        .map_err(|()| ConfigError::new_err(format!("storage `{storage}`: not a folder path")))
}

#[pymodule]
#[pyo3(name = "borderflow")]
fn borderflow_module(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyEngine>()?;
    m.add_class::<Subscription>()?;
    m.add_function(wrap_pyfunction!(reads_schema, m)?)?;
    m.add_function(wrap_pyfunction!(watchlist_schema_py, m)?)?;
    let py = m.py();
    m.add("Error", py.get_type::<Error>())?;
    m.add("ConfigError", py.get_type::<ConfigError>())?;
    m.add("InputError", py.get_type::<InputError>())?;
    m.add("QueryError", py.get_type::<QueryError>())?;
    Ok(())
}
