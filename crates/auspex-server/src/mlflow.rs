//! The MLflow REST API (tracking, registry, artifact proxy) on the same listen address:
//! `/api/2.0/mlflow/...` and `/ajax-api/2.0/mlflow/...`, `/api/2.0/mlflow-artifacts/...`,
//! `/api/3.0/mlflow/server-info`. Errors use MLflow's body, `{"error_code", "message"}`, and
//! status (RESOURCE_DOES_NOT_EXIST 404; RESOURCE_ALREADY_EXISTS, INVALID_PARAMETER_VALUE 400).

use std::sync::Arc;

use auspex_mlflow::filter::{Field, Filter, OrderBy, sort_runs};
use auspex_mlflow::{DatasetInput, Metric, RunInfo, Tag, canonical_stage, limits};
use auspex_store::tracking::{NewModelVersion, RunKeys, RunUpdate};
use auspex_store::{RegistryStore, StoreError, TrackingStore, ViewType};
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use crate::http::{App, now_ms};

/// An MLflow error response.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    /// INVALID_PARAMETER_VALUE (400).
    pub fn invalid(m: impl Into<String>) -> Self {
        Self { status: StatusCode::BAD_REQUEST, code: "INVALID_PARAMETER_VALUE", message: m.into() }
    }
    /// RESOURCE_DOES_NOT_EXIST (404).
    pub fn not_found(m: impl Into<String>) -> Self {
        Self { status: StatusCode::NOT_FOUND, code: "RESOURCE_DOES_NOT_EXIST", message: m.into() }
    }
    /// PERMISSION_DENIED (403).
    pub fn forbidden(m: impl Into<String>) -> Self {
        Self { status: StatusCode::FORBIDDEN, code: "PERMISSION_DENIED", message: m.into() }
    }
    /// 413.
    pub fn too_large(m: impl Into<String>) -> Self {
        Self {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            code: "RESOURCE_LIMIT_EXCEEDED",
            message: m.into(),
        }
    }
    /// ENDPOINT_NOT_FOUND (404).
    fn no_endpoint(method: &Method, path: &str) -> Self {
        Self {
            status: StatusCode::NOT_FOUND,
            code: "ENDPOINT_NOT_FOUND",
            message: format!("no MLflow endpoint {method} {path}"),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(m) => Self::not_found(m),
            StoreError::AlreadyExists(m) => Self {
                status: StatusCode::BAD_REQUEST,
                code: "RESOURCE_ALREADY_EXISTS",
                message: m,
            },
            StoreError::Invalid(m) => Self::invalid(m),
            e => Self {
                status: StatusCode::INTERNAL_SERVER_ERROR,
                code: "INTERNAL_ERROR",
                message: e.to_string(),
            },
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, axum::Json(json!({"error_code": self.code, "message": self.message})))
            .into_response()
    }
}

/// A refusal in MLflow's error format: 503 `TEMPORARILY_UNAVAILABLE` with `Retry-After: 1`
/// (the server is overloaded), or another status as `BAD_REQUEST`.
pub fn refusal(status: StatusCode, message: &'static str) -> Response {
    let busy = status == StatusCode::SERVICE_UNAVAILABLE;
    let code = if busy { "TEMPORARILY_UNAVAILABLE" } else { "BAD_REQUEST" };
    let mut r = ApiError { status, code, message: message.into() }.into_response();
    if busy {
        let one = axum::http::HeaderValue::from_static("1");
        r.headers_mut().insert(axum::http::header::RETRY_AFTER, one);
    }
    r
}

type Res = Result<Value, ApiError>;

/// A request's parameters: the query string and the JSON body, merged (MLflow clients send
/// GET parameters in the query and POST parameters in the body).
#[derive(Debug)]
pub struct Req {
    v: Map<String, Value>,
    /// HTTP basic-auth user, if any.
    pub user: Option<String>,
}

impl Req {
    fn parse(query: Option<&str>, body: &[u8], headers: &HeaderMap) -> Result<Self, ApiError> {
        let mut v = Map::new();
        if let Some(q) = query {
            for (k, val) in form_urlencoded(q) {
                match v.get_mut(&k) {
                    Some(Value::Array(a)) => a.push(Value::String(val)),
                    Some(old) => {
                        let o = old.take();
                        *old = Value::Array(vec![o, Value::String(val)]);
                    }
                    None => {
                        v.insert(k, Value::String(val));
                    }
                }
            }
        }
        if !body.iter().all(u8::is_ascii_whitespace) {
            match serde_json::from_slice::<Value>(body) {
                Ok(Value::Object(m)) => v.extend(m),
                Ok(_) => return Err(ApiError::invalid("the request body must be a JSON object")),
                Err(e) => return Err(ApiError::invalid(format!("malformed JSON body: {e}"))),
            }
        }
        Ok(Self { v, user: basic_user(headers) })
    }

    fn opt_str(&self, k: &str) -> Option<String> {
        match self.v.get(k)? {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    }

    fn str(&self, k: &str) -> Result<String, ApiError> {
        self.opt_str(k).filter(|s| !s.is_empty()).ok_or_else(|| {
            ApiError::invalid(format!("Missing value for required parameter '{k}'."))
        })
    }

    fn opt_i64(&self, k: &str) -> Result<Option<i64>, ApiError> {
        match self.v.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => n
                .as_i64()
                .or_else(|| n.as_f64().map(|f| f as i64))
                .map(Some)
                .ok_or_else(|| ApiError::invalid(format!("invalid value for '{k}'"))),
            Some(Value::String(s)) => s.parse().map(Some).map_err(|_| {
                ApiError::invalid(format!("invalid value {s:?} for '{k}' (an integer)"))
            }),
            Some(_) => Err(ApiError::invalid(format!("invalid value for '{k}' (an integer)"))),
        }
    }

    fn opt_bool(&self, k: &str) -> bool {
        match self.v.get(k) {
            Some(Value::Bool(b)) => *b,
            Some(Value::String(s)) => s.eq_ignore_ascii_case("true"),
            _ => false,
        }
    }

    fn list<T: serde::de::DeserializeOwned>(&self, k: &str) -> Result<Vec<T>, ApiError> {
        match self.v.get(k) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(v) => serde_json::from_value(v.clone())
                .map_err(|e| ApiError::invalid(format!("invalid value for '{k}': {e}"))),
        }
    }

    fn strings(&self, k: &str) -> Vec<String> {
        match self.v.get(k) {
            Some(Value::Array(a)) => a
                .iter()
                .filter_map(|x| match x {
                    Value::String(s) => Some(s.clone()),
                    Value::Number(n) => Some(n.to_string()),
                    _ => None,
                })
                .collect(),
            Some(Value::String(s)) => vec![s.clone()],
            _ => Vec::new(),
        }
    }

    fn run_id(&self) -> Result<String, ApiError> {
        self.opt_str("run_id")
            .filter(|s| !s.is_empty())
            .or_else(|| self.opt_str("run_uuid").filter(|s| !s.is_empty()))
            .ok_or_else(|| ApiError::invalid("Missing value for required parameter 'run_id'."))
    }

    fn version(&self) -> Result<i64, ApiError> {
        let v = self.str("version")?;
        v.parse()
            .map_err(|_| ApiError::invalid(format!("Model version must be an integer, got {v:?}")))
    }
}

/// Decodes `application/x-www-form-urlencoded` pairs.
pub(crate) fn form_urlencoded(q: &str) -> Vec<(String, String)> {
    fn dec(s: &str) -> String {
        let b = s.as_bytes();
        let mut out = Vec::with_capacity(b.len());
        let mut i = 0;
        while i < b.len() {
            match b[i] {
                b'+' => out.push(b' '),
                b'%' if i + 2 < b.len() => {
                    match u8::from_str_radix(s.get(i + 1..i + 3).unwrap_or("zz"), 16) {
                        Ok(x) => {
                            out.push(x);
                            i += 2;
                        }
                        Err(_) => out.push(b'%'),
                    }
                }
                c => out.push(c),
            }
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    }
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (dec(k), dec(v)),
            None => (dec(p), String::new()),
        })
        .collect()
}

/// The user of an HTTP basic `Authorization` header.
fn basic_user(h: &HeaderMap) -> Option<String> {
    let v = h.get(axum::http::header::AUTHORIZATION)?.to_str().ok()?;
    let b64 = v.strip_prefix("Basic ").or_else(|| v.strip_prefix("basic "))?;
    let raw = base64_decode(b64.trim())?;
    let s = String::from_utf8(raw).ok()?;
    let user = s.split(':').next()?.to_string();
    (!user.is_empty()).then_some(user)
}

fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let val = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => u32::from(c - b'A'),
            b'a'..=b'z' => u32::from(c - b'a') + 26,
            b'0'..=b'9' => u32::from(c - b'0') + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        })
    };
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0);
    for &c in s.as_bytes().iter().filter(|&&c| c != b'=') {
        acc = (acc << 6) | val(c)?;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

/// A new run id: 32 lowercase hex digits.
fn new_run_id() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let n = SEQ.fetch_add(1, Ordering::Relaxed);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let a = xxhash_rust::xxh64::xxh64(&t.to_le_bytes(), n);
    let b = xxhash_rust::xxh64::xxh64(&n.to_le_bytes(), (t as u64) ^ u64::from(std::process::id()));
    format!("{a:016x}{b:016x}")
}

fn check_key(k: &str) -> Result<(), ApiError> {
    if k.is_empty() || k.len() > limits::MAX_ENTITY_KEY_LENGTH {
        return Err(ApiError::invalid(format!(
            "Invalid key {k:?}: keys must be 1 to {} characters",
            limits::MAX_ENTITY_KEY_LENGTH
        )));
    }
    if k.contains("..") || k.starts_with('/') {
        return Err(ApiError::invalid(format!("Invalid key {k:?}: no '..' and no leading '/'")));
    }
    Ok(())
}

async fn experiment_or_404<S: MlflowStore>(
    s: &S,
    id: &str,
) -> Result<auspex_mlflow::Experiment, ApiError> {
    s.get_experiment(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("No Experiment with id={id} exists")))
}

async fn model_or_404<S: MlflowStore>(
    s: &S,
    name: &str,
) -> Result<auspex_mlflow::RegisteredModel, ApiError> {
    s.get_registered_model(name)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("Registered Model with name={name} not found")))
}

async fn version_or_404<S: MlflowStore>(
    s: &S,
    name: &str,
    version: i64,
) -> Result<auspex_mlflow::ModelVersion, ApiError> {
    s.get_model_version(name, version).await?.ok_or_else(|| {
        ApiError::not_found(format!("Model Version (name={name}, version={version}) not found"))
    })
}

/// Anything the MLflow routes need from the store.
pub trait MlflowStore:
    auspex_store::Store + TrackingStore + RegistryStore + auspex_store::IncidentStore
{
}
impl<T: auspex_store::Store + TrackingStore + RegistryStore + auspex_store::IncidentStore>
    MlflowStore for T
{
}

/// `ANY /api/{2.0,3.0}/mlflow/{*rest}` and `/ajax-api/...`.
pub async fn dispatch<S: MlflowStore>(
    State(app): State<Arc<App<S>>>,
    method: Method,
    Path(rest): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let req = match Req::parse(query.as_deref(), &body, &headers) {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    match route(&app, &method, rest.trim_end_matches('/'), &req).await {
        Ok(v) => axum::Json(v).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn route<S: MlflowStore>(app: &App<S>, m: &Method, path: &str, r: &Req) -> Res {
    let s = &app.store;
    let get = *m == Method::GET;
    let post = *m == Method::POST;
    match (path, get, post) {
        ("server-info", true, _) => {
            Ok(json!({"store_type": "SqlAlchemyStore", "workspaces_enabled": false}))
        }
        ("experiments/create", _, true) => {
            let name = r.str("name")?;
            let tags: Vec<Tag> = r.list("tags")?;
            let loc = r.opt_str("artifact_location");
            let id = s.create_experiment(&name, loc.as_deref(), "mlflow-artifacts:", &tags).await?;
            Ok(json!({ "experiment_id": id }))
        }
        ("experiments/get", true, _) => {
            let id = r.str("experiment_id")?;
            Ok(json!({ "experiment": experiment_or_404(s, &id).await? }))
        }
        ("experiments/get-by-name", true, _) => {
            let name = r.str("experiment_name")?;
            let e = s.get_experiment_by_name(&name).await?.ok_or_else(|| {
                ApiError::not_found(format!("Could not find experiment with name '{name}'"))
            })?;
            Ok(json!({ "experiment": e }))
        }
        ("experiments/search", _, _) => {
            let view = ViewType::parse(r.opt_str("view_type").as_deref())
                .ok_or_else(|| ApiError::invalid("invalid view_type"))?;
            let mut exps = s.list_experiments(view).await?;
            let cl = clauses(r)?;
            exps.retain(|e| kv_match(&cl, &e.tags, |k| (k == "name").then(|| e.name.clone())));
            exps.reverse(); // newest first, as MLflow orders by last update
            let (page, next) = paginate(exps, r)?;
            Ok(page_json("experiments", page, next))
        }
        ("experiments/update", _, true) => {
            let id = r.str("experiment_id")?;
            let name = r.str("new_name")?;
            s.update_experiment(&id, Some(&name), None, None).await?;
            Ok(json!({}))
        }
        ("experiments/delete", _, true) | ("experiments/restore", _, true) => {
            let id = r.str("experiment_id")?;
            if id == "0" && path.ends_with("delete") {
                return Err(ApiError::invalid("Cannot delete the default experiment '0'."));
            }
            let stage = if path.ends_with("delete") { "deleted" } else { "active" };
            s.update_experiment(&id, None, Some(stage), None).await?;
            Ok(json!({}))
        }
        ("experiments/set-experiment-tag", _, true) => {
            let id = r.str("experiment_id")?;
            let key = r.str("key")?;
            check_key(&key)?;
            let value = r.opt_str("value").unwrap_or_default();
            s.update_experiment(&id, None, None, Some(&Tag { key, value })).await?;
            Ok(json!({}))
        }
        ("runs/create", _, true) => {
            let exp = r.opt_str("experiment_id").unwrap_or_else(|| "0".into());
            let e = experiment_or_404(s, &exp).await?;
            let mut tags: Vec<Tag> = r.list("tags")?;
            let run_id = new_run_id();
            let tag_name = tags.iter().find(|t| t.key == "mlflow.runName").map(|t| t.value.clone());
            let name = r
                .opt_str("run_name")
                .filter(|n| !n.is_empty())
                .or(tag_name)
                .unwrap_or_else(|| format!("run-{}", &run_id[..8]));
            if !tags.iter().any(|t| t.key == "mlflow.runName") {
                tags.push(Tag { key: "mlflow.runName".into(), value: name.clone() });
            }
            let user = r
                .opt_str("user_id")
                .filter(|u| !u.is_empty())
                .or_else(|| tags.iter().find(|t| t.key == "mlflow.user").map(|t| t.value.clone()))
                .or_else(|| r.user.clone())
                .unwrap_or_default();
            let info = RunInfo {
                run_uuid: run_id.clone(),
                artifact_uri: format!(
                    "{}/{run_id}/artifacts",
                    e.artifact_location.trim_end_matches('/')
                ),
                run_id,
                run_name: name,
                experiment_id: e.experiment_id,
                user_id: user,
                status: "RUNNING".into(),
                start_time: r.opt_i64("start_time")?.unwrap_or_else(now_ms),
                end_time: None,
                lifecycle_stage: "active".into(),
            };
            s.create_run(&info, &tags).await?;
            // What was written, as get_run would read it back (tags by key).
            tags.reverse(); // the last of a repeated key wins, as in the store
            tags.sort_by(|a, b| a.key.cmp(&b.key));
            tags.dedup_by(|b, a| a.key == b.key);
            let run = auspex_mlflow::Run {
                info,
                data: auspex_mlflow::RunData { tags, ..Default::default() },
                inputs: Default::default(),
            };
            Ok(json!({ "run": run }))
        }
        ("runs/get", true, _) => {
            let id = r.run_id()?;
            let run = s
                .get_run(&id)
                .await?
                .ok_or_else(|| ApiError::not_found(format!("Run with id={id} not found")))?;
            Ok(json!({ "run": run }))
        }
        ("runs/update", _, true) => {
            let id = r.run_id()?;
            let status = r.opt_str("status");
            if let Some(st) = &status
                && !auspex_mlflow::RUN_STATUSES.contains(&st.as_str())
            {
                return Err(ApiError::invalid(format!("invalid run status {st:?}")));
            }
            let u = RunUpdate {
                status,
                end_time: r.opt_i64("end_time")?,
                run_name: r.opt_str("run_name").filter(|n| !n.is_empty()),
            };
            let info = s.update_run(&id, &u).await?;
            Ok(json!({ "run_info": info }))
        }
        ("runs/delete", _, true) | ("runs/restore", _, true) => {
            let id = r.run_id()?;
            let stage = if path.ends_with("delete") { "deleted" } else { "active" };
            s.set_run_lifecycle(&id, stage).await?;
            Ok(json!({}))
        }
        ("runs/log-metric", _, true) => {
            let id = r.run_id()?;
            let key = r.str("key")?;
            check_key(&key)?;
            let value = match r.v.get("value") {
                Some(v) => auspex_mlflow::entities::float::deserialize(v.clone())
                    .map_err(|e| ApiError::invalid(format!("invalid metric value: {e}")))?,
                None => {
                    return Err(ApiError::invalid("Missing value for required parameter 'value'."));
                }
            };
            let m = Metric {
                key,
                value,
                timestamp: r.opt_i64("timestamp")?.unwrap_or_else(now_ms),
                step: r.opt_i64("step")?.unwrap_or(0),
            };
            s.log_batch(&id, &[m], &[], &[]).await?;
            Ok(json!({}))
        }
        ("runs/log-parameter", _, true) => {
            let id = r.run_id()?;
            let key = r.str("key")?;
            check_key(&key)?;
            let value = r.opt_str("value").unwrap_or_default();
            check_len("param", &key, &value, limits::MAX_PARAM_VAL_LENGTH)?;
            s.log_batch(&id, &[], &[Tag { key, value }], &[]).await?;
            Ok(json!({}))
        }
        ("runs/set-tag", _, true) => {
            let id = r.run_id()?;
            let key = r.str("key")?;
            check_key(&key)?;
            let value = r.opt_str("value").unwrap_or_default();
            check_len("tag", &key, &value, limits::MAX_TAG_VAL_LENGTH)?;
            s.log_batch(&id, &[], &[], &[Tag { key, value }]).await?;
            Ok(json!({}))
        }
        ("runs/delete-tag", _, true) => {
            let id = r.run_id()?;
            s.delete_run_tag(&id, &r.str("key")?).await?;
            Ok(json!({}))
        }
        ("runs/log-batch", _, true) => {
            let id = r.run_id()?;
            let metrics: Vec<Metric> = r.list("metrics")?;
            let params: Vec<Tag> = r.list("params")?;
            let tags: Vec<Tag> = r.list("tags")?;
            if metrics.len() > limits::MAX_METRICS_PER_BATCH
                || params.len() > limits::MAX_PARAMS_PER_BATCH
                || tags.len() > limits::MAX_TAGS_PER_BATCH
                || metrics.len() + params.len() + tags.len() > limits::MAX_ENTITIES_PER_BATCH
            {
                return Err(ApiError::invalid(format!(
                    "A batch logging request can contain at most {} metrics, {} params, {} tags and {} \
                     entities in total; got {} metrics, {} params, {} tags",
                    limits::MAX_METRICS_PER_BATCH,
                    limits::MAX_PARAMS_PER_BATCH,
                    limits::MAX_TAGS_PER_BATCH,
                    limits::MAX_ENTITIES_PER_BATCH,
                    metrics.len(),
                    params.len(),
                    tags.len()
                )));
            }
            for m in &metrics {
                check_key(&m.key)?;
            }
            for p in &params {
                check_key(&p.key)?;
                check_len("param", &p.key, &p.value, limits::MAX_PARAM_VAL_LENGTH)?;
            }
            for t in &tags {
                check_key(&t.key)?;
                check_len("tag", &t.key, &t.value, limits::MAX_TAG_VAL_LENGTH)?;
            }
            // Params repeated within the batch must agree, as in MLflow.
            for (i, p) in params.iter().enumerate() {
                if params[..i].iter().any(|q| q.key == p.key && q.value != p.value) {
                    return Err(ApiError::invalid(format!(
                        "Duplicate parameter keys have been submitted: {} with different values",
                        p.key
                    )));
                }
            }
            s.log_batch(&id, &metrics, &params, &tags).await?;
            Ok(json!({}))
        }
        ("runs/log-inputs", _, true) => {
            let id = r.run_id()?;
            let inputs: Vec<DatasetInput> = r.list("datasets")?;
            s.log_inputs(&id, &inputs).await?;
            Ok(json!({}))
        }
        ("metrics/get-history", true, _) => {
            let id = r.run_id()?;
            let key = r.str("metric_key")?;
            let hist = s.metric_history(&id, &key).await?;
            let (page, next) = paginate(hist, r)?;
            Ok(page_json("metrics", page, next))
        }
        ("runs/search", _, true) => search_runs(app, r).await,
        ("logged-models/search", _, true) => logged_models_search(app, r).await,
        ("logged-models", _, true) => logged_model_create(app, r).await,
        ("runs/outputs", _, true) => {
            // Which logged models a run produced: kept as a run tag (JSON), as MLflow shows them.
            let id = r.run_id()?;
            let models = r.v.get("models").cloned().unwrap_or(Value::Null);
            let tag = Tag { key: "mlflow.loggedModels".into(), value: models.to_string() };
            s.log_batch(&id, &[], &[], &[tag]).await?;
            Ok(json!({}))
        }
        (p, _, _) if p.starts_with("logged-models/") => logged_model(app, m, p, r).await,
        _ => registry(app, m, path, r).await,
    }
}

fn check_len(what: &str, key: &str, value: &str, max: usize) -> Result<(), ApiError> {
    if value.chars().count() > max {
        return Err(ApiError::invalid(format!(
            "{what} '{key}' has a value of {} characters; the limit is {max}",
            value.chars().count()
        )));
    }
    Ok(())
}

/// `{key: page}`, with `next_page_token` when more follow.
fn page_json<T: serde::Serialize>(key: &str, page: Vec<T>, next: Option<String>) -> Value {
    let mut out = json!({ key: page });
    if let Some(t) = next {
        out["next_page_token"] = json!(t);
    }
    out
}

/// `max_results` and the offset in `page_token`.
fn page_args(r: &Req) -> Result<(usize, usize), ApiError> {
    let max = r.opt_i64("max_results")?.map_or(limits::SEARCH_MAX_RESULTS_DEFAULT as i64, |m| m);
    if max <= 0 || max as usize > limits::SEARCH_MAX_RESULTS_THRESHOLD {
        return Err(ApiError::invalid(format!(
            "Invalid value {max} for parameter 'max_results' supplied. It must be a positive integer \
             at most {}",
            limits::SEARCH_MAX_RESULTS_THRESHOLD
        )));
    }
    let offset = match r.opt_str("page_token").filter(|t| !t.is_empty()) {
        Some(t) => t
            .parse::<usize>()
            .map_err(|_| ApiError::invalid(format!("invalid page_token {t:?}")))?,
        None => 0,
    };
    Ok((max as usize, offset))
}

/// A page of `items` per `max_results` / `page_token` (an offset).
fn paginate<T>(items: Vec<T>, r: &Req) -> Result<(Vec<T>, Option<String>), ApiError> {
    let (max, offset) = page_args(r)?;
    let max = max as i64;
    let total = items.len();
    let end = (offset + max as usize).min(total);
    let page: Vec<T> = items.into_iter().skip(offset).take(max as usize).collect();
    Ok((page, (end < total).then(|| end.to_string())))
}

/// The `AND`-joined `key op 'value'` clauses of a request's `filter`.
fn clauses(r: &Req) -> Result<Vec<(String, String, String)>, ApiError> {
    let f = r.opt_str("filter").unwrap_or_default();
    split_and(&f).iter().map(|c| simple_clause(c)).collect()
}

/// True when every clause holds: `tags.K` looks in `tags` (a missing tag is `!=` anything,
/// as MLflow treats it), other keys go to `attr` (an unknown key never matches).
fn kv_match(
    cl: &[(String, String, String)],
    tags: &[Tag],
    attr: impl Fn(&str) -> Option<String>,
) -> bool {
    cl.iter().all(|(k, op, v)| {
        let k = k.trim_start_matches("attributes.").trim_start_matches("attribute.");
        if let Some(tk) = k.strip_prefix("tags.").or_else(|| k.strip_prefix("tag.")) {
            let tk = tk.trim_matches(|c| c == '`' || c == '"');
            return match tags.iter().find(|t| t.key == tk) {
                Some(t) => str_op(&t.value, op, v),
                None => op == "!=",
            };
        }
        attr(k).is_some_and(|x| str_op(&x, op, v))
    })
}

/// `key op 'value'` for experiment and model searches (name and tags).
fn simple_clause(f: &str) -> Result<(String, String, String), ApiError> {
    let f = f.trim();
    for op in ["!=", "=", " ILIKE ", " LIKE ", " ilike ", " like "] {
        if let Some((k, v)) = f.split_once(op) {
            let v = v.trim().trim_matches(|c| c == '\'' || c == '"').to_string();
            let k = k.trim().trim_matches('`').to_string();
            return Ok((k, op.trim().to_ascii_uppercase(), v));
        }
    }
    Err(ApiError::invalid(format!("unsupported filter {f:?} (use name = 'x' or name LIKE 'x%')")))
}

fn str_op(x: &str, op: &str, v: &str) -> bool {
    match op {
        "=" => x == v,
        "!=" => x != v,
        "LIKE" => auspex_mlflow::filter::like(x, v, false),
        _ => auspex_mlflow::filter::like(x, v, true),
    }
}

async fn search_runs<S: MlflowStore>(app: &App<S>, r: &Req) -> Res {
    let exps = r.strings("experiment_ids");
    let view = ViewType::parse(r.opt_str("run_view_type").as_deref())
        .ok_or_else(|| ApiError::invalid("invalid run_view_type"))?;
    let filter = Filter::parse(&r.opt_str("filter").unwrap_or_default())
        .map_err(|e| ApiError::invalid(format!("Error on parsing filter: {e}")))?;
    let order: Vec<OrderBy> = r
        .strings("order_by")
        .iter()
        .map(|o| OrderBy::parse(o))
        .collect::<Result<_, _>>()
        .map_err(|e| ApiError::invalid(format!("Invalid order_by clause: {e}")))?;
    // In the database when it can (filter, order and page in SQL); else two passes: the
    // runs with only the keys the filter and the ordering read, then the page's runs in full.
    let (max, offset) = page_args(r)?;
    if let Some((ids, more)) =
        app.store.search_run_ids(&exps, view, &filter, &order, offset, max).await?
    {
        let next = more.then(|| (offset + ids.len()).to_string());
        return Ok(page_json("runs", app.store.get_runs(&ids).await?, next));
    }
    let mut keys = RunKeys::default();
    let fields = filter.clauses.iter().map(|c| &c.field).chain(order.iter().map(|o| &o.field));
    for f in fields {
        match f {
            Field::Metric(k) => keys.metrics.push(k.clone()),
            Field::Param(k) => keys.params.push(k.clone()),
            Field::Tag(k) => keys.tags.push(k.clone()),
            Field::NumAttr(_) | Field::StrAttr(_) => {}
        }
    }
    let mut runs = app.store.list_runs_keys(&exps, view, &keys).await?;
    runs.retain(|run| filter.matches(run));
    sort_runs(&mut runs, &order);
    let (page, next) = paginate(runs, r)?;
    let ids: Vec<String> = page.into_iter().map(|r| r.info.run_id).collect();
    Ok(page_json("runs", app.store.get_runs(&ids).await?, next))
}

/// Who made a registry change: the basic-auth user, else the run's user, else `anonymous`.
async fn who<S: MlflowStore>(app: &App<S>, r: &Req, run_id: Option<&str>) -> String {
    if let Some(u) = &r.user {
        return u.clone();
    }
    if let Some(id) = run_id.filter(|i| !i.is_empty())
        && let Ok(Some(u)) = app.store.run_user(id).await
    {
        return u;
    }
    "anonymous".into()
}

async fn registry<S: MlflowStore>(app: &App<S>, m: &Method, path: &str, r: &Req) -> Res {
    let s = &app.store;
    let get = *m == Method::GET;
    let post = *m == Method::POST;
    let patch = *m == Method::PATCH;
    let delete = *m == Method::DELETE;
    match path {
        "registered-models/create" if post => {
            let name = r.str("name")?;
            let tags: Vec<Tag> = r.list("tags")?;
            let rm = s
                .create_registered_model(
                    &name,
                    &r.opt_str("description").unwrap_or_default(),
                    &tags,
                )
                .await?;
            Ok(json!({ "registered_model": rm }))
        }
        "registered-models/get" if get => {
            let name = r.str("name")?;
            Ok(json!({ "registered_model": model_or_404(s, &name).await? }))
        }
        "registered-models/rename" if post => {
            let name = r.str("name")?;
            let new = r.str("new_name")?;
            s.update_registered_model(&name, Some(&new), None).await?;
            let rm = s.get_registered_model(&new).await?;
            Ok(json!({ "registered_model": rm }))
        }
        "registered-models/update" if patch || post => {
            let name = r.str("name")?;
            s.update_registered_model(
                &name,
                None,
                Some(&r.opt_str("description").unwrap_or_default()),
            )
            .await?;
            let rm = s.get_registered_model(&name).await?;
            Ok(json!({ "registered_model": rm }))
        }
        "registered-models/delete" if delete || post => {
            s.delete_registered_model(&r.str("name")?).await?;
            Ok(json!({}))
        }
        "registered-models/search" if get || post => {
            let mut models = s.list_registered_models().await?;
            let cl = clauses(r)?;
            models.retain(|m| kv_match(&cl, &m.tags, |k| (k == "name").then(|| m.name.clone())));
            let (page, next) = paginate(models, r)?;
            Ok(page_json("registered_models", page, next))
        }
        "registered-models/get-latest-versions" if get || post => {
            let name = r.str("name")?;
            let rm = model_or_404(s, &name).await?;
            let stages = r.strings("stages");
            let v: Vec<_> = rm
                .latest_versions
                .into_iter()
                .filter(|v| {
                    stages.is_empty()
                        || stages.iter().any(|st| st.eq_ignore_ascii_case(&v.current_stage))
                })
                .collect();
            Ok(json!({ "model_versions": v }))
        }
        "registered-models/set-tag" if post => {
            let key = r.str("key")?;
            check_key(&key)?;
            s.set_registered_model_tag(
                &r.str("name")?,
                &key,
                Some(&r.opt_str("value").unwrap_or_default()),
            )
            .await?;
            Ok(json!({}))
        }
        "registered-models/delete-tag" if delete || post => {
            s.set_registered_model_tag(&r.str("name")?, &r.str("key")?, None).await?;
            Ok(json!({}))
        }
        "registered-models/alias" if post => {
            let name = r.str("name")?;
            let alias = r.str("alias")?;
            check_alias(&alias)?;
            let version = r.version()?;
            let run_id = s.get_model_version(&name, version).await?.map(|v| v.run_id);
            let who = who(app, r, run_id.as_deref()).await;
            s.set_alias(&name, &alias, Some(version), &who).await?;
            Ok(json!({}))
        }
        "registered-models/alias" if delete => {
            let name = r.str("name")?;
            let alias = r.str("alias")?;
            let who = who(app, r, None).await;
            s.set_alias(&name, &alias, None, &who).await?;
            Ok(json!({}))
        }
        "registered-models/alias" if get => {
            let name = r.str("name")?;
            let alias = r.str("alias")?;
            let v = s.get_by_alias(&name, &alias).await?.ok_or_else(|| {
                ApiError::not_found(format!("Registered model alias {alias} not found."))
            })?;
            Ok(json!({ "model_version": v }))
        }
        "model-versions/create" if post => {
            let name = r.str("name")?;
            let source = r.str("source")?;
            let run_id = r.opt_str("run_id").unwrap_or_default();
            let (lineage, user) = lineage_of(app, &run_id).await?;
            let who = match &r.user {
                Some(u) => u.clone(),
                None => user.unwrap_or_else(|| "anonymous".into()),
            };
            let v = NewModelVersion {
                name,
                source,
                run_id,
                tags: r.list("tags")?,
                run_link: r.opt_str("run_link").unwrap_or_default(),
                description: r.opt_str("description").unwrap_or_default(),
                user_id: who,
                model_id: r.opt_str("model_id").unwrap_or_default(),
                lineage: lineage.to_string(),
            };
            let mv = s.create_model_version(&v).await?;
            Ok(json!({ "model_version": mv }))
        }
        "model-versions/get" if get => {
            let name = r.str("name")?;
            let version = r.version()?;
            Ok(json!({ "model_version": version_or_404(s, &name, version).await? }))
        }
        "model-versions/update" if patch || post => {
            let v = s
                .update_model_version(
                    &r.str("name")?,
                    r.version()?,
                    &r.opt_str("description").unwrap_or_default(),
                )
                .await?;
            Ok(json!({ "model_version": v }))
        }
        "model-versions/delete" if delete || post => {
            s.delete_model_version(&r.str("name")?, r.version()?).await?;
            Ok(json!({}))
        }
        "model-versions/search" if get || post => {
            let cl = clauses(r)?;
            let by_name =
                cl.iter().find(|(k, op, _)| k == "name" && op == "=").map(|c| c.2.clone());
            let mut versions = s.list_model_versions(by_name.as_deref()).await?;
            versions.retain(|mv| {
                kv_match(&cl, &mv.tags, |k| match k {
                    "name" => Some(mv.name.clone()),
                    "run_id" => Some(mv.run_id.clone()),
                    "source_path" | "source" => Some(mv.source.clone()),
                    "version_number" | "version" => Some(mv.version.clone()),
                    "current_stage" => Some(mv.current_stage.clone()),
                    _ => None,
                })
            });
            versions.sort_by(|a, b| {
                a.name.cmp(&b.name).then(
                    b.version
                        .parse::<i64>()
                        .unwrap_or(0)
                        .cmp(&a.version.parse::<i64>().unwrap_or(0)),
                )
            });
            let (page, next) = paginate(versions, r)?;
            Ok(page_json("model_versions", page, next))
        }
        "model-versions/transition-stage" if post => {
            let name = r.str("name")?;
            let version = r.version()?;
            let stage_in = r.str("stage")?;
            let stage = canonical_stage(&stage_in).ok_or_else(|| {
                ApiError::invalid(format!(
                    "Invalid Model Version stage: {stage_in}. Value must be one of None, Staging, Production, Archived."
                ))
            })?;
            let run_id = s.get_model_version(&name, version).await?.map(|v| v.run_id);
            let who = who(app, r, run_id.as_deref()).await;
            let v = s
                .transition_stage(
                    &name,
                    version,
                    stage,
                    r.opt_bool("archive_existing_versions"),
                    &who,
                )
                .await?;
            Ok(json!({ "model_version": v }))
        }
        "model-versions/get-download-uri" if get => {
            let name = r.str("name")?;
            let version = r.version()?;
            Ok(json!({ "artifact_uri": version_or_404(s, &name, version).await?.source }))
        }
        "model-versions/set-tag" if post => {
            let key = r.str("key")?;
            check_key(&key)?;
            s.set_model_version_tag(
                &r.str("name")?,
                r.version()?,
                &key,
                Some(&r.opt_str("value").unwrap_or_default()),
            )
            .await?;
            Ok(json!({}))
        }
        "model-versions/delete-tag" if delete || post => {
            s.set_model_version_tag(&r.str("name")?, r.version()?, &r.str("key")?, None).await?;
            Ok(json!({}))
        }
        _ => Err(ApiError::no_endpoint(m, path)),
    }
}

fn check_alias(a: &str) -> Result<(), ApiError> {
    let ok = !a.is_empty()
        && a.len() <= 255
        && a.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-')
        && !a.eq_ignore_ascii_case("latest")
        && !(a.len() > 1
            && (a.starts_with('v') || a.starts_with('V'))
            && a[1..].bytes().all(|c| c.is_ascii_digit()));
    if ok {
        Ok(())
    } else {
        Err(ApiError::invalid(format!(
            "Invalid alias name {a:?}: letters, digits, '_' and '-' only; not 'latest' nor v<number>"
        )))
    }
}

/// Lineage recorded at registration: the source run, its dataset digests and git commit; and
/// the run's user.
async fn lineage_of<S: MlflowStore>(
    app: &App<S>,
    run_id: &str,
) -> Result<(Value, Option<String>), ApiError> {
    if run_id.is_empty() {
        return Ok((json!({}), None));
    }
    let Some(run) = app.store.get_run(run_id).await? else {
        return Ok((json!({ "run_id": run_id, "run_found": false }), None));
    };
    let datasets: Vec<Value> = run
        .inputs
        .dataset_inputs
        .iter()
        .map(|d| json!({"name": d.dataset.name, "digest": d.dataset.digest, "source_type": d.dataset.source_type}))
        .collect();
    let user = Some(run.info.user_id.clone())
        .filter(|u| !u.is_empty())
        .or_else(|| run.tag("mlflow.user").map(str::to_string));
    Ok((
        json!({
            "run_id": run_id,
            "experiment_id": run.info.experiment_id,
            "git_commit": run.tag("mlflow.source.git.commit"),
            "source_name": run.tag("mlflow.source.name"),
            "datasets": datasets,
        }),
        user,
    ))
}

fn parse_model(json: &str) -> Result<Value, ApiError> {
    serde_json::from_str(json)
        .map_err(|e| ApiError::invalid(format!("stored logged model is corrupt: {e}")))
}

/// `POST logged-models`: a new MLflow 3 logged model, `PENDING` until finalized.
async fn logged_model_create<S: MlflowStore>(app: &App<S>, r: &Req) -> Res {
    let exp = r.str("experiment_id")?;
    let e = experiment_or_404(&app.store, &exp).await?;
    let id = format!("m-{}", new_run_id());
    let now = now_ms();
    let mut info = json!({
        "model_id": id,
        "experiment_id": e.experiment_id,
        "name": r.opt_str("name").filter(|n| !n.is_empty()).unwrap_or_else(|| id.clone()),
        "creation_timestamp_ms": now,
        "last_updated_timestamp_ms": now,
        "artifact_uri": format!("{}/models/{id}/artifacts", e.artifact_location.trim_end_matches('/')),
        "status": "LOGGED_MODEL_PENDING",
        "tags": r.v.get("tags").cloned().unwrap_or(json!([])),
    });
    for k in ["model_type", "source_run_id"] {
        if let Some(v) = r.opt_str(k).filter(|v| !v.is_empty()) {
            info[k] = json!(v);
        }
    }
    let model =
        json!({"info": info, "data": {"params": r.v.get("params").cloned().unwrap_or(json!([]))}});
    app.store.put_logged_model(&id, &e.experiment_id, &model.to_string()).await?;
    Ok(json!({ "model": model }))
}

/// `GET|PATCH|DELETE logged-models/{id}`, `PATCH|DELETE logged-models/{id}/tags[/{key}]`,
/// `POST logged-models/{id}/params`.
async fn logged_model<S: MlflowStore>(app: &App<S>, m: &Method, path: &str, r: &Req) -> Res {
    let rest = path.trim_start_matches("logged-models/");
    let mut parts = rest.splitn(3, '/');
    let id = parts.next().unwrap_or_default().to_string();
    let sub = parts.next();
    let key = parts.next();
    let stored = app.store.get_logged_model(&id).await?;
    let Some(stored) = stored else {
        return Err(ApiError::not_found(format!("Logged model with ID '{id}' not found.")));
    };
    let mut model = parse_model(&stored)?;
    let exp = model["info"]["experiment_id"].as_str().unwrap_or("0").to_string();
    let merge = |list: &mut Value, new: Vec<Tag>| {
        let mut cur: Vec<Tag> = serde_json::from_value(list.take()).unwrap_or_default();
        for t in new {
            cur.retain(|c| c.key != t.key);
            cur.push(t);
        }
        *list = serde_json::to_value(cur).unwrap_or(json!([]));
    };
    match (m.as_str(), sub) {
        ("GET", None) => return Ok(json!({ "model": model })),
        ("DELETE", None) => {
            app.store.delete_logged_model(&id).await?;
            return Ok(json!({}));
        }
        ("PATCH", None) => {
            let status = r.str("status")?;
            if !matches!(
                status.as_str(),
                "LOGGED_MODEL_READY" | "LOGGED_MODEL_UPLOAD_FAILED" | "LOGGED_MODEL_PENDING"
            ) {
                return Err(ApiError::invalid(format!("invalid logged model status {status:?}")));
            }
            model["info"]["status"] = json!(status);
        }
        ("PATCH", Some("tags")) => merge(&mut model["info"]["tags"], r.list("tags")?),
        ("DELETE", Some("tags")) => {
            let key = key.map(str::to_string).or_else(|| r.opt_str("tag_key")).unwrap_or_default();
            let mut cur: Vec<Tag> =
                serde_json::from_value(model["info"]["tags"].take()).unwrap_or_default();
            cur.retain(|c| c.key != key);
            model["info"]["tags"] = serde_json::to_value(cur).unwrap_or(json!([]));
        }
        ("POST", Some("params")) => merge(&mut model["data"]["params"], r.list("params")?),
        _ => return Err(ApiError::no_endpoint(m, path)),
    }
    model["info"]["last_updated_timestamp_ms"] = json!(now_ms());
    app.store.put_logged_model(&id, &exp, &model.to_string()).await?;
    Ok(json!({ "model": model }))
}

/// `POST logged-models/search`: by experiment, with `name = '...'`/`source_run_id = '...'`
/// style filters.
async fn logged_models_search<S: MlflowStore>(app: &App<S>, r: &Req) -> Res {
    let exps = r.strings("experiment_ids");
    let mut models: Vec<Value> = Vec::new();
    for j in app.store.list_logged_models(&exps).await? {
        models.push(parse_model(&j)?);
    }
    let cl = clauses(r)?;
    let tags = |m: &Value| -> Vec<Tag> {
        serde_json::from_value(m["info"]["tags"].clone()).unwrap_or_default()
    };
    models.retain(|m| {
        kv_match(&cl, &tags(m), |k| match k {
            "model_id" | "name" | "status" | "model_type" | "source_run_id" => {
                Some(m["info"][k].as_str().unwrap_or("").to_string())
            }
            _ => None,
        })
    });
    models.reverse(); // newest first
    let (page, next) = paginate(models, r)?;
    Ok(page_json("models", page, next))
}

/// Splits a filter on ` AND ` outside quotes.
fn split_and(f: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let words: Vec<&str> = f.split(' ').collect();
    for w in words {
        for c in w.chars() {
            match quote {
                Some(q) if c == q => quote = None,
                None if c == '\'' || c == '"' => quote = Some(c),
                _ => {}
            }
        }
        if quote.is_none() && w.eq_ignore_ascii_case("and") {
            out.push(std::mem::take(&mut cur));
        } else {
            if !cur.is_empty() {
                cur.push(' ');
            }
            cur.push_str(w);
        }
    }
    if !cur.trim().is_empty() {
        out.push(cur);
    }
    out
}

/// `GET /auspex/v1/models/{name}/versions/{version}/lineage`: the version, the lineage recorded
/// at registration, the source run (if it still exists) and the audit trail of the model.
pub async fn lineage<S: MlflowStore>(
    State(app): State<Arc<App<S>>>,
    Path((name, version)): Path<(String, String)>,
) -> Response {
    let res = async {
        let v: i64 = version.parse().map_err(|_| {
            ApiError::invalid(format!("version must be an integer, got {version:?}"))
        })?;
        let s = &app.store;
        let mv = version_or_404(s, &name, v).await?;
        let lineage: Value = s
            .lineage(&name, v)
            .await?
            .and_then(|l| serde_json::from_str(&l).ok())
            .unwrap_or(Value::Null);
        let run = if mv.run_id.is_empty() { None } else { s.get_run(&mv.run_id).await? };
        let audit: Vec<Value> = s
            .audit(&name, None)
            .await?
            .into_iter()
            .filter(|a| a.version.is_none_or(|x| x == v) || a.action.ends_with("alias"))
            .map(|a| {
                json!({"action": a.action, "version": a.version, "from": a.from, "to": a.to,
                       "who": a.who, "at_ms": a.at_ms})
            })
            .collect();
        Ok::<_, ApiError>(
            axum::Json(
                json!({"model_version": mv, "lineage": lineage, "run": run, "audit": audit}),
            )
            .into_response(),
        )
    }
    .await;
    res.unwrap_or_else(IntoResponse::into_response)
}
