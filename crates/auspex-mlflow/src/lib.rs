//! MLflow compatibility, pure (no IO): the entities in the JSON form of MLflow's REST API
//! (`entities`), MLflow's search filter grammar and ordering (`filter`), and MLflow's limits.

pub mod entities;
pub mod filter;

pub use entities::*;
pub use filter::{Filter, FilterError, OrderBy};

/// MLflow's limits on `runs/log-batch`, enforced the way MLflow enforces them.
pub mod limits {
    /// Most metrics in one call.
    pub const MAX_METRICS_PER_BATCH: usize = 1000;
    /// Most params in one call.
    pub const MAX_PARAMS_PER_BATCH: usize = 100;
    /// Most tags in one call.
    pub const MAX_TAGS_PER_BATCH: usize = 100;
    /// Most entities (metrics + params + tags) in one call.
    pub const MAX_ENTITIES_PER_BATCH: usize = 1000;
    /// Longest param value.
    pub const MAX_PARAM_VAL_LENGTH: usize = 6000;
    /// Longest tag value.
    pub const MAX_TAG_VAL_LENGTH: usize = 8000;
    /// Longest entity key.
    pub const MAX_ENTITY_KEY_LENGTH: usize = 250;
    /// Most results of one `runs/search` page.
    pub const SEARCH_MAX_RESULTS_THRESHOLD: usize = 50_000;
    /// Default page size of `runs/search`.
    pub const SEARCH_MAX_RESULTS_DEFAULT: usize = 1000;
}
