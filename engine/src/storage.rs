//! The post's object store: where the write-ahead log, view changelogs,
//! snapshots and audit records live.
//!
//! [`Storage::open`] takes the `[storage]` section. `file://` folders are
//! written with the standard library, not through `object_store`, because
//! durability on a local disk means `fsync`, which `object_store`'s local
//! store does not do: a whole object is written to a temporary file, synced,
//! renamed into place and the folder synced; an append (the log's active
//! segment) is written and `fdatasync`ed before it returns. `s3://` goes
//! through `object_store`'s S3 client with the endpoint, region and
//! credentials of `[storage.s3]` (or the environment), and its bounded
//! retries with exponential backoff; an S3 object is written whole, so a
//! reader never sees half of one.
//!
//! Paths are relative to the URL's folder or prefix and use `/`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures::TryStreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::path::Path as StorePath;
use object_store::{BackoffConfig, ClientOptions, ObjectStore, ObjectStoreExt, PutPayload, RetryConfig};

use crate::StorageConfig;

/// A storage operation that failed, and on what.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("storage URL `{url}`: {message}")]
    Url { url: String, message: String },
    #[error("{path}: {message}")]
    Io { path: String, message: String },
}

/// An object in the store.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct StoredObject {
    /// Relative path, e.g. `wal/otaci/2026-11-27/00000000000000000001.bfwal`.
    pub path: String,
    pub bytes: u64,
}

#[derive(Clone, Debug)]
enum Backend {
    Local(PathBuf),
    Remote { store: Arc<dyn ObjectStore>, prefix: StorePath },
}

/// The post's object store (see the module documentation).
#[derive(Clone, Debug)]
pub struct Storage {
    url: String,
    backend: Backend,
}

impl Storage {
    /// Opens `config.url`: `file:///abs/dir` (created if missing) or
    /// `s3://bucket/prefix` (with `config.s3`).
    pub fn open(config: &StorageConfig) -> Result<Storage, StorageError> {
        let url = config.url.clone();
        let bad = |message: String| StorageError::Url { url: url.clone(), message };
        let parsed = url::Url::parse(&url).map_err(|e| bad(e.to_string()))?;
        let backend = match parsed.scheme() {
            "file" => {
                let dir = parsed.to_file_path().map_err(|()| bad("not an absolute local path".into()))?;
                std::fs::create_dir_all(&dir).map_err(|e| bad(format!("cannot create {}: {e}", dir.display())))?;
                Backend::Local(dir)
            }
            "s3" | "s3a" => {
                let bucket = parsed.host_str().filter(|b| !b.is_empty()).ok_or_else(|| bad("names no bucket".into()))?;
                let s3 = &config.s3;
                let mut builder = AmazonS3Builder::from_env().with_bucket_name(bucket);
                if let Some(endpoint) = &s3.endpoint {
                    builder = builder.with_endpoint(endpoint.clone());
                }
                if let Some(region) = &s3.region {
                    builder = builder.with_region(region.clone());
                }
                if let Some(key) = &s3.access_key_id {
                    builder = builder.with_access_key_id(key.clone());
                }
                if let Some(secret) = &s3.secret_access_key {
                    builder = builder.with_secret_access_key(secret.clone());
                }
                if let Some(token) = &s3.session_token {
                    builder = builder.with_token(token.clone());
                }
                let client = ClientOptions::new()
                    .with_timeout(s3.request_timeout)
                    .with_connect_timeout(s3.request_timeout.min(std::time::Duration::from_secs(5)))
                    .with_allow_http(s3.allow_http);
                let retry = RetryConfig {
                    backoff: BackoffConfig {
                        init_backoff: std::time::Duration::from_millis(100),
                        max_backoff: std::time::Duration::from_secs(5),
                        base: 2.0,
                    },
                    max_retries: s3.max_retries,
                    retry_timeout: s3.retry_timeout,
                };
                let store = builder.with_client_options(client).with_retry(retry).build().map_err(|e| bad(e.to_string()))?;
                let prefix = StorePath::from_url_path(parsed.path()).map_err(|e| bad(e.to_string()))?;
                Backend::Remote { store: Arc::new(store), prefix }
            }
            other => return Err(bad(format!("the scheme `{other}` is not supported here; use file:// or s3://"))),
        };
        Ok(Storage { url, backend })
    }

    /// The store's URL, as configured.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The local file behind `path`, for a `file://` store.
    pub fn local_path(&self, path: &str) -> Option<PathBuf> {
        match &self.backend {
            Backend::Local(root) => Some(root.join(path)),
            Backend::Remote { .. } => None,
        }
    }

    /// Where `path` is, for messages: a file path or an `s3://` URL.
    pub fn describe(&self, path: &str) -> String {
        match &self.backend {
            Backend::Local(root) => root.join(path).display().to_string(),
            Backend::Remote { .. } => format!("{}/{path}", self.url.trim_end_matches('/')),
        }
    }

    fn location(prefix: &StorePath, path: &str) -> StorePath {
        path.split('/').filter(|p| !p.is_empty()).fold(prefix.clone(), |l, part| l.join(part))
    }

    fn io_error(&self, path: &str, error: impl std::fmt::Display) -> StorageError {
        StorageError::Io { path: self.describe(path), message: error.to_string() }
    }

    /// Writes `bytes` as the whole object at `path`, durably (see the module doc).
    pub async fn put(&self, path: &str, bytes: Vec<u8>) -> Result<(), StorageError> {
        match &self.backend {
            Backend::Local(root) => put_local(&root.join(path)).and_then(|f| f(&bytes)).map_err(|e| self.io_error(path, e)),
            Backend::Remote { store, prefix } => {
                store.put(&Self::location(prefix, path), PutPayload::from(bytes)).await.map_err(|e| self.io_error(path, e))?;
                Ok(())
            }
        }
    }

    /// The whole object at `path`.
    pub async fn get(&self, path: &str) -> Result<Vec<u8>, StorageError> {
        match &self.backend {
            Backend::Local(root) => std::fs::read(root.join(path)).map_err(|e| self.io_error(path, e)),
            Backend::Remote { store, prefix } => {
                let result = store.get(&Self::location(prefix, path)).await.map_err(|e| self.io_error(path, e))?;
                Ok(result.bytes().await.map_err(|e| self.io_error(path, e))?.to_vec())
            }
        }
    }

    /// The whole object at `path`, or `None` when the store has none there.
    pub async fn get_if_exists(&self, path: &str) -> Result<Option<Vec<u8>>, StorageError> {
        let folder = path.rsplit_once('/').map_or("", |(folder, _)| folder);
        if !self.list(folder).await?.iter().any(|o| o.path == path) {
            return Ok(None);
        }
        self.get(path).await.map(Some)
    }

    /// Every object under the folder `folder` (recursively), sorted by path.
    pub async fn list(&self, folder: &str) -> Result<Vec<StoredObject>, StorageError> {
        let mut objects = Vec::new();
        match &self.backend {
            Backend::Local(root) => list_local(root, &root.join(folder), &mut objects).map_err(|e| self.io_error(folder, e))?,
            Backend::Remote { store, prefix } => {
                let base = Self::location(prefix, folder);
                let listed: Vec<_> = store.list(Some(&base)).try_collect().await.map_err(|e| self.io_error(folder, e))?;
                for meta in listed {
                    let Some(relative) = meta.location.prefix_match(prefix) else { continue };
                    let relative: Vec<String> = relative.map(|p| p.as_ref().to_string()).collect();
                    objects.push(StoredObject { path: relative.join("/"), bytes: meta.size });
                }
            }
        }
        objects.sort();
        Ok(objects)
    }

    /// Deletes the object at `path` (no error if it is already gone).
    pub async fn delete(&self, path: &str) -> Result<(), StorageError> {
        match &self.backend {
            Backend::Local(root) => {
                let file = root.join(path);
                match std::fs::remove_file(&file) {
                    Ok(()) => {
                        // Empty partition folders go with their last file.
                        let mut dir = file.parent();
                        while let Some(d) = dir.filter(|d| *d != root.as_path()) {
                            if std::fs::remove_dir(d).is_err() {
                                break;
                            }
                            dir = d.parent();
                        }
                        Ok(())
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                    Err(e) => Err(self.io_error(path, e)),
                }
            }
            Backend::Remote { store, prefix } => match store.delete(&Self::location(prefix, path)).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                Err(e) => Err(self.io_error(path, e)),
            },
        }
    }
}

/// A writer for a whole local file: temporary file, fsync, rename, folder fsync.
fn put_local(file: &Path) -> std::io::Result<impl FnOnce(&[u8]) -> std::io::Result<()> + '_> {
    let dir = file.parent().ok_or_else(|| std::io::Error::other("no parent folder"))?;
    std::fs::create_dir_all(dir)?;
    Ok(move |bytes: &[u8]| {
        let name = file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let temporary = dir.join(format!(".{name}.{}.tmp", std::process::id()));
        let mut out = std::fs::File::create(&temporary)?;
        out.write_all(bytes)?;
        out.sync_all()?;
        drop(out);
        std::fs::rename(&temporary, file)?;
        sync_dir(dir)
    })
}

/// Makes a folder's entries (a new or renamed file) durable.
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

fn list_local(root: &Path, dir: &Path, out: &mut Vec<StoredObject>) -> std::io::Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let path = entry.path();
        let kind = entry.file_type()?;
        if kind.is_dir() {
            list_local(root, &path, out)?;
        } else if kind.is_file() && !entry.file_name().to_string_lossy().starts_with('.') {
            let relative = path.strip_prefix(root).map_err(std::io::Error::other)?;
            let relative: Vec<String> = relative.components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect();
            out.push(StoredObject { path: relative.join("/"), bytes: entry.metadata()?.len() });
        }
    }
    Ok(())
}
