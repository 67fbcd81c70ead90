//! Command-line definition, dispatch, and the error/exit-code convention:
//! 0 success; 1 the command ran and found a failure; 2 usage or input error.
//! Errors print as `error: <what>: <why> (<hint>)`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Auspex: AIOps + MLOps in one binary. Watches telemetry, detects and explains anomalies.
#[derive(Debug, Parser)]
#[command(name = "auspex", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Score a `timestamp,value` CSV series for anomalies, one output row per input row.
    Detect(DetectArgs),
    /// Run a benchmark and print its figures as key=value lines.
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Run the server: Prometheus remote-write in, streaming detection, signals out.
    Serve(ServeArgs),
    /// Signals (anomalies and, later, alerts and changes) from a server.
    #[command(subcommand)]
    Signals(SignalsCommand),
    /// Series known to a server.
    #[command(subcommand)]
    Series(SeriesCommand),
    /// Log templates: mine files offline.
    #[command(subcommand)]
    Logs(LogsCommand),
    /// Change events (deploys, config and flag changes) for correlation with incidents.
    #[command(subcommand)]
    Events(EventsCommand),
    /// The model registry (any MLflow-compatible server): list, show, gate-and-promote, lineage.
    #[command(subcommand)]
    Models(ModelsCommand),
    /// Incidents on a server: signals folded together by time, labels and topology.
    ///
    /// The same in a browser: http://127.0.0.1:9797/ui/incidents (a page per incident, with
    /// its signals on a time axis).
    #[command(subcommand)]
    Incidents(IncidentsCommand),
    /// Silences: mute the notifications of incidents during maintenance or while a known
    /// problem is worked on. Incidents still open and group as usual; what a silence held back
    /// is sent when it ends, if the incident is still active.
    ///
    /// The same in a browser: http://127.0.0.1:9797/ui/silences.
    #[command(subcommand)]
    Silences(SilencesCommand),
}

#[derive(Debug, Subcommand)]
pub enum SilencesCommand {
    /// Create a silence: an incident whose every signal matches it sends no notification.
    #[command(
        after_help = "Examples:\n  auspex silences add --match service=checkout --duration 2h --comment 'db upgrade'\n  auspex silences add --match 'alertname=~Disk.*' --match env!=prod --ends 2026-12-24T08:00:00Z --comment 'holiday'"
    )]
    Add(SilenceAddArgs),
    /// List silences (active and pending by default).
    List(SilencesListArgs),
    /// End a silence now; what it held back of still-active incidents is sent at once.
    Expire(SilenceExpireArgs),
}

#[derive(Debug, Args)]
pub struct SilenceAddArgs {
    /// A label matcher, Alertmanager style: `name=value`, `name!=value`, `name=~regex`,
    /// `name!~regex` (regexes are anchored); repeat for more, all must hold.
    #[arg(long = "match", value_name = "MATCHER", required = true)]
    pub matchers: Vec<String>,
    /// How long from its start, e.g. 2h or 30m.
    #[arg(long, conflicts_with = "ends", required_unless_present = "ends")]
    pub duration: Option<String>,
    /// When it ends (RFC 3339 or Unix seconds).
    #[arg(long)]
    pub ends: Option<String>,
    /// When it starts (RFC 3339 or Unix seconds) [default: now].
    #[arg(long)]
    pub starts: Option<String>,
    /// Why (required: the next person on call will want to know).
    #[arg(long)]
    pub comment: String,
    /// Who [default: $USER].
    #[arg(long)]
    pub by: Option<String>,
    #[command(flatten)]
    pub server: ServerOpt,
}

#[derive(Debug, Args)]
pub struct SilencesListArgs {
    /// Which: current (active and pending), active, pending, expired or all.
    #[arg(long, default_value = "current", value_parser = ["current", "active", "pending", "expired", "all"])]
    pub state: String,
    #[command(flatten)]
    pub server: ServerOpt,
}

#[derive(Debug, Args)]
pub struct SilenceExpireArgs {
    /// The silence id (16 hex digits, from `auspex silences list`).
    pub id: String,
    #[command(flatten)]
    pub server: ServerOpt,
}

#[derive(Debug, Subcommand)]
pub enum IncidentsCommand {
    /// List incidents, newest first.
    List(IncidentsListArgs),
    /// Show one incident: its signals, the change events around it, and its timeline.
    Show(IncidentShowArgs),
    /// Acknowledge an incident (someone is on it).
    Ack(IncidentActionArgs),
    /// Resolve an incident by hand.
    Resolve(IncidentActionArgs),
    /// Merge another incident into this one (they are one problem): the other's signals, and
    /// their later repeats, join this incident; the other is resolved as merged.
    Merge(IncidentMergeArgs),
    /// Split signals out of an incident into a new one (they were grouped wrongly); their
    /// later repeats go to the new incident.
    Split(IncidentSplitArgs),
}

#[derive(Debug, Args)]
pub struct IncidentsListArgs {
    /// Only incidents in this state.
    #[arg(long, default_value = "all", value_parser = ["all", "open", "acknowledged", "resolved"])]
    pub status: String,
    /// At most this many.
    #[arg(long, default_value_t = 100)]
    pub limit: usize,
    #[command(flatten)]
    pub server: ServerOpt,
}

#[derive(Debug, Args)]
pub struct IncidentShowArgs {
    /// The incident id (16 hex digits, from `auspex incidents list`).
    pub id: String,
    #[command(flatten)]
    pub server: ServerOpt,
}

#[derive(Debug, Args)]
pub struct IncidentSplitArgs {
    /// The incident to split (16 hex digits).
    pub id: String,
    /// A signal to move, by its fingerprint (the FINGERPRINT column of `incidents show`);
    /// repeat for more. At least one signal must stay.
    #[arg(long = "signal", required = true)]
    pub signals: Vec<String>,
    /// Who (recorded in both timelines) [default: $USER].
    #[arg(long)]
    pub by: Option<String>,
    #[command(flatten)]
    pub server: ServerOpt,
}

#[derive(Debug, Args)]
pub struct IncidentMergeArgs {
    /// The incident that stays (16 hex digits).
    pub id: String,
    /// The incident merged into it, then resolved.
    #[arg(long)]
    pub from: String,
    /// Who (recorded in both timelines) [default: $USER].
    #[arg(long)]
    pub by: Option<String>,
    #[command(flatten)]
    pub server: ServerOpt,
}

#[derive(Debug, Args)]
pub struct IncidentActionArgs {
    /// The incident id (16 hex digits, from `auspex incidents list`).
    pub id: String,
    /// Who (recorded in the timeline) [default: $USER].
    #[arg(long)]
    pub by: Option<String>,
    #[command(flatten)]
    pub server: ServerOpt,
}

#[derive(Debug, Subcommand)]
pub enum EventsCommand {
    /// Record a change event on the server (it becomes a `change` signal).
    #[command(disable_version_flag = true)]
    Send(EventsSendArgs),
}

#[derive(Debug, Args)]
pub struct EventsSendArgs {
    /// What changed.
    #[arg(long, value_parser = ["deploy", "config", "flag"])]
    pub kind: String,
    /// The service that changed.
    #[arg(long)]
    pub service: String,
    /// The new version.
    #[arg(long)]
    pub version: Option<String>,
    /// More labels, `key=value`; repeatable.
    #[arg(long = "label", value_name = "KEY=VALUE")]
    pub labels: Vec<String>,
    /// Free text.
    #[arg(long)]
    pub description: Option<String>,
    /// When (RFC 3339); now when absent.
    #[arg(long)]
    pub time: Option<String>,
    #[command(flatten)]
    pub server: ServerOpt,
}

#[derive(Debug, Subcommand)]
pub enum ModelsCommand {
    /// List registered models with their latest version and aliases.
    List(ModelsListArgs),
    /// Show a model's versions, stages and aliases.
    Show(ModelsShowArgs),
    /// Point an alias at a version if its source run passes the gates (exit 1 if not).
    Promote(ModelsPromoteArgs),
    /// Print a version's lineage: source run, datasets, git commit, who registered and promoted it.
    Lineage(ModelsLineageArgs),
}

/// Where the registry is: `--server`, then `$MLFLOW_TRACKING_URI`, then `$AUSPEX_SERVER`,
/// then the default address.
#[derive(Debug, Args)]
pub struct ModelsServerOpt {
    /// Server base URL [default: $MLFLOW_TRACKING_URI, else $AUSPEX_SERVER, else http://127.0.0.1:9797].
    #[arg(long)]
    pub server: Option<String>,
    /// Print machine-readable JSON.
    #[arg(long)]
    pub json: bool,
}

impl ModelsServerOpt {
    /// The resolved base URL, without a trailing slash.
    pub fn url(&self) -> String {
        self.server
            .clone()
            .or_else(|| std::env::var("MLFLOW_TRACKING_URI").ok().filter(|s| s.starts_with("http")))
            .or_else(|| std::env::var("AUSPEX_SERVER").ok().filter(|s| !s.is_empty()))
            .unwrap_or_else(|| format!("http://{DEFAULT_LISTEN}"))
            .trim_end_matches('/')
            .to_string()
    }
}

#[derive(Debug, Args)]
pub struct ModelsListArgs {
    #[command(flatten)]
    pub server: ModelsServerOpt,
}

#[derive(Debug, Args)]
pub struct ModelsShowArgs {
    /// Registered model name.
    pub name: String,
    #[command(flatten)]
    pub server: ModelsServerOpt,
}

#[derive(Debug, Args)]
pub struct ModelsLineageArgs {
    /// Registered model name.
    pub name: String,
    /// Version number.
    #[arg(value_name = "VERSION")]
    pub model_version: String,
    #[command(flatten)]
    pub server: ModelsServerOpt,
}

#[derive(Debug, Args)]
pub struct ModelsPromoteArgs {
    /// Registered model name.
    pub name: String,
    /// Version number to promote.
    #[arg(value_name = "VERSION")]
    pub model_version: String,
    /// The alias to point at the version (e.g. champion).
    #[arg(long)]
    pub alias: String,
    /// A gate on the version's source run, in MLflow's filter grammar
    /// (e.g. "metrics.accuracy >= 0.9"); repeatable, all must hold.
    #[arg(long)]
    pub require: Vec<String>,
    /// Also require each metric named in --require to be at least as good as on the version
    /// that holds this alias now (e.g. champion).
    #[arg(long)]
    pub vs: Option<String>,
    /// Metrics where higher is better (default: the direction of the --require comparison,
    /// `>`/`>=` higher, `<`/`<=` lower).
    #[arg(long, value_name = "METRIC")]
    pub higher_is_better: Vec<String>,
    /// Metrics where lower is better.
    #[arg(long, value_name = "METRIC")]
    pub lower_is_better: Vec<String>,
    #[command(flatten)]
    pub server: ModelsServerOpt,
}

#[derive(Debug, Subcommand)]
pub enum LogsCommand {
    /// Mine templates and write `LineId,EventId,EventTemplate`, one row per physical line.
    Parse(LogsParseArgs),
    /// List the templates with their counts, an example and the parameters.
    Templates(LogsTemplatesArgs),
}

#[derive(Debug, Args)]
pub struct LogsParseArgs {
    /// Input log file (`-` for stdin).
    #[arg(long, short)]
    pub input: PathBuf,
    /// Header format in logparser's log_format syntax (e.g. "<Date> <Time> <Level>: <Content>"),
    /// or `raw`, `json`, `logfmt`.
    #[arg(long, default_value = "raw")]
    pub log_format: String,
    /// Threads for header splitting (mining is sequential; the output does not change).
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// Output CSV (`-` for stdout).
    #[arg(long, short)]
    pub output: PathBuf,
}

#[derive(Debug, Args)]
pub struct LogsTemplatesArgs {
    /// Input log file (`-` for stdin).
    #[arg(long, short)]
    pub input: PathBuf,
    /// Header format, or `raw`, `json`, `logfmt`.
    #[arg(long, default_value = "raw")]
    pub log_format: String,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// Where to find the server: `--server`, then `$AUSPEX_SERVER`, then the default address.
#[derive(Debug, Args)]
pub struct ServerOpt {
    /// Server base URL [default: $AUSPEX_SERVER, else http://127.0.0.1:9797].
    #[arg(long)]
    pub server: Option<String>,
    /// Print machine-readable JSON.
    #[arg(long)]
    pub json: bool,
}

impl ServerOpt {
    /// The resolved base URL, without a trailing slash.
    pub fn url(&self) -> String {
        self.server
            .clone()
            .or_else(|| std::env::var("AUSPEX_SERVER").ok().filter(|s| !s.is_empty()))
            .unwrap_or_else(|| format!("http://{DEFAULT_LISTEN}"))
            .trim_end_matches('/')
            .to_string()
    }
}

/// The default listen address of `auspex serve`.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:9797";

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, default_value = DEFAULT_LISTEN)]
    pub listen: String,
    /// Folder for the embedded store (SQLite) and local files.
    #[arg(long, default_value = "./auspex-data")]
    pub data_dir: PathBuf,
    /// TOML configuration file (limits, retention, detector sensitivity).
    #[arg(long)]
    pub config: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum SignalsCommand {
    /// List signals, newest first.
    List(SignalsListArgs),
}

#[derive(Debug, Args)]
pub struct SignalsListArgs {
    #[command(flatten)]
    pub server: ServerOpt,
    /// How far back to look (e.g. 30m, 24h, 7d).
    #[arg(long, default_value = "24h")]
    pub since: String,
    /// Most signals to list.
    #[arg(long, default_value_t = 1000)]
    pub limit: usize,
}

#[derive(Debug, Subcommand)]
pub enum SeriesCommand {
    /// List series with their state (warming, active, idle) and latest score.
    List(SeriesListArgs),
}

#[derive(Debug, Args)]
pub struct SeriesListArgs {
    #[command(flatten)]
    pub server: ServerOpt,
    /// Most series to list.
    #[arg(long, default_value_t = 10_000)]
    pub limit: usize,
}

/// Units for bare numeric timestamps.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum TsUnit {
    /// Unix seconds.
    S,
    /// Unix milliseconds.
    Ms,
}

#[derive(Debug, Args)]
pub struct DetectArgs {
    /// Input CSV with the header `timestamp,value` (`-` for stdin).
    #[arg(long, short)]
    pub input: PathBuf,
    /// Output CSV `timestamp,value,anomaly_score` (`-` for stdout).
    #[arg(long, short)]
    pub output: PathBuf,
    /// Add the columns `expected,lower,upper,anomalous_since,is_anomaly`.
    #[arg(long)]
    pub explain: bool,
    /// How readily a point is flagged `is_anomaly`, in [0, 1] (higher flags more). Moves the
    /// decision and the band, not the score.
    #[arg(long, default_value_t = 0.5)]
    pub sensitivity: f64,
    /// Unit of bare numeric timestamps.
    #[arg(long, value_enum, default_value = "s")]
    pub ts_unit: TsUnit,
    /// Also draw the series, its normal band and the anomalies as an SVG picture.
    #[arg(long, value_name = "FILE.svg")]
    pub plot: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum BenchCommand {
    /// Run the detector over a NAB-shaped corpus, write results, and score them like
    /// `nab_score.py` (all three profiles).
    Nab(NabArgs),
    /// Measure detector throughput (points/s, one thread) and heap bytes per series on a
    /// seasonal synthetic series, with the configuration `bench nab` scores.
    Detect(BenchDetectArgs),
    /// Learn normal HDFS block sessions (label-0 training rows only) and flag anomalous test
    /// sessions; precision, recall and F1 of the anomalous class.
    HdfsSessions(HdfsArgs),
    /// Parse every system of a Loghub-shaped folder and score GA, PA, FGA, FTA like
    /// loghub_eval.py.
    Loghub(LoghubArgs),
    /// Load a remote-write receiver (Auspex or any other) and measure accepted samples/s,
    /// latency and the target's peak RSS.
    RemoteWrite(RemoteWriteArgs),
    /// Load an alert receiver, Auspex's Alertmanager webhook or Alertmanager's own
    /// /api/v2/alerts, with firing alerts and measure accepted alerts/s, latency and the
    /// target's peak RSS.
    Alerts(AlertsArgs),
    /// Build an alert storm from a PetShop-shaped folder (threshold alerts of overlapping
    /// cases plus flapping background alerts), fold it into incidents, and report compression
    /// and purity beside a time-only grouping.
    Storm(StormArgs),
    /// Replay a large synthetic alert storm (generated topology, faults that spread to
    /// callers, lone background alerts) through the incident correlator and measure alerts/s,
    /// per-alert latency, incidents held, compression and purity.
    Incidents(IncidentLoadArgs),
    /// Rank the root cause of every case of a PetShop-shaped folder, write the rankings as
    /// JSON lines, and print AC@1, AC@3 and Avg@5 beside the NSigma and BARO baselines.
    Rca(RcaArgs),
}

#[derive(Debug, Args)]
pub struct IncidentLoadArgs {
    /// Seed for the topology, the faults and the background.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Services in the generated topology.
    #[arg(long, default_value_t = 2_000)]
    pub services: usize,
    /// Faults; each raises 1–4 alerts on its root and on up to 3 caller hops.
    #[arg(long, default_value_t = 5_000)]
    pub faults: usize,
    /// Lone background alerts.
    #[arg(long, default_value_t = 20_000)]
    pub background: usize,
    /// Time the faults and background are spread over (e.g. 24h; 10m for a burst).
    #[arg(long, default_value = "24h")]
    pub span: String,
    /// The correlator's `max_incidents` (the memory bound) [default: as `[incidents]`].
    #[arg(long)]
    pub max_incidents: Option<usize>,
    /// Co-onset only within this many topology links (as `[incidents] onset_hops`)
    /// [default: any distance].
    #[arg(long)]
    pub onset_hops: Option<usize>,
    /// While the estate is busy, co-onset only within this many topology links (as
    /// `[incidents] busy_onset_hops`); `off`: never held back [default: 1].
    #[arg(long, value_parser = parse_busy_hops)]
    pub busy_onset_hops: Option<BusyHops>,
    /// Do not give the correlator the generated topology (as a server without a topology
    /// file); the alerts are the same.
    #[arg(long)]
    pub no_topology: bool,
    /// Also write the figures as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct RcaArgs {
    /// Scenario folder: graph.csv, noissue/metrics.csv, train/ and/or test/issue_*/.
    #[arg(long)]
    pub data: PathBuf,
    /// Where to write `{"case", "ranking", "explanations"}` JSON lines (for rca_score.py).
    #[arg(long)]
    pub output: PathBuf,
    /// Also write the figures as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct StormArgs {
    /// Scenario folder: graph.csv, noissue/metrics.csv, train/ and/or test/issue_*/.
    #[arg(long)]
    pub data: PathBuf,
    /// Seed for the case order, spacing, jitter and background choice.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Run this many seeds (from --seed on): a line per seed, then the medians and on how many
    /// seeds Auspex is purer than time alone at its own compression.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=1000))]
    pub seeds: u64,
    /// Cases to overlay (0: all in the folder).
    #[arg(long, default_value_t = 0)]
    pub cases: usize,
    /// Background series with a noisy (flapping) rule.
    #[arg(long, default_value_t = 8)]
    pub background: usize,
    /// The static alert rules: `max` (above 1.2 × the normal maximum; availability below the
    /// normal minimum − 1) or `p99` (above the normal 99th percentile; below the 1st).
    #[arg(long, default_value = "max", value_parser = ["max", "p99"])]
    pub rules: String,
    /// Rule evaluation interval (e.g. 1m): alerts start and resolve only on the ticks of one
    /// global schedule, as with one Prometheus rule group [default: none, each alert starts at
    /// its own instant up to a minute into its row].
    #[arg(long)]
    pub eval_interval: Option<String>,
    /// The correlator's window (as `[incidents] window`, e.g. 5m) [default: 10m].
    #[arg(long)]
    pub window: Option<String>,
    /// The correlator's co-onset burst (as `[incidents] burst`, e.g. 30s) [default: 2m].
    #[arg(long)]
    pub burst: Option<String>,
    /// Co-onset only within this many topology links (as `[incidents] onset_hops`)
    /// [default: any distance].
    #[arg(long)]
    pub onset_hops: Option<usize>,
    /// While the estate is busy, co-onset only within this many topology links (as
    /// `[incidents] busy_onset_hops`); `off`: never held back [default: 1].
    #[arg(long, value_parser = parse_busy_hops)]
    pub busy_onset_hops: Option<BusyHops>,
    /// Starts within the flap window that make a signal flapping (as `[incidents]
    /// flap_threshold`) [default: 3].
    #[arg(long, value_parser = clap::value_parser!(u64).range(2..=1000))]
    pub flap_threshold: Option<u64>,
    /// The flap window (as `[incidents] flap_window`, e.g. 15m) [default: 30m].
    #[arg(long)]
    pub flap_window: Option<String>,
    /// Also draw the storm as an SVG timeline: a bar per alert, grouped by incident, coloured by
    /// its true source case.
    #[arg(long)]
    pub plot: Option<PathBuf>,
    /// Also write every alert with its source and incident to this CSV file
    /// (`start_min,end_min,service,metric,statistic,source,incident`; source -1 = background).
    #[arg(long)]
    pub assignments: Option<PathBuf>,
    /// Also write the figures as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct HdfsArgs {
    /// Training CSV `Sequence,label` (only label-0 rows are read).
    #[arg(long)]
    pub train: PathBuf,
    /// Test CSV `Sequence,label` (labels used only for scoring).
    #[arg(long)]
    pub test: PathBuf,
    /// Also write the figures as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct LoghubArgs {
    /// Folder with `<System>/<System>_2k.log` and the structured truth files.
    #[arg(long)]
    pub data: PathBuf,
    /// formats.json (default DATA/formats.json).
    #[arg(long)]
    pub formats: Option<PathBuf>,
    /// Where to write `<System>.csv` predictions.
    #[arg(long, default_value = "./loghub-pred")]
    pub out: PathBuf,
    /// Also write the figures as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct RemoteWriteArgs {
    /// Full write URL, e.g. http://127.0.0.1:9797/api/v1/write.
    #[arg(long)]
    pub target: String,
    /// Number of series (one sample per series per round).
    #[arg(long)]
    pub series: usize,
    #[command(flatten)]
    pub load: LoadOpts,
}

/// How long and how hard a load generator pushes, and where its figures go.
#[derive(Debug, Args)]
pub struct LoadOpts {
    /// Duration in seconds.
    #[arg(long, default_value_t = 15.0)]
    pub duration: f64,
    /// Concurrent connections.
    #[arg(long, default_value_t = 4)]
    pub concurrency: usize,
    /// PID of the target, to read its peak RSS (VmHWM); else its /metrics is scraped.
    #[arg(long)]
    pub target_pid: Option<u32>,
    /// Also write the figures as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct AlertsArgs {
    /// Full URL: http://127.0.0.1:9797/auspex/v1/alertmanager (Auspex) or
    /// http://127.0.0.1:9093/api/v2/alerts (Alertmanager).
    #[arg(long)]
    pub target: String,
    /// Body format: `webhook` (Alertmanager's webhook payload, version 4, for Auspex) or
    /// `alertmanager` (a JSON array of alerts, for Alertmanager's /api/v2/alerts).
    #[arg(long, default_value = "webhook")]
    pub api: String,
    /// Distinct alerts (label sets) cycled through.
    #[arg(long, default_value_t = 10_000)]
    pub alerts: usize,
    /// Alerts per request.
    #[arg(long, default_value_t = 100)]
    pub per_request: usize,
    /// `new`: every alert posted is a new occurrence (a later startsAt); `redeliver`: the same
    /// firing alerts again and again.
    #[arg(long, default_value = "new")]
    pub mode: String,
    #[command(flatten)]
    pub load: LoadOpts,
}

#[derive(Debug, Args)]
pub struct NabArgs {
    /// NAB-shaped folder: `data/<category>/<file>.csv` and `labels/combined_windows.json`.
    #[arg(long)]
    pub data: PathBuf,
    /// Where to write `<category>/<file>.csv` results in the `detect` format.
    #[arg(long)]
    pub out: PathBuf,
    /// Also write the figures as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct BenchDetectArgs {
    /// Number of points to feed.
    #[arg(long, default_value_t = 10_000_000)]
    pub points: u64,
    /// Number of series for the heap measurement.
    #[arg(long, default_value_t = 1000)]
    pub series: usize,
    /// Also write the figures as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

/// An error with its exit code.
#[derive(Debug)]
pub struct Failure {
    pub code: u8,
    pub err: anyhow::Error,
}

impl Failure {
    /// Stop without a message and with success: the reader went away (broken pipe).
    pub fn quiet() -> Self {
        Self { code: 0, err: anyhow::anyhow!("") }
    }

    /// The command ran and found a failure, e.g. a gate (exit 1).
    pub fn failed(err: impl Into<anyhow::Error>) -> Self {
        Self { code: 1, err: err.into() }
    }

    /// A usage or input error (exit 2).
    pub fn input(err: impl Into<anyhow::Error>) -> Self {
        Self { code: 2, err: err.into() }
    }
}

impl<E: Into<anyhow::Error>> From<E> for Failure {
    fn from(e: E) -> Self {
        Self::input(e)
    }
}

pub type CmdResult = Result<ExitCode, Failure>;

/// Prints one line to stdout. A closed pipe (`auspex ... | head`) ends the command quietly.
pub fn say(line: &str) -> Result<(), Failure> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{line}") {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Err(Failure::quiet()),
        Err(e) => Err(Failure::input(anyhow::anyhow!("cannot write to stdout: {e}"))),
    }
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let res = match cli.command {
        Command::Detect(a) => crate::detect::run(&a),
        Command::Bench(BenchCommand::Nab(a)) => crate::bench::nab(&a),
        Command::Bench(BenchCommand::Detect(a)) => crate::bench::detect(&a),
        Command::Bench(BenchCommand::RemoteWrite(a)) => crate::loadgen::run(&a),
        Command::Bench(BenchCommand::Alerts(a)) => crate::alertload::run(&a),
        Command::Bench(BenchCommand::Storm(a)) => crate::bench::storm(&a),
        Command::Bench(BenchCommand::Incidents(a)) => crate::bench::incident_load(&a),
        Command::Bench(BenchCommand::Rca(a)) => crate::bench::rca(&a),
        Command::Serve(a) => crate::serve::run(&a),
        Command::Logs(LogsCommand::Parse(a)) => crate::logs::parse(&a),
        Command::Logs(LogsCommand::Templates(a)) => crate::logs::templates(&a),
        Command::Bench(BenchCommand::Loghub(a)) => crate::logs::bench_loghub(&a),
        Command::Bench(BenchCommand::HdfsSessions(a)) => crate::logs::bench_hdfs(&a),
        Command::Signals(SignalsCommand::List(a)) => crate::client::signals(&a),
        Command::Series(SeriesCommand::List(a)) => crate::client::series(&a),
        Command::Events(EventsCommand::Send(a)) => crate::client::send_event(&a),
        Command::Incidents(IncidentsCommand::List(a)) => crate::incidents::list(&a),
        Command::Incidents(IncidentsCommand::Show(a)) => crate::incidents::show(&a),
        Command::Incidents(IncidentsCommand::Ack(a)) => crate::incidents::act(&a, "ack"),
        Command::Incidents(IncidentsCommand::Resolve(a)) => crate::incidents::act(&a, "resolve"),
        Command::Incidents(IncidentsCommand::Merge(a)) => crate::incidents::merge(&a),
        Command::Incidents(IncidentsCommand::Split(a)) => crate::incidents::split(&a),
        Command::Silences(SilencesCommand::Add(a)) => crate::silences::add(&a),
        Command::Silences(SilencesCommand::List(a)) => crate::silences::list(&a),
        Command::Silences(SilencesCommand::Expire(a)) => crate::silences::expire(&a),
        Command::Models(ModelsCommand::List(a)) => crate::models::list(&a),
        Command::Models(ModelsCommand::Show(a)) => crate::models::show(&a),
        Command::Models(ModelsCommand::Promote(a)) => crate::models::promote(&a),
        Command::Models(ModelsCommand::Lineage(a)) => crate::models::lineage(&a),
    };
    match res {
        Ok(code) => code,
        Err(f) if f.code == 0 => ExitCode::SUCCESS,
        Err(f) => {
            let msg = format!("{:#}", f.err);
            eprintln!("error: {msg}");
            ExitCode::from(f.code)
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_command_definition_is_consistent() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}

/// `--busy-onset-hops`: a number of topology links, or `off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BusyHops(pub Option<usize>);

fn parse_busy_hops(s: &str) -> Result<BusyHops, String> {
    if s == "off" {
        return Ok(BusyHops(None));
    }
    s.parse::<usize>()
        .map(|n| BusyHops(Some(n)))
        .map_err(|_| format!("{s:?}: a number of topology links, or off"))
}
