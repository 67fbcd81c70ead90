//! The tracking and model-registry store traits (MLflow-compatible metadata). Artifacts are
//! not here: they go through `object_store` in the server.

use std::future::Future;

use auspex_mlflow::{
    DatasetInput, Experiment, Metric, ModelVersion, Param, RegisteredModel, Run, RunInfo, Tag,
};

use crate::StoreError;

/// Which runs or experiments a listing includes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ViewType {
    /// `active` only.
    ActiveOnly,
    /// `deleted` only.
    DeletedOnly,
    /// Both.
    All,
}

impl ViewType {
    /// From MLflow's `run_view_type` / `view_type` (`ACTIVE_ONLY` when absent).
    pub fn parse(s: Option<&str>) -> Option<Self> {
        match s.unwrap_or("ACTIVE_ONLY") {
            "ACTIVE_ONLY" | "1" => Some(Self::ActiveOnly),
            "DELETED_ONLY" | "2" => Some(Self::DeletedOnly),
            "ALL" | "3" => Some(Self::All),
            _ => None,
        }
    }

    /// True when a record in `stage` is included.
    pub fn includes(self, stage: &str) -> bool {
        match self {
            Self::ActiveOnly => stage == "active",
            Self::DeletedOnly => stage == "deleted",
            Self::All => true,
        }
    }
}

/// Fields of a run to change (`runs/update`).
#[derive(Debug, Clone, Default)]
pub struct RunUpdate {
    /// New status.
    pub status: Option<String>,
    /// End time.
    pub end_time: Option<i64>,
    /// New name.
    pub run_name: Option<String>,
}

/// A new model version.
#[derive(Debug, Clone, Default)]
pub struct NewModelVersion {
    /// Model name.
    pub name: String,
    /// Where the files are.
    pub source: String,
    /// Source run.
    pub run_id: String,
    /// Tags.
    pub tags: Vec<Tag>,
    /// Run link.
    pub run_link: String,
    /// Description.
    pub description: String,
    /// Who registers it.
    pub user_id: String,
    /// MLflow 3 logged model id.
    pub model_id: String,
    /// Lineage captured at registration (JSON object).
    pub lineage: String,
}

/// One audited registry change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// Model.
    pub name: String,
    /// Version, when the change is about one.
    pub version: Option<i64>,
    /// `register`, `set_alias`, `delete_alias`, `transition_stage`, ...
    pub action: String,
    /// Before.
    pub from: Option<String>,
    /// After.
    pub to: Option<String>,
    /// Who.
    pub who: String,
    /// When (Unix ms).
    pub at_ms: i64,
}

/// Experiments, runs and their data. Writes are durable when the future resolves.
pub trait TrackingStore: Clone + Send + Sync + 'static {
    /// Creates an experiment; `AlreadyExists` if the name is taken. `artifact_root` is the
    /// prefix of the default artifact location (`<root>/<id>`).
    fn create_experiment(
        &self,
        name: &str,
        artifact_location: Option<&str>,
        artifact_root: &str,
        tags: &[Tag],
    ) -> impl Future<Output = Result<String, StoreError>> + Send;
    /// An experiment by id.
    fn get_experiment(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<Option<Experiment>, StoreError>> + Send;
    /// An experiment by name.
    fn get_experiment_by_name(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<Option<Experiment>, StoreError>> + Send;
    /// All experiments in `view`, by id.
    fn list_experiments(
        &self,
        view: ViewType,
    ) -> impl Future<Output = Result<Vec<Experiment>, StoreError>> + Send;
    /// Renames, deletes (`deleted`) or restores (`active`) an experiment, sets a tag.
    fn update_experiment(
        &self,
        id: &str,
        new_name: Option<&str>,
        lifecycle: Option<&str>,
        tag: Option<&Tag>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Creates a run with its initial tags.
    fn create_run(
        &self,
        info: &RunInfo,
        tags: &[Tag],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// A run with its data and inputs.
    fn get_run(&self, run_id: &str)
    -> impl Future<Output = Result<Option<Run>, StoreError>> + Send;
    /// Who ran a run: its `user_id`, else its `mlflow.user` tag (`None` if neither, or no run).
    fn run_user(
        &self,
        run_id: &str,
    ) -> impl Future<Output = Result<Option<String>, StoreError>> + Send;
    /// Updates a run; returns the new info.
    fn update_run(
        &self,
        run_id: &str,
        u: &RunUpdate,
    ) -> impl Future<Output = Result<RunInfo, StoreError>> + Send;
    /// Sets a run's lifecycle stage (`active` / `deleted`).
    fn set_run_lifecycle(
        &self,
        run_id: &str,
        stage: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Logs metrics, params and tags in one transaction. A param logged again with another
    /// value is `Invalid` (params are immutable), and nothing of the batch is written.
    fn log_batch(
        &self,
        run_id: &str,
        metrics: &[Metric],
        params: &[Param],
        tags: &[Tag],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Deletes a run tag.
    fn delete_run_tag(
        &self,
        run_id: &str,
        key: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Logs dataset inputs.
    fn log_inputs(
        &self,
        run_id: &str,
        inputs: &[DatasetInput],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Every value of one metric, by step then timestamp.
    fn metric_history(
        &self,
        run_id: &str,
        key: &str,
    ) -> impl Future<Output = Result<Vec<Metric>, StoreError>> + Send;
    /// Inserts or replaces an MLflow 3 logged model (its JSON form).
    fn put_logged_model(
        &self,
        model_id: &str,
        experiment_id: &str,
        json: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// A logged model's JSON.
    fn get_logged_model(
        &self,
        model_id: &str,
    ) -> impl Future<Output = Result<Option<String>, StoreError>> + Send;
    /// The logged models of some experiments (JSON), oldest first.
    fn list_logged_models(
        &self,
        experiment_ids: &[String],
    ) -> impl Future<Output = Result<Vec<String>, StoreError>> + Send;
    /// Deletes a logged model; `NotFound` if absent.
    fn delete_logged_model(
        &self,
        model_id: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// All runs of the experiments in `view`, with their data (filtering and ordering are
    /// done by the caller with `auspex_mlflow::filter`).
    fn list_runs(
        &self,
        experiment_ids: &[String],
        view: ViewType,
    ) -> impl Future<Output = Result<Vec<Run>, StoreError>> + Send;
    /// Like [`TrackingStore::list_runs`], but each run carries only the named metrics, params
    /// and tags: enough to filter and sort, cheap to load. Fetch the page with `get_runs`.
    fn list_runs_keys(
        &self,
        experiment_ids: &[String],
        view: ViewType,
        keys: &RunKeys,
    ) -> impl Future<Output = Result<Vec<Run>, StoreError>> + Send;
    /// A search done entirely by the database: the ids of one page of runs that match
    /// `filter`, in `order` (then newest first, then by id), and whether more follow.
    /// `Ok(None)` when the filter has clauses the backend cannot translate (`LIKE`/`ILIKE`);
    /// the caller then filters with `list_runs_keys`.
    fn search_run_ids(
        &self,
        experiment_ids: &[String],
        view: ViewType,
        filter: &auspex_mlflow::Filter,
        order: &[auspex_mlflow::OrderBy],
        offset: usize,
        limit: usize,
    ) -> impl Future<Output = Result<Option<(Vec<String>, bool)>, StoreError>> + Send;
    /// Runs by id with all their data, in the order given (missing ids are left out).
    fn get_runs(&self, ids: &[String])
    -> impl Future<Output = Result<Vec<Run>, StoreError>> + Send;
}

/// The data keys a search needs (from its filter and `order_by`).
#[derive(Debug, Clone, Default)]
pub struct RunKeys {
    /// Metric keys.
    pub metrics: Vec<String>,
    /// Param keys.
    pub params: Vec<String>,
    /// Tag keys.
    pub tags: Vec<String>,
}

/// Registered models, versions, aliases, stages, and the audit trail.
pub trait RegistryStore: Clone + Send + Sync + 'static {
    /// Creates a registered model; `AlreadyExists` if taken.
    fn create_registered_model(
        &self,
        name: &str,
        description: &str,
        tags: &[Tag],
    ) -> impl Future<Output = Result<RegisteredModel, StoreError>> + Send;
    /// A registered model with its aliases, tags and latest versions.
    fn get_registered_model(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<Option<RegisteredModel>, StoreError>> + Send;
    /// All registered models, by name.
    fn list_registered_models(
        &self,
    ) -> impl Future<Output = Result<Vec<RegisteredModel>, StoreError>> + Send;
    /// Renames a model or changes its description.
    fn update_registered_model(
        &self,
        name: &str,
        new_name: Option<&str>,
        description: Option<&str>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Deletes a model with its versions, tags and aliases.
    fn delete_registered_model(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Sets (`Some`) or deletes (`None`) a registered-model tag.
    fn set_registered_model_tag(
        &self,
        name: &str,
        key: &str,
        value: Option<&str>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Creates the next version (`READY`), creating the model if needed; audited.
    fn create_model_version(
        &self,
        v: &NewModelVersion,
    ) -> impl Future<Output = Result<ModelVersion, StoreError>> + Send;
    /// A version.
    fn get_model_version(
        &self,
        name: &str,
        version: i64,
    ) -> impl Future<Output = Result<Option<ModelVersion>, StoreError>> + Send;
    /// The versions of `name` (all models when `None`), newest first.
    fn list_model_versions(
        &self,
        name: Option<&str>,
    ) -> impl Future<Output = Result<Vec<ModelVersion>, StoreError>> + Send;
    /// Changes a version's description.
    fn update_model_version(
        &self,
        name: &str,
        version: i64,
        description: &str,
    ) -> impl Future<Output = Result<ModelVersion, StoreError>> + Send;
    /// Deletes a version (and aliases pointing at it).
    fn delete_model_version(
        &self,
        name: &str,
        version: i64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Sets (`Some`) or deletes (`None`) a version tag.
    fn set_model_version_tag(
        &self,
        name: &str,
        version: i64,
        key: &str,
        value: Option<&str>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Moves a version to `stage`, optionally archiving the others in it; audited.
    fn transition_stage(
        &self,
        name: &str,
        version: i64,
        stage: &str,
        archive_existing: bool,
        who: &str,
    ) -> impl Future<Output = Result<ModelVersion, StoreError>> + Send;
    /// Points `alias` at `version` (`Some`) or removes it (`None`); audited.
    fn set_alias(
        &self,
        name: &str,
        alias: &str,
        version: Option<i64>,
        who: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// The version an alias points at.
    fn get_by_alias(
        &self,
        name: &str,
        alias: &str,
    ) -> impl Future<Output = Result<Option<ModelVersion>, StoreError>> + Send;
    /// Lineage JSON recorded at registration.
    fn lineage(
        &self,
        name: &str,
        version: i64,
    ) -> impl Future<Output = Result<Option<String>, StoreError>> + Send;
    /// The audit trail of a model (of one version when given), oldest first.
    fn audit(
        &self,
        name: &str,
        version: Option<i64>,
    ) -> impl Future<Output = Result<Vec<AuditEntry>, StoreError>> + Send;
}
