//! `auspex serve` configuration: a TOML file, validated with clear errors. Every field has a
//! default, so no file is needed.
//!
//! ```toml
//! [limits]
//! max_body_bytes = 10485760       # compressed remote-write body (413 above)
//! max_decoded_bytes = 67108864    # decompressed body
//! max_active_series = 200000      # new series beyond this are refused (and counted)
//! max_inflight_writes = 64        # concurrent write requests; beyond: 503 + Retry-After
//! max_inflight_body_bytes = 268435456  # request bodies held at once, every route; beyond: 503 + Retry-After
//! max_connections = 1024          # open at once; accepting waits beyond (each buffers ≤ ~0.5 MiB)
//! max_connections_per_address = 256  # from one address; one beyond is closed at once (raise it
//!                                 #   behind a proxy that opens more than this to the server)
//! connection_idle_timeout = "2m"  # closed after this long with no byte either way
//! header_read_timeout = "1m"      # a request's headers, from when the server is ready for them
//! request_body_timeout = "30s"    # a body's grace: it must arrive within this + 1 s per
//! request_body_min_rate = 1024    #   this many bytes received (0: off); slower gets 408
//! max_labels = 64
//! max_label_name_len = 256
//! max_label_value_len = 2048
//!
//! [detector]
//! sensitivity = 0.5               # 0..1, moves is_anomaly, never the score
//!
//! [series]
//! idle_timeout = "1h"             # evicted from memory after this long without samples
//! snapshot_interval = "30s"       # model snapshots: the bound on lost model updates
//!
//! [retention]
//! signals = "30d"                 # closed signals older than this are deleted
//!
//! [metrics]
//! anomaly_score_min = 0.5         # series at or above this get an auspex_anomaly_score gauge
//! anomaly_score_max_series = 1000 # at most this many (highest scores first)
//!
//! [mlflow]
//! max_artifact_bytes = 5368709120 # largest artifact upload (413 above)
//! max_request_bytes = 33554432    # largest JSON request (413 above)
//! max_inflight_uploads = 8        # artifact uploads streamed at once (each holds ≤ 24 MiB); more wait
//! artifacts_destination = ""      # "" = <data-dir>/artifacts; or "s3://bucket/prefix" (AWS_* env)
//!
//! [store]
//! synchronous = "full"            # "full": fsync per commit; "normal": survives process crashes only
//!
//! [incidents]
//! window = "10m"                  # a signal joins an incident active this recently
//! burst = "2m"                    # signals starting this close together share an incident
//! resolve_after = "5m"            # auto-resolve once every signal has cleared this long
//! flap_window = "30m"             # flap detection, and reopening instead of a new incident
//! flap_threshold = 3              # starts within flap_window that make a signal flapping
//! group_labels = ["service", "pod", "instance"]   # a shared value relates signals
//! scope_labels = ["namespace", "cluster"]         # a different value separates them
//! service_label = "service"       # matched against the topology's services
//! topology = ""                   # YAML {services: [...], edges: [{from, to}]}
//! hub_factor = 4.0                # links via a service with > 4 × the mean neighbours don't relate; 0 = off
//! # onset_hops = 2                # co-onset only within 2 topology links, not through hubs (unset: any)
//! busy_onset_hops = 1             # the same, only while incidents open ≥ 1 per 2 bursts (last hour); "off"
//! max_incidents = 10000           # held in memory (the rest stay in the store)
//! tick = "5s"                     # how often auto-resolution is checked
//!
//! [traces]
//! max_body_bytes = 16777216       # OTLP request body as sent (413 above)
//! max_decoded_bytes = 67108864    # after gzip decompression (413 above)
//! max_spans_per_request = 100000  # 413 above
//! max_spans = 200000              # spans remembered to link late children (oldest out)
//! max_services = 10000            # services tracked; spans of further ones are ignored
//! bucket = "10s"                  # RED series resolution
//!
//! [notify]
//! allow = ["http://127.0.0.1:*/"] # URL prefixes a target may use (port `*`: any)
//! external_url = ""               # this server as people reach it: notifications link to <it>/ui/incidents/<id>
//! retries = 3                     # after the first attempt, with doubling backoff
//! backoff = "1s"
//! timeout = "10s"
//! max_pending = 1000              # notifications queued or being sent; beyond it they are dropped (and recorded)
//! max_silences = 1000             # silences active or pending at once (more are refused; as many expired kept); each takes at most ~2 MiB, usually under 2 KiB
//! silence_retention = "5d"        # expired silences are kept (listed) this long
//! [[notify.targets]]
//! kind = "webhook"                # webhook | slack | pagerduty | alertmanager
//! url = "http://127.0.0.1:9000/hook"
//! secret = "..."                  # webhook: HMAC-SHA256 of the body in X-Auspex-Signature
//! # routing_key = "..."           # pagerduty: the integration key
//! # min_severity = "critical"     # only incidents at least this severe (info | warning | critical)
//! # events = ["opened", "resolved"]  # only these (opened | escalated | reopened | resolved)
//! # services = ["checkout"]       # only incidents touching one of these services
//! # labels = {namespace = "payments"}  # only incidents with a signal carrying these labels
//! # resend = "1m"                 # alertmanager (url .../api/v2/alerts): active incidents' alerts
//! #                               # are sent again this often, each valid for 4x this
//! ```

use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

/// A configuration problem, with the file and the field.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

/// The whole configuration.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Input limits.
    pub limits: Limits,
    /// Detector settings.
    pub detector: DetectorCfg,
    /// Series lifecycle.
    pub series: SeriesCfg,
    /// Retention.
    pub retention: RetentionCfg,
    /// `/metrics` settings.
    pub metrics: MetricsCfg,
    /// The MLflow-compatible API.
    pub mlflow: MlflowCfg,
    /// The embedded store.
    pub store: StoreCfg,
    /// Incident correlation.
    pub incidents: IncidentsCfg,
    /// Notifications.
    pub notify: NotifyCfg,
    /// OTLP traces.
    pub traces: TracesCfg,
}

/// `[traces]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TracesCfg {
    /// Largest OTLP body as sent (413 above).
    pub max_body_bytes: usize,
    /// Largest OTLP body after gzip decompression (413 above).
    pub max_decoded_bytes: usize,
    /// Most spans in one request (413 above).
    pub max_spans_per_request: usize,
    /// Spans remembered for linking late children.
    pub max_spans: usize,
    /// Services tracked (bounds edges and RED series too).
    pub max_services: usize,
    /// RED bucket width.
    #[serde(with = "dur")]
    pub bucket: Duration,
}

impl Default for TracesCfg {
    fn default() -> Self {
        Self {
            max_body_bytes: 16 << 20,
            max_decoded_bytes: 64 << 20,
            max_spans_per_request: 100_000,
            max_spans: 200_000,
            max_services: 10_000,
            bucket: Duration::from_secs(10),
        }
    }
}

/// `[incidents]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IncidentsCfg {
    /// A signal joins an incident whose latest signal started at most this long before.
    #[serde(with = "dur")]
    pub window: Duration,
    /// Co-onset: signals starting this close together share an incident.
    #[serde(with = "dur")]
    pub burst: Duration,
    /// Auto-resolution delay after every signal cleared.
    #[serde(with = "dur")]
    pub resolve_after: Duration,
    /// Flap detection window.
    #[serde(with = "dur")]
    pub flap_window: Duration,
    /// Starts within the flap window that make a fingerprint flapping.
    pub flap_threshold: usize,
    /// Labels whose shared value relates signals.
    pub group_labels: Vec<String>,
    /// Labels whose differing values separate signals.
    pub scope_labels: Vec<String>,
    /// The service label (matched against the topology).
    pub service_label: String,
    /// Topology file (YAML); empty for none.
    pub topology: String,
    /// Topology links to or from a hub (more than this many times the mean number of
    /// neighbours) do not relate signals; 0 turns this off.
    pub hub_factor: f64,
    /// Co-onset only between services at most this many topology links apart (unset: any).
    pub onset_hops: Option<usize>,
    /// While incidents open at least once per two bursts (over the last hour), co-onset only
    /// within this many topology links, and never for services the topology does not know;
    /// `"off"`: never held back.
    #[serde(with = "hops_or_off")]
    pub busy_onset_hops: Option<usize>,
    /// Incidents held in memory.
    pub max_incidents: usize,
    /// Auto-resolution check interval.
    #[serde(with = "dur")]
    pub tick: Duration,
}

impl Default for IncidentsCfg {
    fn default() -> Self {
        let c = auspex_incidents::Config::default();
        let ms = |x: i64| Duration::from_millis(x.max(0) as u64);
        Self {
            window: ms(c.window_ms),
            burst: ms(c.burst_ms),
            resolve_after: ms(c.resolve_after_ms),
            flap_window: ms(c.flap_window_ms),
            flap_threshold: c.flap_threshold,
            group_labels: c.group_labels,
            scope_labels: c.scope_labels,
            service_label: c.service_label,
            topology: String::new(),
            hub_factor: c.hub_factor,
            onset_hops: c.onset_hops,
            busy_onset_hops: c.busy_onset_hops,
            max_incidents: c.max_incidents,
            tick: Duration::from_secs(5),
        }
    }
}

impl IncidentsCfg {
    /// The correlator's settings.
    pub fn correlator(&self) -> auspex_incidents::Config {
        let ms = |d: Duration| d.as_millis().min(i64::MAX as u128) as i64;
        auspex_incidents::Config {
            window_ms: ms(self.window),
            burst_ms: ms(self.burst),
            resolve_after_ms: ms(self.resolve_after),
            flap_window_ms: ms(self.flap_window),
            flap_threshold: self.flap_threshold,
            group_labels: self.group_labels.clone(),
            scope_labels: self.scope_labels.clone(),
            service_label: self.service_label.clone(),
            hub_factor: self.hub_factor,
            onset_hops: self.onset_hops,
            busy_onset_hops: self.busy_onset_hops,
            max_incidents: self.max_incidents,
            ..auspex_incidents::Config::default()
        }
    }
}

/// `[notify]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NotifyCfg {
    /// URL prefixes targets may use; a port of `*` matches any port.
    pub allow: Vec<String>,
    /// This server's base URL as the people notified reach it (e.g.
    /// `https://auspex.example.com`); when set, notifications link to the incident's page.
    pub external_url: String,
    /// Retries after the first attempt.
    pub retries: u32,
    /// First backoff (doubles each retry).
    #[serde(with = "dur")]
    pub backoff: Duration,
    /// Per-attempt timeout.
    #[serde(with = "dur")]
    pub timeout: Duration,
    /// Most notifications queued or being sent at once (each holds a copy of its incident);
    /// one beyond it is dropped, counted and recorded in the incident's timeline.
    pub max_pending: usize,
    /// Most silences active or pending at once; as many expired ones are kept at most.
    pub max_silences: usize,
    /// How long expired silences are kept (listed, for the record).
    #[serde(with = "dur")]
    pub silence_retention: Duration,
    /// Where to send.
    pub targets: Vec<NotifyTarget>,
}

impl Default for NotifyCfg {
    fn default() -> Self {
        Self {
            allow: Vec::new(),
            retries: 3,
            backoff: Duration::from_secs(1),
            timeout: Duration::from_secs(10),
            max_pending: 1000,
            external_url: String::new(),
            max_silences: 1000,
            silence_retention: Duration::from_secs(5 * 86_400),
            targets: Vec::new(),
        }
    }
}

/// `[[notify.targets]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifyTarget {
    /// `webhook`, `slack`, `pagerduty` or `alertmanager`.
    pub kind: String,
    /// Where to POST.
    pub url: String,
    /// Webhook: HMAC-SHA256 key.
    #[serde(default)]
    pub secret: String,
    /// PagerDuty: integration (routing) key.
    #[serde(default)]
    pub routing_key: String,
    /// A name for the timeline (default: the kind).
    #[serde(default)]
    pub name: String,
    /// Only incidents at or above this severity: `info` (default: all), `warning`,
    /// `critical`. An incident below it is never announced here, nor its resolution.
    #[serde(default = "lowest_severity")]
    pub min_severity: auspex_incidents::Severity,
    /// Only these events (default: all): `opened`, `escalated`, `reopened`, `resolved`.
    #[serde(default)]
    pub events: Vec<crate::notify::Event>,
    /// Only incidents touching one of these services (default: all).
    #[serde(default)]
    pub services: Vec<String>,
    /// Only incidents with a signal carrying every one of these label values, e.g.
    /// `{namespace = "payments"}` (default: all).
    #[serde(default)]
    pub labels: std::collections::BTreeMap<String, String>,
    /// Alertmanager: how often the alerts of active incidents are sent again (each is valid
    /// for four times this, as Prometheus does; default 1m).
    #[serde(default = "default_resend", with = "dur")]
    pub resend: Duration,
}

fn default_resend() -> Duration {
    Duration::from_secs(60)
}

fn lowest_severity() -> auspex_incidents::Severity {
    auspex_incidents::Severity::Info
}

/// `[store]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreCfg {
    /// `full` (default): every commit is fsynced, so an acknowledged write survives a power
    /// loss. `normal`: no fsync per commit; survives a crash of the process, not of the
    /// machine.
    pub synchronous: String,
}

impl Default for StoreCfg {
    fn default() -> Self {
        Self { synchronous: "full".into() }
    }
}

/// `[mlflow]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MlflowCfg {
    /// Largest artifact upload (413 above).
    pub max_artifact_bytes: u64,
    /// Largest JSON request body (413 above).
    pub max_request_bytes: usize,
    /// Artifact uploads streamed at once; more wait their turn, bodies unread.
    pub max_inflight_uploads: usize,
    /// Where artifacts are stored: empty for `<data-dir>/artifacts`, or `s3://bucket/prefix`
    /// for any S3-compatible store (credentials, region and endpoint from the standard
    /// `AWS_*` environment variables, e.g. `AWS_ENDPOINT=http://127.0.0.1:9000` and
    /// `AWS_ALLOW_HTTP=true` for a local one).
    pub artifacts_destination: String,
}

impl Default for MlflowCfg {
    fn default() -> Self {
        Self {
            max_artifact_bytes: 5 << 30,
            max_request_bytes: 32 << 20,
            max_inflight_uploads: 8,
            artifacts_destination: String::new(),
        }
    }
}

/// `[limits]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Largest compressed body.
    pub max_body_bytes: usize,
    /// Largest decompressed body.
    pub max_decoded_bytes: usize,
    /// Most active (in-memory) series.
    pub max_active_series: usize,
    /// Most concurrent write requests.
    pub max_inflight_writes: usize,
    /// Most request-body bytes held in memory at once, across every route: a request that
    /// does not fit is answered 503, its body dropped as it arrives, never kept.
    pub max_inflight_body_bytes: usize,
    /// Most connections open at once; accepting waits beyond.
    pub max_connections: usize,
    /// Most connections open at once from one address; one beyond is closed at once.
    pub max_connections_per_address: usize,
    /// A connection with no byte read or written for this long, while waiting to read, is
    /// closed.
    #[serde(with = "dur")]
    pub connection_idle_timeout: Duration,
    /// A connection must send a request's complete headers within this long of the server
    /// being ready for them (the connection opened, or the previous response sent), or it is
    /// closed: slow headers, and keep-alive connections idle this long.
    #[serde(with = "dur")]
    pub header_read_timeout: Duration,
    /// A request body must arrive within this long of the server starting to read it, plus
    /// one second per `request_body_min_rate` bytes received; slower gets 408.
    #[serde(with = "dur")]
    pub request_body_timeout: Duration,
    /// Bytes per second a body must average beyond its `request_body_timeout` grace (0: no
    /// limit).
    pub request_body_min_rate: u64,
    /// Most labels per series.
    pub max_labels: usize,
    /// Longest label name.
    pub max_label_name_len: usize,
    /// Longest label value.
    pub max_label_value_len: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_body_bytes: 10 << 20,
            max_decoded_bytes: 64 << 20,
            max_active_series: 200_000,
            max_inflight_writes: 64,
            max_inflight_body_bytes: 256 << 20,
            max_connections: 1024,
            max_connections_per_address: 256,
            connection_idle_timeout: Duration::from_secs(120),
            header_read_timeout: Duration::from_secs(60),
            request_body_timeout: Duration::from_secs(30),
            request_body_min_rate: 1024,
            max_labels: 64,
            max_label_name_len: 256,
            max_label_value_len: 2048,
        }
    }
}

/// `[detector]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DetectorCfg {
    /// Sensitivity in [0, 1].
    pub sensitivity: f64,
}

impl Default for DetectorCfg {
    fn default() -> Self {
        Self { sensitivity: 0.5 }
    }
}

/// `[series]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SeriesCfg {
    /// Idle time before eviction.
    #[serde(with = "dur")]
    pub idle_timeout: Duration,
    /// Snapshot interval.
    #[serde(with = "dur")]
    pub snapshot_interval: Duration,
}

impl Default for SeriesCfg {
    fn default() -> Self {
        Self { idle_timeout: Duration::from_secs(3600), snapshot_interval: Duration::from_secs(30) }
    }
}

/// `[retention]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionCfg {
    /// How long closed signals are kept.
    #[serde(with = "dur")]
    pub signals: Duration,
}

impl Default for RetentionCfg {
    fn default() -> Self {
        Self { signals: Duration::from_secs(30 * 86_400) }
    }
}

/// `[metrics]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsCfg {
    /// Lowest score exported as a gauge.
    pub anomaly_score_min: f64,
    /// Most series exported as gauges.
    pub anomaly_score_max_series: usize,
}

impl Default for MetricsCfg {
    fn default() -> Self {
        Self { anomaly_score_min: 0.5, anomaly_score_max_series: 1000 }
    }
}

/// Parses a duration like `30s`, `5m`, `1h`, `7d`, `250ms`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 =
        num.parse().map_err(|_| format!("bad duration {s:?} (use e.g. 30s, 5m, 1h, 7d)"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" | "" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        "d" => n * 86_400.0,
        "w" => n * 604_800.0,
        _ => return Err(format!("bad duration unit in {s:?} (use ms, s, m, h, d or w)")),
    };
    if !secs.is_finite() || !(0.0..=1e10).contains(&secs) {
        return Err(format!("duration {s:?} out of range"));
    }
    Ok(Duration::from_secs_f64(secs))
}

mod dur {
    use serde::{Deserialize, Deserializer};
    use std::time::Duration;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let s = String::deserialize(d)?;
        super::parse_duration(&s).map_err(serde::de::Error::custom)
    }
}

/// A number of topology links, or the string `"off"` (`None`).
mod hops_or_off {
    use serde::{Deserialize, Deserializer};

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Hops {
        N(usize),
        S(String),
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<usize>, D::Error> {
        match Hops::deserialize(d) {
            Ok(Hops::N(n)) => Ok(Some(n)),
            Ok(Hops::S(s)) if s == "off" => Ok(None),
            _ => Err(serde::de::Error::custom("expected a number of topology links, or \"off\"")),
        }
    }
}

impl Config {
    /// The most body bytes one request can hold in memory, and the setting behind it: the
    /// largest of the body limits of the routes that read whole bodies (artifact uploads
    /// stream instead, bounded by `mlflow.max_inflight_uploads`).
    pub fn largest_body(&self) -> (usize, &'static str) {
        [
            (self.limits.max_body_bytes, "limits.max_body_bytes"),
            (self.traces.max_body_bytes, "traces.max_body_bytes"),
            (self.mlflow.max_request_bytes, "mlflow.max_request_bytes"),
            (crate::http::OTHER_BODY_BYTES, "the other routes' body limit"),
        ]
        .into_iter()
        .max_by_key(|&(n, _)| n)
        .unwrap_or((0, ""))
    }

    /// The decoder's view of the limits.
    pub fn decode_limits(&self) -> auspex_ingest::remote_write::Limits {
        let l = &self.limits;
        auspex_ingest::remote_write::Limits {
            max_body_bytes: l.max_body_bytes,
            max_decoded_bytes: l.max_decoded_bytes,
            max_labels: l.max_labels,
            max_name_len: l.max_label_name_len,
            max_value_len: l.max_label_value_len,
        }
    }

    /// Reads and validates a TOML file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError(format!("cannot read config {}: {e}", path.display())))?;
        Self::parse(&text).map_err(|e| ConfigError(format!("config {}: {}", path.display(), e.0)))
    }

    /// Parses and validates TOML text.
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        let cfg: Config = toml::from_str(text).map_err(|e| {
            // The message alone does not say which key; the line it points at does.
            let at = e.span().and_then(|r| {
                let start = text.get(..r.start)?;
                let n = start.matches('\n').count() + 1;
                let line = text.lines().nth(n - 1)?.trim();
                let short: String = line.chars().take(80).collect();
                let more = if short.len() < line.len() { "…" } else { "" };
                Some(format!("line {n} (`{short}{more}`): "))
            });
            ConfigError(format!("{}{}", at.unwrap_or_default(), e.message()))
        })?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Checks ranges.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |what: &str, why: &str| Err(ConfigError(format!("{what}: {why}")));
        let l = &self.limits;
        if l.max_body_bytes < 1024 {
            return bad("limits.max_body_bytes", "must be at least 1024");
        }
        if l.max_decoded_bytes < l.max_body_bytes {
            return bad("limits.max_decoded_bytes", "must be at least limits.max_body_bytes");
        }
        if l.max_active_series == 0 {
            return bad("limits.max_active_series", "must be at least 1");
        }
        if l.max_inflight_writes == 0 {
            return bad("limits.max_inflight_writes", "must be at least 1");
        }
        if l.max_connections_per_address == 0 {
            return bad("limits.max_connections_per_address", "must be at least 1");
        }
        if l.max_connections == 0 {
            return bad("limits.max_connections", "must be at least 1");
        }
        if l.connection_idle_timeout < Duration::from_secs(1) {
            return bad("limits.connection_idle_timeout", "must be at least 1s");
        }
        if l.header_read_timeout < Duration::from_secs(1) {
            return bad("limits.header_read_timeout", "must be at least 1s");
        }
        if l.request_body_timeout < Duration::from_secs(1) {
            return bad("limits.request_body_timeout", "must be at least 1s");
        }
        if l.max_labels == 0 || l.max_label_name_len == 0 || l.max_label_value_len == 0 {
            return bad("limits.max_labels / max_label_*_len", "must be at least 1");
        }
        if !matches!(self.store.synchronous.as_str(), "full" | "normal") {
            return bad("store.synchronous", "must be \"full\" or \"normal\"");
        }
        let dest = &self.mlflow.artifacts_destination;
        if !dest.is_empty() && !dest.starts_with("s3://") {
            return bad(
                "mlflow.artifacts_destination",
                "must be empty (local files) or s3://bucket/prefix",
            );
        }
        if self.mlflow.max_inflight_uploads == 0 {
            return bad("mlflow.max_inflight_uploads", "must be at least 1");
        }
        if self.mlflow.max_request_bytes < 1024 {
            return bad("mlflow.max_request_bytes", "must be at least 1024");
        }
        if !(0.0..=1.0).contains(&self.detector.sensitivity) {
            return bad("detector.sensitivity", "must be within [0, 1]");
        }
        if self.series.snapshot_interval < Duration::from_millis(100) {
            return bad("series.snapshot_interval", "must be at least 100ms");
        }
        if self.series.idle_timeout < self.series.snapshot_interval {
            return bad("series.idle_timeout", "must be at least series.snapshot_interval");
        }
        if !(0.0..=1.0).contains(&self.metrics.anomaly_score_min) {
            return bad("metrics.anomaly_score_min", "must be within [0, 1]");
        }
        let tr = &self.traces;
        if tr.max_body_bytes < 1024
            || tr.max_spans_per_request == 0
            || tr.max_spans == 0
            || tr.max_services == 0
        {
            return bad(
                "traces",
                "max_body_bytes must be at least 1024, the span limits at least 1",
            );
        }
        if tr.max_decoded_bytes < tr.max_body_bytes {
            return bad("traces.max_decoded_bytes", "must be at least traces.max_body_bytes");
        }
        if tr.bucket < Duration::from_secs(1) {
            return bad("traces.bucket", "must be at least 1s");
        }
        let inc = &self.incidents;
        if inc.max_incidents == 0 {
            return bad("incidents.max_incidents", "must be at least 1");
        }
        if inc.tick < Duration::from_millis(100) {
            return bad("incidents.tick", "must be at least 100ms");
        }
        if inc.flap_threshold < 2 {
            return bad("incidents.flap_threshold", "must be at least 2");
        }
        if !(inc.hub_factor.is_finite() && inc.hub_factor >= 0.0) {
            return bad("incidents.hub_factor", "must be a number at least 0");
        }
        let (cap, what) = self.largest_body();
        if self.limits.max_inflight_body_bytes < cap {
            return bad(
                "limits.max_inflight_body_bytes",
                &format!("must be at least {what} ({cap} bytes), or such a request never fits"),
            );
        }
        if self.notify.max_silences == 0 {
            return bad("notify.max_silences", "must be at least 1");
        }
        if self.notify.max_pending == 0 {
            return bad("notify.max_pending", "must be at least 1");
        }
        let ext = &self.notify.external_url;
        if !(ext.is_empty() || ext.starts_with("http://") || ext.starts_with("https://")) {
            return bad(
                "notify.external_url",
                &format!("{ext:?} must start with http:// or https://"),
            );
        }
        for a in &self.notify.allow {
            if !(a.starts_with("http://") || a.starts_with("https://")) {
                return bad("notify.allow", &format!("{a:?} must start with http:// or https://"));
            }
        }
        for (i, t) in self.notify.targets.iter().enumerate() {
            let what = format!("notify.targets[{i}]");
            if !matches!(t.kind.as_str(), "webhook" | "slack" | "pagerduty" | "alertmanager") {
                return bad(&what, "kind must be webhook, slack, pagerduty or alertmanager");
            }
            if t.kind == "alertmanager" && !t.events.is_empty() {
                let why = "events does not apply to alertmanager: it gets the incident's alert \
                           on every change (route on its labels in Alertmanager instead)";
                return bad(&what, why);
            }
            if t.resend < Duration::from_secs(1) {
                return bad(&what, "resend must be at least 1s");
            }
            if !crate::notify::allowed(&self.notify.allow, &t.url) {
                return bad(
                    &what,
                    &format!("url {:?} is not in notify.allow (add its prefix there)", t.url),
                );
            }
            if t.kind == "pagerduty" && t.routing_key.is_empty() {
                return bad(&what, "pagerduty needs routing_key");
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notify_max_pending_is_bounded_and_positive() {
        assert_eq!(Config::parse("").unwrap().notify.max_pending, 1000);
        assert_eq!(Config::parse("[notify]\nmax_pending = 5").unwrap().notify.max_pending, 5);
        let e = Config::parse("[notify]\nmax_pending = 0").unwrap_err().to_string();
        assert!(e.contains("notify.max_pending"), "{e}");
    }

    #[test]
    fn defaults_and_parsing() {
        let c = Config::parse("").unwrap();
        assert_eq!(c.series.snapshot_interval, Duration::from_secs(30));
        let c = Config::parse("[series]\nsnapshot_interval = \"2s\"\nidle_timeout = \"10m\"\n[detector]\nsensitivity = 0.8").unwrap();
        assert_eq!(c.series.idle_timeout, Duration::from_secs(600));
        assert_eq!(c.detector.sensitivity, 0.8);
    }

    #[test]
    fn clear_errors() {
        let e = Config::parse("[limits]\nmax_labelz = 3").unwrap_err().0;
        assert!(e.contains("unknown field `max_labelz`"), "{e}");
        let e = Config::parse("[detector]\nsensitivity = 3.0").unwrap_err().0;
        assert_eq!(e, "detector.sensitivity: must be within [0, 1]");
        let e = Config::parse("[series]\nsnapshot_interval = \"soon\"").unwrap_err().0;
        assert!(e.contains("bad duration"), "{e}");
        assert!(Config::parse("[limits]\nmax_active_series = 0").is_err());
        let e = Config::parse("[limits]\nmax_connections = 0").unwrap_err().0;
        assert_eq!(e, "limits.max_connections: must be at least 1");
        let e = Config::parse("[limits]\nconnection_idle_timeout = \"10ms\"").unwrap_err().0;
        assert_eq!(e, "limits.connection_idle_timeout: must be at least 1s");
        let c = Config::parse("[limits]\nconnection_idle_timeout = \"30s\"").unwrap();
        assert_eq!(c.limits.connection_idle_timeout, Duration::from_secs(30));
        let e = Config::parse("[limits]\nheader_read_timeout = \"0s\"").unwrap_err().0;
        assert_eq!(e, "limits.header_read_timeout: must be at least 1s");
        let e = Config::parse("[limits]\nrequest_body_timeout = \"500ms\"").unwrap_err().0;
        assert_eq!(e, "limits.request_body_timeout: must be at least 1s");
        let e = Config::parse("[limits]\nrequest_body_min_rate = -1").unwrap_err().0;
        assert_eq!(
            e,
            "line 2 (`request_body_min_rate = -1`): invalid value: integer `-1`, expected u64"
        );
        let long = format!("[limits]\nmax_labels = \"{}\"", "x".repeat(500));
        let e = Config::parse(&long).unwrap_err().0;
        assert!(e.starts_with("line 2 (`max_labels = \"xxx") && e.contains("x…`): "), "{e}");
        assert!(e.find("`): ").is_some_and(|i| i < 120), "the line is shortened: {e}");
        let e = Config::parse("[incidents]\nhub_factor = -1.0").unwrap_err().0;
        assert_eq!(e, "incidents.hub_factor: must be a number at least 0");
        let c = Config::parse("[incidents]\nhub_factor = 0").unwrap();
        assert_eq!(c.incidents.correlator().hub_factor, 0.0);
        assert_eq!(c.incidents.correlator().onset_hops, None);
        let c = Config::parse("[incidents]\nonset_hops = 2").unwrap();
        assert_eq!(c.incidents.correlator().onset_hops, Some(2));
        assert!(Config::parse("[incidents]\nonset_hops = -1").is_err());
        assert_eq!(c.incidents.correlator().busy_onset_hops, Some(1));
        let c = Config::parse("[incidents]\nbusy_onset_hops = \"off\"").unwrap();
        assert_eq!(c.incidents.correlator().busy_onset_hops, None);
        let c = Config::parse("[incidents]\nbusy_onset_hops = 3").unwrap();
        assert_eq!(c.incidents.correlator().busy_onset_hops, Some(3));
        let e = Config::parse("[incidents]\nbusy_onset_hops = \"never\"").unwrap_err().0;
        assert!(e.contains("number of topology links, or \"off\""), "{e}");
    }

    /// The body budget must hold the largest request any route accepts.
    #[test]
    fn the_body_budget_fits_the_largest_request() {
        let c = Config::parse("").unwrap();
        assert_eq!(c.largest_body(), (32 << 20, "mlflow.max_request_bytes"));
        let e = Config::parse("[limits]\nmax_inflight_body_bytes = 1048576").unwrap_err().0;
        assert!(e.starts_with("limits.max_inflight_body_bytes: must be at least"), "{e}");
        assert!(e.contains("mlflow.max_request_bytes (33554432 bytes)"), "{e}");
        let c = Config::parse("[limits]\nmax_body_bytes = 104857600\nmax_decoded_bytes = 104857600\nmax_inflight_body_bytes = 104857600")
            .unwrap();
        assert_eq!(c.largest_body(), (100 << 20, "limits.max_body_bytes"));
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("1.5h").unwrap(), Duration::from_secs(5400));
        assert!(parse_duration("5 parsecs").is_err());
        assert!(parse_duration("").is_err());
    }
}
