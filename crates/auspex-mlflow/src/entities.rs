//! MLflow entities as the REST API writes them (proto3 JSON, int64 as numbers, empty lists
//! and unset fields left out).

use serde::{Deserialize, Serialize};

/// A key/value tag (experiments, runs, registered models, model versions).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tag {
    /// Key.
    pub key: String,
    /// Value.
    #[serde(default)]
    pub value: String,
}

/// A run parameter.
pub type Param = Tag;

/// One metric value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metric {
    /// Key.
    pub key: String,
    /// Value (may be NaN or infinite; written as MLflow writes them).
    #[serde(with = "float")]
    pub value: f64,
    /// Unix ms.
    #[serde(default)]
    pub timestamp: i64,
    /// Step.
    #[serde(default)]
    pub step: i64,
}

/// NaN and infinities as MLflow's JSON writes them (`"NaN"`, `"Infinity"`, `"-Infinity"`).
pub mod float {
    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes a float.
    pub fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
        if v.is_nan() {
            s.serialize_str("NaN")
        } else if v.is_infinite() {
            s.serialize_str(if *v > 0.0 { "Infinity" } else { "-Infinity" })
        } else {
            s.serialize_f64(*v)
        }
    }

    /// Reads a float, a numeric string, or one of the special strings.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum F {
            N(f64),
            S(String),
        }
        match F::deserialize(d)? {
            F::N(x) => Ok(x),
            F::S(s) => match s.as_str() {
                "NaN" | "nan" => Ok(f64::NAN),
                "Infinity" | "inf" => Ok(f64::INFINITY),
                "-Infinity" | "-inf" => Ok(f64::NEG_INFINITY),
                other => other.parse().map_err(serde::de::Error::custom),
            },
        }
    }
}

/// An experiment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Experiment {
    /// Id (a decimal string).
    pub experiment_id: String,
    /// Unique name.
    pub name: String,
    /// Where its runs' artifacts go.
    pub artifact_location: String,
    /// `active` or `deleted`.
    pub lifecycle_stage: String,
    /// Unix ms.
    pub last_update_time: i64,
    /// Unix ms.
    pub creation_time: i64,
    /// Tags.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<Tag>,
}

/// A run's metadata.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunInfo {
    /// Id (32 hex digits).
    pub run_id: String,
    /// The same id (deprecated field the client still reads).
    pub run_uuid: String,
    /// Name.
    pub run_name: String,
    /// Experiment.
    pub experiment_id: String,
    /// Who started it.
    pub user_id: String,
    /// `RUNNING`, `SCHEDULED`, `FINISHED`, `FAILED` or `KILLED`.
    pub status: String,
    /// Unix ms.
    pub start_time: i64,
    /// Unix ms, once ended.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_time: Option<i64>,
    /// Root of its artifacts.
    pub artifact_uri: String,
    /// `active` or `deleted`.
    pub lifecycle_stage: String,
}

/// A run's data: latest metrics, params, tags.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunData {
    /// The latest value of each metric (highest step, then latest timestamp, then largest value).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub metrics: Vec<Metric>,
    /// Params.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub params: Vec<Param>,
    /// Tags.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<Tag>,
}

/// A dataset logged as a run input.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dataset {
    /// Name.
    pub name: String,
    /// Content digest.
    pub digest: String,
    /// Source type (`local`, `s3`, ...).
    #[serde(default)]
    pub source_type: String,
    /// Source (JSON text).
    #[serde(default)]
    pub source: String,
    /// Schema (JSON text).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<String>,
    /// Profile (JSON text).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
}

/// A dataset input of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatasetInput {
    /// Tags (e.g. `mlflow.data.context`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<Tag>,
    /// The dataset.
    pub dataset: Dataset,
}

/// A run's inputs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunInputs {
    /// Datasets.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dataset_inputs: Vec<DatasetInput>,
}

/// A run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Run {
    /// Metadata.
    pub info: RunInfo,
    /// Data.
    pub data: RunData,
    /// Inputs.
    #[serde(default)]
    pub inputs: RunInputs,
}

impl Run {
    /// The latest value of metric `key`.
    pub fn metric(&self, key: &str) -> Option<f64> {
        self.data.metrics.iter().find(|m| m.key == key).map(|m| m.value)
    }
    /// Param `key`.
    pub fn param(&self, key: &str) -> Option<&str> {
        self.data.params.iter().find(|m| m.key == key).map(|m| m.value.as_str())
    }
    /// Tag `key`.
    pub fn tag(&self, key: &str) -> Option<&str> {
        self.data.tags.iter().find(|m| m.key == key).map(|m| m.value.as_str())
    }
}

/// A registered model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegisteredModel {
    /// Unique name.
    pub name: String,
    /// Unix ms.
    pub creation_timestamp: i64,
    /// Unix ms.
    pub last_updated_timestamp: i64,
    /// Description.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// The latest version per stage.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub latest_versions: Vec<ModelVersion>,
    /// Tags.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<Tag>,
    /// Aliases.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<Alias>,
}

/// An alias of a model version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alias {
    /// Alias.
    pub alias: String,
    /// Version (a decimal string).
    pub version: String,
}

/// A model version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelVersion {
    /// Model name.
    pub name: String,
    /// Version (a decimal string).
    pub version: String,
    /// Unix ms.
    pub creation_timestamp: i64,
    /// Unix ms.
    pub last_updated_timestamp: i64,
    /// Who registered it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub user_id: String,
    /// `None`, `Staging`, `Production` or `Archived`.
    pub current_stage: String,
    /// Description.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// Where the model files are.
    pub source: String,
    /// The run that produced it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub run_id: String,
    /// `READY`.
    pub status: String,
    /// Link to the run.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub run_link: String,
    /// Tags.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<Tag>,
    /// Aliases pointing at it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    /// The MLflow 3 logged model, if any.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub model_id: String,
}

/// Registry stages (deprecated in MLflow, still used).
pub const STAGES: [&str; 4] = ["None", "Staging", "Production", "Archived"];

/// The canonical form of a stage name, case-insensitively.
pub fn canonical_stage(s: &str) -> Option<&'static str> {
    STAGES.iter().copied().find(|x| x.eq_ignore_ascii_case(s))
}

/// Run statuses.
pub const RUN_STATUSES: [&str; 5] = ["RUNNING", "SCHEDULED", "FINISHED", "FAILED", "KILLED"];
