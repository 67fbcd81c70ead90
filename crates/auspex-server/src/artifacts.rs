//! The MLflow artifact proxy, `/api/2.0/mlflow-artifacts/artifacts/...`, over `object_store`
//! (local files under `<data-dir>/artifacts` by default). Uploads and downloads are streamed:
//! memory per transfer is one chunk, whatever the file size.
//!
//! Paths are checked before any IO: no `..`, no absolute paths, no backslashes, no empty
//! segments; and on the local store no path component may be a symlink (so a link planted
//! in the tree cannot lead outside it).

use std::path::PathBuf;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use object_store::path::Path as ObjPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload, WriteMultipart};
use serde_json::json;

use crate::http::App;
use crate::mlflow::{ApiError, MlflowStore};

/// Where artifacts live.
#[derive(Debug, Clone)]
pub struct Artifacts {
    store: Arc<dyn ObjectStore>,
    /// The local root, for the symlink check (None for remote stores).
    local_root: Option<PathBuf>,
    /// Largest upload.
    pub max_bytes: u64,
    /// Uploads streamed at once (`mlflow.max_inflight_uploads`); the next waits, its body
    /// unread, so uploads hold at most that many × [`HELD_BYTES`].
    uploads: Arc<Slots>,
}

/// Upload slots, and the uploads waiting for one.
#[derive(Debug)]
struct Slots {
    free: tokio::sync::Semaphore,
    size: usize,
    waiting: std::sync::atomic::AtomicUsize,
}

impl Slots {
    /// Waits for a slot, counted as waiting meanwhile (also if the client goes away).
    async fn take(&self) -> Result<tokio::sync::SemaphorePermit<'_>, ApiError> {
        struct Waiting<'a>(&'a std::sync::atomic::AtomicUsize);
        impl Drop for Waiting<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
            }
        }
        self.waiting.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let _waiting = Waiting(&self.waiting);
        // Never closed, so never an error.
        self.free.acquire().await.map_err(|e| ApiError::invalid(e.to_string()))
    }
}

fn slots(n: usize) -> Arc<Slots> {
    let size = n.clamp(1, tokio::sync::Semaphore::MAX_PERMITS);
    Arc::new(Slots { free: tokio::sync::Semaphore::new(size), size, waiting: Default::default() })
}

impl Artifacts {
    /// Local files under `root`.
    pub fn local(root: PathBuf, max_bytes: u64) -> std::io::Result<Self> {
        std::fs::create_dir_all(&root)?;
        let root = root.canonicalize()?;
        let fs = object_store::local::LocalFileSystem::new_with_prefix(&root)
            .map_err(std::io::Error::other)?;
        Ok(Self { store: Arc::new(fs), local_root: Some(root), max_bytes, uploads: slots(8) })
    }

    /// Any S3-compatible store at `url` (`s3://bucket/prefix`), configured from the standard
    /// `AWS_*` environment variables.
    pub fn s3(url: &str, max_bytes: u64) -> Result<Self, String> {
        let rest = url.strip_prefix("s3://").ok_or_else(|| format!("{url}: not an s3:// URL"))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(format!("{url}: no bucket"));
        }
        let s3 = object_store::aws::AmazonS3Builder::from_env()
            .with_bucket_name(bucket)
            .build()
            .map_err(|e| format!("{url}: {e}"))?;
        let prefix = prefix.trim_matches('/');
        let store: Arc<dyn ObjectStore> = if prefix.is_empty() {
            Arc::new(s3)
        } else {
            let p = ObjPath::parse(prefix).map_err(|e| format!("{url}: {e}"))?;
            Arc::new(object_store::prefix::PrefixStore::new(s3, p))
        };
        Ok(Self { store, local_root: None, max_bytes, uploads: slots(8) })
    }

    /// Appends the upload gauges to `/metrics` text.
    pub fn render_metrics(&self, out: &mut String) {
        use std::sync::atomic::Ordering::Relaxed;
        let u = &self.uploads;
        let streaming = u.size - u.free.available_permits();
        out.push_str(&format!(
            "# HELP auspex_artifact_uploads Artifact uploads streaming, and waiting for a slot \
             (mlflow.max_inflight_uploads).\n# TYPE auspex_artifact_uploads gauge\n\
             auspex_artifact_uploads{{state=\"streaming\"}} {streaming}\n\
             auspex_artifact_uploads{{state=\"waiting\"}} {}\n",
            u.waiting.load(Relaxed)
        ));
    }

    /// At most `n` uploads streamed at once (8 by default).
    pub fn with_max_uploads(mut self, n: usize) -> Self {
        self.uploads = slots(n);
        self
    }

    /// Validates a relative artifact path and returns its object-store path.
    pub fn path(&self, raw: &str) -> Result<ObjPath, ApiError> {
        let p = raw.trim_end_matches('/');
        if p.starts_with('/') || p.contains('\\') || p.contains('\0') {
            return Err(ApiError::invalid(format!("Invalid path {raw:?}: must be relative")));
        }
        if p.split('/').any(|s| s == ".." || s == ".") {
            return Err(ApiError::invalid(format!("Invalid path {raw:?}: '..' is not allowed")));
        }
        if !p.is_empty() && p.split('/').any(str::is_empty) {
            return Err(ApiError::invalid(format!("Invalid path {raw:?}: empty segment")));
        }
        if let Some(root) = &self.local_root {
            let mut cur = root.clone();
            for seg in p.split('/').filter(|s| !s.is_empty()) {
                cur.push(seg);
                match std::fs::symlink_metadata(&cur) {
                    Ok(m) if m.file_type().is_symlink() => {
                        return Err(ApiError::forbidden(format!(
                            "Invalid path {raw:?}: it goes through a symbolic link"
                        )));
                    }
                    Ok(_) => {}
                    Err(_) => break,
                }
            }
        }
        ObjPath::parse(p).map_err(|e| ApiError::invalid(format!("Invalid path {raw:?}: {e}")))
    }
}

/// An object-store failure as an MLflow error (404 for a missing object).
fn store_err(e: object_store::Error) -> ApiError {
    match e {
        object_store::Error::NotFound { path, .. } => {
            ApiError::not_found(format!("Artifact {path:?} does not exist"))
        }
        e => ApiError::invalid(format!("artifact store: {e}")),
    }
}

fn artifacts<S>(app: &App<S>) -> Result<&Artifacts, ApiError> {
    app.artifacts.as_ref().ok_or_else(|| ApiError::not_found("artifact serving is not enabled"))
}

/// Size of an upload's parts.
const PART_BYTES: usize = 8 << 20;
/// Parts of one upload being written at once; the next waits.
const PARTS_IN_FLIGHT: usize = 2;
/// The most an upload holds in memory: the parts in flight and the one being filled.
pub const HELD_BYTES: usize = (PARTS_IN_FLIGHT + 1) * PART_BYTES;

/// `PUT .../artifacts/{*path}`: streams the body to the store (413 over the limit).
pub async fn put<S: MlflowStore>(
    State(app): State<Arc<App<S>>>,
    Path(path): Path<String>,
    body: Body,
) -> Response {
    match put_inner(&app, &path, body).await {
        Ok(()) => axum::Json(json!({})).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn put_inner<S>(app: &App<S>, raw: &str, body: Body) -> Result<(), ApiError> {
    let a = artifacts(app)?;
    let path = a.path(raw)?;
    if path.as_ref().is_empty() {
        return Err(ApiError::invalid("an upload needs a file path"));
    }
    let _slot = a.uploads.take().await?;
    let upload = a.store.put_multipart(&path).await.map_err(store_err)?;
    let mut w = WriteMultipart::new_with_chunk_size(upload, PART_BYTES);
    let mut stream = body.into_data_stream();
    let mut total: u64 = 0;
    while let Some(chunk) = stream.next().await {
        let chunk = match chunk {
            Ok(c) => c,
            Err(e) => {
                let _ = w.abort().await;
                return Err(ApiError::invalid(format!("reading the upload: {e}")));
            }
        };
        total += chunk.len() as u64;
        if total > a.max_bytes {
            let _ = w.abort().await;
            return Err(ApiError::too_large(format!(
                "artifact larger than the limit of {} bytes (mlflow.max_artifact_bytes)",
                a.max_bytes
            )));
        }
        // Bounded buffering: wait when too many parts are in flight.
        w.wait_for_capacity(PARTS_IN_FLIGHT).await.map_err(store_err)?;
        w.write(&chunk);
    }
    if total == 0 {
        // An empty file: multipart needs at least one part on some stores.
        let _ = w.abort().await;
        a.store.put(&path, PutPayload::new()).await.map_err(store_err)?;
        return Ok(());
    }
    w.finish().await.map_err(store_err)?;
    Ok(())
}

/// `GET .../artifacts/{*path}`: streams the file.
pub async fn get<S: MlflowStore>(
    State(app): State<Arc<App<S>>>,
    Path(path): Path<String>,
) -> Response {
    let res = async {
        let a = artifacts(&app)?;
        let p = a.path(&path)?;
        if let Some(root) = &a.local_root {
            return local_file(root.join(p.as_ref()), &path).await;
        }
        let r = a.store.get(&p).await.map_err(store_err)?;
        let len = r.meta.size;
        let body = Body::from_stream(r.into_stream());
        Ok::<_, ApiError>(
            (
                StatusCode::OK,
                [
                    (header::CONTENT_TYPE, "application/octet-stream".to_string()),
                    (header::CONTENT_LENGTH, len.to_string()),
                ],
                body,
            )
                .into_response(),
        )
    }
    .await;
    res.unwrap_or_else(IntoResponse::into_response)
}

/// Streams a local file in 1 MiB reads (object_store's local reader uses small chunks).
async fn local_file(file: PathBuf, shown: &str) -> Result<Response, ApiError> {
    use tokio::io::AsyncReadExt;
    let f = match tokio::fs::File::open(&file).await {
        Ok(f) => f,
        Err(_) => return Err(ApiError::not_found(format!("Artifact {shown:?} does not exist"))),
    };
    let meta = f.metadata().await.map_err(|e| ApiError::invalid(e.to_string()))?;
    if meta.is_dir() {
        return Err(ApiError::invalid(format!("{shown:?} is a folder; list it instead")));
    }
    let stream = futures_util::stream::unfold(f, |mut f| async move {
        let mut buf = vec![0u8; 1 << 20];
        match f.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok::<_, std::io::Error>(axum::body::Bytes::from(buf)), f))
            }
            Err(e) => Some((Err(e), f)),
        }
    });
    Ok((
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_string()),
            (header::CONTENT_LENGTH, meta.len().to_string()),
        ],
        Body::from_stream(stream),
    )
        .into_response())
}

/// `DELETE .../artifacts/{*path}`: a file, or everything under a folder.
pub async fn delete<S: MlflowStore>(
    State(app): State<Arc<App<S>>>,
    Path(path): Path<String>,
) -> Response {
    let res = async {
        let a = artifacts(&app)?;
        let p = a.path(&path)?;
        let mut listed = a.store.list(Some(&p));
        let mut n = 0;
        while let Some(m) = listed.next().await {
            a.store.delete(&m.map_err(store_err)?.location).await.map_err(store_err)?;
            n += 1;
        }
        if n == 0 {
            match a.store.delete(&p).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(store_err(e)),
            }
        }
        Ok::<_, ApiError>(axum::Json(json!({})).into_response())
    }
    .await;
    res.unwrap_or_else(IntoResponse::into_response)
}

/// `GET .../artifacts?path=P`: the entries directly under P, named relative to it.
pub async fn list<S: MlflowStore>(
    State(app): State<Arc<App<S>>>,
    RawQuery(q): RawQuery,
) -> Response {
    let res = async {
        let a = artifacts(&app)?;
        let raw = q
            .as_deref()
            .map(crate::mlflow::form_urlencoded)
            .unwrap_or_default()
            .into_iter()
            .find_map(|(k, v)| (k == "path").then_some(v))
            .unwrap_or_default();
        let p = a.path(&raw)?;
        let prefix = (!p.as_ref().is_empty()).then_some(&p);
        let l = a.store.list_with_delimiter(prefix).await.map_err(store_err)?;
        let mut files: Vec<serde_json::Value> = Vec::new();
        for d in &l.common_prefixes {
            if let Some(name) = d.filename() {
                files.push(json!({"path": name, "is_dir": true}));
            }
        }
        for o in &l.objects {
            if let Some(name) = o.location.filename() {
                files.push(json!({"path": name, "is_dir": false, "file_size": o.size}));
            }
        }
        files.sort_by(|x, y| x["path"].as_str().cmp(&y["path"].as_str()));
        let body = if files.is_empty() { json!({}) } else { json!({ "files": files }) };
        Ok::<_, ApiError>(axum::Json(body).into_response())
    }
    .await;
    res.unwrap_or_else(IntoResponse::into_response)
}
