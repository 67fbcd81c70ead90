//! [`TrackingStore`] and [`RegistryStore`] on SQLite.

use std::collections::HashMap;

use auspex_mlflow::filter::{Clause, Field, Op, Value};
use auspex_mlflow::{
    Alias, DatasetInput, Experiment, Metric, ModelVersion, Param, RegisteredModel, Run, RunData,
    RunInfo, RunInputs, Tag,
};
use auspex_mlflow::{Filter, OrderBy};
use sqlx::sqlite::SqliteRow;
use sqlx::{AssertSqlSafe, QueryBuilder, Row, Sqlite};

use crate::sqlite::{db, wall_ms};
use crate::tracking::{
    AuditEntry, NewModelVersion, RegistryStore, RunKeys, RunUpdate, TrackingStore, ViewType,
};
use crate::{SqliteStore, StoreError};

/// The second bind of [`SqliteStore::versions_where`].
#[derive(Debug, Clone, Copy)]
enum Second<'a> {
    Version(i64),
    Text(&'a str),
}

fn not_found(what: String) -> StoreError {
    StoreError::NotFound(what)
}

fn exp_id(id: &str) -> Result<i64, StoreError> {
    id.parse().map_err(|_| not_found(format!("No Experiment with id={id} exists")))
}

fn metric_row(r: &SqliteRow, o: usize) -> Metric {
    let nan: i64 = r.get(o + 4);
    let v: Option<f64> = r.get(o + 3);
    Metric {
        key: r.get(o),
        step: r.get(o + 1),
        timestamp: r.get(o + 2),
        value: if nan != 0 { f64::NAN } else { v.unwrap_or(f64::NAN) },
    }
}

fn info_row(r: &SqliteRow) -> RunInfo {
    let id: String = r.get(0);
    let exp: i64 = r.get(1);
    RunInfo {
        run_uuid: id.clone(),
        run_id: id,
        experiment_id: exp.to_string(),
        run_name: r.get(2),
        user_id: r.get(3),
        status: r.get(4),
        start_time: r.get(5),
        end_time: r.get(6),
        artifact_uri: r.get(7),
        lifecycle_stage: r.get(8),
    }
}

const RUN_COLS: &str = "run_id, experiment_id, run_name, user_id, status, start_time, end_time, artifact_uri, lifecycle_stage";

impl SqliteStore {
    async fn experiment_where(
        &self,
        clause: &str,
        bind: &str,
    ) -> Result<Option<Experiment>, StoreError> {
        let q = format!(
            "SELECT id, name, artifact_location, lifecycle_stage, creation_time, last_update_time
             FROM experiments WHERE {clause}"
        );
        let Some(r) = sqlx::query(AssertSqlSafe(q))
            .bind(bind)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?
        else {
            return Ok(None);
        };
        let id: i64 = r.get(0);
        let tags = sqlx::query("SELECT key, value FROM experiment_tags WHERE experiment_id = ?1")
            .bind(id)
            .fetch_all(&self.pool)
            .await
            .map_err(db)?
            .iter()
            .map(|t| Tag { key: t.get(0), value: t.get(1) })
            .collect();
        Ok(Some(Experiment {
            experiment_id: id.to_string(),
            name: r.get(1),
            artifact_location: r.get(2),
            lifecycle_stage: r.get(3),
            creation_time: r.get(4),
            last_update_time: r.get(5),
            tags,
        }))
    }

    async fn run_exists(&self, run_id: &str) -> Result<String, StoreError> {
        let r = sqlx::query("SELECT lifecycle_stage FROM runs WHERE run_id = ?1")
            .bind(run_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?;
        r.map(|r| r.get(0)).ok_or_else(|| not_found(format!("Run with id={run_id} not found")))
    }

    async fn version_row(
        &self,
        name: &str,
        version: i64,
    ) -> Result<Option<ModelVersion>, StoreError> {
        let mut v = self
            .versions_where("name = ?1 AND version = ?2", name, Some(Second::Version(version)))
            .await?;
        Ok(v.pop())
    }

    /// Versions matching `clause` (binds: `?1` = `name`, `?2` = `second` when given), each
    /// with its tags and aliases, in one query.
    async fn versions_where(
        &self,
        clause: &str,
        name: &str,
        second: Option<Second<'_>>,
    ) -> Result<Vec<ModelVersion>, StoreError> {
        let q = format!(
            "SELECT name, version, creation_timestamp, last_updated_timestamp, user_id, current_stage,
                    description, source, run_id, status, run_link, model_id,
               (SELECT json_group_array(json_array(key, value)) FROM model_version_tags t
                  WHERE t.name = v.name AND t.version = v.version),
               (SELECT json_group_array(alias) FROM model_aliases a
                  WHERE a.name = v.name AND a.version = v.version)
             FROM model_versions v WHERE {clause} ORDER BY name, version DESC"
        );
        let mut query = sqlx::query(AssertSqlSafe(q)).bind(name);
        match second {
            Some(Second::Version(v)) => query = query.bind(v),
            Some(Second::Text(t)) => query = query.bind(t),
            None => {}
        }
        let rows = query.fetch_all(&self.pool).await.map_err(db)?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let name: String = r.get(0);
            let version: i64 = r.get(1);
            let corrupt =
                |why: String| StoreError::Corrupt { id: format!("{name}/{version}"), why };
            let tags: Vec<(String, String)> =
                serde_json::from_str(r.get::<&str, _>(12)).map_err(|e| corrupt(e.to_string()))?;
            let mut aliases: Vec<String> =
                serde_json::from_str(r.get::<&str, _>(13)).map_err(|e| corrupt(e.to_string()))?;
            aliases.sort();
            out.push(ModelVersion {
                version: version.to_string(),
                creation_timestamp: r.get(2),
                last_updated_timestamp: r.get(3),
                user_id: r.get(4),
                current_stage: r.get(5),
                description: r.get(6),
                source: r.get(7),
                run_id: r.get(8),
                status: r.get(9),
                run_link: r.get(10),
                model_id: r.get(11),
                tags: tags.into_iter().map(|(key, value)| Tag { key, value }).collect(),
                aliases,
                name,
            });
        }
        Ok(out)
    }

    async fn model_exists(&self, name: &str) -> Result<(), StoreError> {
        let r = sqlx::query("SELECT 1 FROM registered_models WHERE name = ?1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?;
        r.map(|_| ())
            .ok_or_else(|| not_found(format!("Registered Model with name={name} not found")))
    }

    async fn version_exists(&self, name: &str, version: i64) -> Result<(), StoreError> {
        self.model_exists(name).await?;
        let r = sqlx::query("SELECT 1 FROM model_versions WHERE name = ?1 AND version = ?2")
            .bind(name)
            .bind(version)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?;
        r.map(|_| ()).ok_or_else(|| {
            not_found(format!("Model Version (name={name}, version={version}) not found"))
        })
    }
}

async fn audit(tx: &mut sqlx::SqliteConnection, e: AuditEntry) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO registry_audit (name, version, action, from_value, to_value, who, at_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )
    .bind(e.name)
    .bind(e.version)
    .bind(e.action)
    .bind(e.from)
    .bind(e.to)
    .bind(e.who)
    .bind(e.at_ms)
    .execute(tx)
    .await
    .map_err(db)?;
    Ok(())
}

impl TrackingStore for SqliteStore {
    async fn create_experiment(
        &self,
        name: &str,
        artifact_location: Option<&str>,
        artifact_root: &str,
        tags: &[Tag],
    ) -> Result<String, StoreError> {
        let _w = self.write.lock().await;
        let mut tx = self.pool.begin().await.map_err(db)?;
        let taken = sqlx::query("SELECT 1 FROM experiments WHERE name = ?1")
            .bind(name)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db)?;
        if taken.is_some() {
            return Err(StoreError::AlreadyExists(format!(
                "Experiment(name={name}) already exists."
            )));
        }
        let now = wall_ms();
        let id: i64 = sqlx::query(
            "INSERT INTO experiments (name, artifact_location, lifecycle_stage, creation_time, last_update_time)
             VALUES (?1, '', 'active', ?2, ?2) RETURNING id",
        )
        .bind(name)
        .bind(now)
        .fetch_one(&mut *tx)
        .await
        .map_err(db)?
        .get(0);
        let loc = match artifact_location {
            Some(l) if !l.is_empty() => l.to_string(),
            _ => format!("{}/{id}", artifact_root.trim_end_matches('/')),
        };
        sqlx::query("UPDATE experiments SET artifact_location = ?1 WHERE id = ?2")
            .bind(loc)
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        for t in tags {
            sqlx::query(
                "INSERT OR REPLACE INTO experiment_tags (experiment_id, key, value) VALUES (?1, ?2, ?3)",
            )
            .bind(id)
            .bind(&t.key)
            .bind(&t.value)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        }
        tx.commit().await.map_err(db)?;
        Ok(id.to_string())
    }

    async fn get_experiment(&self, id: &str) -> Result<Option<Experiment>, StoreError> {
        let Ok(n) = id.parse::<i64>() else { return Ok(None) };
        self.experiment_where("id = ?1", &n.to_string()).await
    }

    async fn get_experiment_by_name(&self, name: &str) -> Result<Option<Experiment>, StoreError> {
        self.experiment_where("name = ?1", name).await
    }

    async fn list_experiments(&self, view: ViewType) -> Result<Vec<Experiment>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, name, artifact_location, lifecycle_stage, creation_time, last_update_time
             FROM experiments ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        let mut tags: HashMap<i64, Vec<Tag>> = HashMap::new();
        for t in sqlx::query("SELECT experiment_id, key, value FROM experiment_tags")
            .fetch_all(&self.pool)
            .await
            .map_err(db)?
        {
            tags.entry(t.get(0)).or_default().push(Tag { key: t.get(1), value: t.get(2) });
        }
        Ok(rows
            .iter()
            .filter(|r| view.includes(&r.get::<String, _>(3)))
            .map(|r| {
                let id: i64 = r.get(0);
                Experiment {
                    experiment_id: id.to_string(),
                    name: r.get(1),
                    artifact_location: r.get(2),
                    lifecycle_stage: r.get(3),
                    creation_time: r.get(4),
                    last_update_time: r.get(5),
                    tags: tags.remove(&id).unwrap_or_default(),
                }
            })
            .collect())
    }

    async fn update_experiment(
        &self,
        id: &str,
        new_name: Option<&str>,
        lifecycle: Option<&str>,
        tag: Option<&Tag>,
    ) -> Result<(), StoreError> {
        let n = exp_id(id)?;
        let _w = self.write.lock().await;
        let mut tx = self.pool.begin().await.map_err(db)?;
        let found = sqlx::query("SELECT 1 FROM experiments WHERE id = ?1")
            .bind(n)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db)?;
        if found.is_none() {
            return Err(not_found(format!("No Experiment with id={id} exists")));
        }
        let now = wall_ms();
        if let Some(name) = new_name {
            let taken = sqlx::query("SELECT 1 FROM experiments WHERE name = ?1 AND id != ?2")
                .bind(name)
                .bind(n)
                .fetch_optional(&mut *tx)
                .await
                .map_err(db)?;
            if taken.is_some() {
                return Err(StoreError::AlreadyExists(format!(
                    "Experiment(name={name}) already exists."
                )));
            }
            sqlx::query("UPDATE experiments SET name = ?1, last_update_time = ?2 WHERE id = ?3")
                .bind(name)
                .bind(now)
                .bind(n)
                .execute(&mut *tx)
                .await
                .map_err(db)?;
        }
        if let Some(stage) = lifecycle {
            sqlx::query(
                "UPDATE experiments SET lifecycle_stage = ?1, last_update_time = ?2 WHERE id = ?3",
            )
            .bind(stage)
            .bind(now)
            .bind(n)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
            sqlx::query("UPDATE runs SET lifecycle_stage = ?1 WHERE experiment_id = ?2")
                .bind(stage)
                .bind(n)
                .execute(&mut *tx)
                .await
                .map_err(db)?;
        }
        if let Some(t) = tag {
            sqlx::query(
                "INSERT OR REPLACE INTO experiment_tags (experiment_id, key, value) VALUES (?1, ?2, ?3)",
            )
            .bind(n)
            .bind(&t.key)
            .bind(&t.value)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        }
        tx.commit().await.map_err(db)
    }

    async fn create_run(&self, info: &RunInfo, tags: &[Tag]) -> Result<(), StoreError> {
        let n = exp_id(&info.experiment_id)?;
        let _w = self.write.lock().await;
        let mut tx = self.pool.begin().await.map_err(db)?;
        let stage: Option<String> =
            sqlx::query("SELECT lifecycle_stage FROM experiments WHERE id = ?1")
                .bind(n)
                .fetch_optional(&mut *tx)
                .await
                .map_err(db)?
                .map(|r| r.get(0));
        match stage.as_deref() {
            None => {
                return Err(not_found(format!(
                    "No Experiment with id={} exists",
                    info.experiment_id
                )));
            }
            Some("active") => {}
            Some(_) => {
                return Err(StoreError::Invalid(format!(
                    "The experiment {} must be in the 'active' state",
                    info.experiment_id
                )));
            }
        }
        sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO runs ({RUN_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
        )))
        .bind(&info.run_id)
        .bind(n)
        .bind(&info.run_name)
        .bind(&info.user_id)
        .bind(&info.status)
        .bind(info.start_time)
        .bind(info.end_time)
        .bind(&info.artifact_uri)
        .bind(&info.lifecycle_stage)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        for t in tags {
            sqlx::query("INSERT OR REPLACE INTO run_tags (run_id, key, value) VALUES (?1, ?2, ?3)")
                .bind(&info.run_id)
                .bind(&t.key)
                .bind(&t.value)
                .execute(&mut *tx)
                .await
                .map_err(db)?;
        }
        tx.commit().await.map_err(db)
    }

    async fn get_run(&self, run_id: &str) -> Result<Option<Run>, StoreError> {
        let ids = [run_id.to_string()];
        let Some(mut run) = self.runs_query(RunSelect::Ids(&ids), None).await?.pop() else {
            return Ok(None);
        };
        run.inputs.dataset_inputs =
            sqlx::query("SELECT json FROM run_inputs WHERE run_id = ?1 ORDER BY name, digest")
                .bind(run_id)
                .fetch_all(&self.pool)
                .await
                .map_err(db)?
                .iter()
                .filter_map(|r| serde_json::from_str::<DatasetInput>(&r.get::<String, _>(0)).ok())
                .collect();
        Ok(Some(run))
    }

    async fn run_user(&self, run_id: &str) -> Result<Option<String>, StoreError> {
        let r = sqlx::query(
            "SELECT user_id, (SELECT value FROM run_tags WHERE run_id = ?1 AND key = 'mlflow.user')
             FROM runs WHERE run_id = ?1",
        )
        .bind(run_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?;
        Ok(r.and_then(|r| {
            let u: String = r.get(0);
            if u.is_empty() { r.get::<Option<String>, _>(1) } else { Some(u) }
        }))
    }

    async fn update_run(&self, run_id: &str, u: &RunUpdate) -> Result<RunInfo, StoreError> {
        {
            let _w = self.write.lock().await;
            self.run_exists(run_id).await?;
            let mut tx = self.pool.begin().await.map_err(db)?;
            sqlx::query(
                "UPDATE runs SET status = COALESCE(?1, status), end_time = COALESCE(?2, end_time),
                        run_name = COALESCE(?3, run_name) WHERE run_id = ?4",
            )
            .bind(&u.status)
            .bind(u.end_time)
            .bind(&u.run_name)
            .bind(run_id)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
            if let Some(name) = &u.run_name {
                sqlx::query(
                    "INSERT OR REPLACE INTO run_tags (run_id, key, value) VALUES (?1, 'mlflow.runName', ?2)",
                )
                .bind(run_id)
                .bind(name)
                .execute(&mut *tx)
                .await
                .map_err(db)?;
            }
            tx.commit().await.map_err(db)?;
        }
        let r =
            sqlx::query(AssertSqlSafe(format!("SELECT {RUN_COLS} FROM runs WHERE run_id = ?1")))
                .bind(run_id)
                .fetch_one(&self.pool)
                .await
                .map_err(db)?;
        Ok(info_row(&r))
    }

    async fn set_run_lifecycle(&self, run_id: &str, stage: &str) -> Result<(), StoreError> {
        let _w = self.write.lock().await;
        self.run_exists(run_id).await?;
        sqlx::query("UPDATE runs SET lifecycle_stage = ?1 WHERE run_id = ?2")
            .bind(stage)
            .bind(run_id)
            .execute(&self.pool)
            .await
            .map_err(db)?;
        Ok(())
    }

    async fn log_batch(
        &self,
        run_id: &str,
        metrics: &[Metric],
        params: &[Param],
        tags: &[Tag],
    ) -> Result<(), StoreError> {
        let _w = self.write.lock().await;
        let stage = self.run_exists(run_id).await?;
        if stage != "active" {
            return Err(StoreError::Invalid(format!(
                "The run {run_id} must be in the 'active' state. Current state is {stage}."
            )));
        }
        let mut tx = self.pool.begin().await.map_err(db)?;
        if !params.is_empty() {
            let old: HashMap<String, String> =
                sqlx::query("SELECT key, value FROM params WHERE run_id = ?1")
                    .bind(run_id)
                    .fetch_all(&mut *tx)
                    .await
                    .map_err(db)?
                    .iter()
                    .map(|r| (r.get(0), r.get(1)))
                    .collect();
            let mut fresh: Vec<&Param> = Vec::new();
            for p in params {
                match old.get(&p.key) {
                    Some(v) if *v != p.value => {
                        return Err(StoreError::Invalid(format!(
                            "Changing param values is not allowed. Param with key='{}' was already \
                             logged with value='{v}' for run ID='{run_id}'. Attempted logging new \
                             value '{}'.",
                            p.key, p.value
                        )));
                    }
                    Some(_) => {}
                    None if fresh.iter().any(|f| f.key == p.key) => {}
                    None => fresh.push(p),
                }
            }
            if !fresh.is_empty() {
                let mut q = QueryBuilder::<Sqlite>::new("INSERT INTO params (run_id, key, value) ");
                q.push_values(fresh, |mut b, p| {
                    b.push_bind(run_id).push_bind(&p.key).push_bind(&p.value);
                });
                q.build().execute(&mut *tx).await.map_err(db)?;
            }
        }
        if !tags.is_empty() {
            // Later tags in the batch win.
            let mut last: HashMap<&str, &Tag> = HashMap::new();
            for t in tags {
                last.insert(t.key.as_str(), t);
            }
            let mut q = QueryBuilder::<Sqlite>::new(
                "INSERT OR REPLACE INTO run_tags (run_id, key, value) ",
            );
            q.push_values(last.values(), |mut b, t| {
                b.push_bind(run_id).push_bind(&t.key).push_bind(&t.value);
            });
            q.build().execute(&mut *tx).await.map_err(db)?;
            if let Some(t) = last.get("mlflow.runName") {
                sqlx::query("UPDATE runs SET run_name = ?1 WHERE run_id = ?2")
                    .bind(&t.value)
                    .bind(run_id)
                    .execute(&mut *tx)
                    .await
                    .map_err(db)?;
            }
        }
        if !metrics.is_empty() {
            // Every value goes to the history; the latest per key is merged with the stored one.
            let mut latest: HashMap<&str, &Metric> = HashMap::new();
            for m in metrics {
                let e = latest.entry(m.key.as_str()).or_insert(m);
                if newer(m, e) {
                    *e = m;
                }
            }
            for chunk in metrics.chunks(1000) {
                let mut q = QueryBuilder::<Sqlite>::new(
                    "INSERT INTO metrics (run_id, key, step, timestamp, value, is_nan) ",
                );
                q.push_values(chunk, |mut b, m| {
                    let nan = m.value.is_nan();
                    b.push_bind(run_id)
                        .push_bind(&m.key)
                        .push_bind(m.step)
                        .push_bind(m.timestamp)
                        .push_bind(if nan { None } else { Some(m.value) })
                        .push_bind(i64::from(nan));
                });
                q.build().execute(&mut *tx).await.map_err(db)?;
            }
            let mut q = QueryBuilder::<Sqlite>::new(
                "INSERT INTO latest_metrics (run_id, key, step, timestamp, value, is_nan) ",
            );
            q.push_values(latest.values(), |mut b, m| {
                let nan = m.value.is_nan();
                b.push_bind(run_id)
                    .push_bind(&m.key)
                    .push_bind(m.step)
                    .push_bind(m.timestamp)
                    .push_bind(if nan { None } else { Some(m.value) })
                    .push_bind(i64::from(nan));
            });
            // Replace only when newer: (step, timestamp, value) greater than the stored one.
            q.push(
                " ON CONFLICT(run_id, key) DO UPDATE SET
                   step = excluded.step, timestamp = excluded.timestamp,
                   value = excluded.value, is_nan = excluded.is_nan
                 WHERE excluded.step > latest_metrics.step
                    OR (excluded.step = latest_metrics.step AND excluded.timestamp > latest_metrics.timestamp)
                    OR (excluded.step = latest_metrics.step AND excluded.timestamp = latest_metrics.timestamp
                        AND COALESCE(excluded.value, -1e308) >= COALESCE(latest_metrics.value, -1e308))",
            );
            q.build().execute(&mut *tx).await.map_err(db)?;
        }
        tx.commit().await.map_err(db)
    }

    async fn delete_run_tag(&self, run_id: &str, key: &str) -> Result<(), StoreError> {
        let _w = self.write.lock().await;
        self.run_exists(run_id).await?;
        let r = sqlx::query("DELETE FROM run_tags WHERE run_id = ?1 AND key = ?2")
            .bind(run_id)
            .bind(key)
            .execute(&self.pool)
            .await
            .map_err(db)?;
        if r.rows_affected() == 0 {
            return Err(not_found(format!("No tag with name: {key} in run with id {run_id}")));
        }
        Ok(())
    }

    async fn log_inputs(&self, run_id: &str, inputs: &[DatasetInput]) -> Result<(), StoreError> {
        let _w = self.write.lock().await;
        self.run_exists(run_id).await?;
        let mut tx = self.pool.begin().await.map_err(db)?;
        for i in inputs {
            sqlx::query(
                "INSERT OR REPLACE INTO run_inputs (run_id, digest, name, json) VALUES (?1, ?2, ?3, ?4)",
            )
            .bind(run_id)
            .bind(&i.dataset.digest)
            .bind(&i.dataset.name)
            .bind(serde_json::to_string(i).map_err(db)?)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        }
        tx.commit().await.map_err(db)
    }

    async fn metric_history(&self, run_id: &str, key: &str) -> Result<Vec<Metric>, StoreError> {
        self.run_exists(run_id).await?;
        Ok(sqlx::query(
            "SELECT key, step, timestamp, value, is_nan FROM metrics WHERE run_id = ?1 AND key = ?2
             ORDER BY step, timestamp, rowid",
        )
        .bind(run_id)
        .bind(key)
        .fetch_all(&self.pool)
        .await
        .map_err(db)?
        .iter()
        .map(|r| metric_row(r, 0))
        .collect())
    }

    async fn put_logged_model(
        &self,
        model_id: &str,
        experiment_id: &str,
        json: &str,
    ) -> Result<(), StoreError> {
        let n = exp_id(experiment_id)?;
        let _w = self.write.lock().await;
        sqlx::query("INSERT OR REPLACE INTO logged_models (model_id, experiment_id, json) VALUES (?1, ?2, ?3)")
            .bind(model_id)
            .bind(n)
            .bind(json)
            .execute(&self.pool)
            .await
            .map_err(db)?;
        Ok(())
    }

    async fn get_logged_model(&self, model_id: &str) -> Result<Option<String>, StoreError> {
        Ok(sqlx::query("SELECT json FROM logged_models WHERE model_id = ?1")
            .bind(model_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?
            .map(|r| r.get(0)))
    }

    async fn list_logged_models(
        &self,
        experiment_ids: &[String],
    ) -> Result<Vec<String>, StoreError> {
        let ids: Vec<i64> = experiment_ids.iter().filter_map(|s| s.parse().ok()).collect();
        let list = ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
        Ok(sqlx::query(AssertSqlSafe(format!(
            "SELECT json FROM logged_models WHERE experiment_id IN ({list}) ORDER BY rowid"
        )))
        .fetch_all(&self.pool)
        .await
        .map_err(db)?
        .iter()
        .map(|r| r.get(0))
        .collect())
    }

    async fn delete_logged_model(&self, model_id: &str) -> Result<(), StoreError> {
        let _w = self.write.lock().await;
        let r = sqlx::query("DELETE FROM logged_models WHERE model_id = ?1")
            .bind(model_id)
            .execute(&self.pool)
            .await
            .map_err(db)?;
        if r.rows_affected() == 0 {
            return Err(not_found(format!("Logged model with ID '{model_id}' not found.")));
        }
        Ok(())
    }

    async fn list_runs(
        &self,
        experiment_ids: &[String],
        view: ViewType,
    ) -> Result<Vec<Run>, StoreError> {
        self.runs_query(RunSelect::Experiments(experiment_ids, view), None).await
    }

    async fn list_runs_keys(
        &self,
        experiment_ids: &[String],
        view: ViewType,
        keys: &RunKeys,
    ) -> Result<Vec<Run>, StoreError> {
        self.runs_query(RunSelect::Experiments(experiment_ids, view), Some(keys)).await
    }

    async fn search_run_ids(
        &self,
        experiment_ids: &[String],
        view: ViewType,
        filter: &Filter,
        order: &[OrderBy],
        offset: usize,
        limit: usize,
    ) -> Result<Option<(Vec<String>, bool)>, StoreError> {
        if filter.clauses.iter().any(|c| matches!(c.op, Op::Like | Op::ILike)) {
            return Ok(None);
        }
        let exps: Vec<i64> = experiment_ids.iter().filter_map(|s| s.parse().ok()).collect();
        if exps.is_empty() {
            return Ok(Some((Vec::new(), false)));
        }
        let mut q = QueryBuilder::<Sqlite>::new("SELECT r.run_id FROM runs r WHERE ");
        push_scope(&mut q, &exps, view);
        for c in &filter.clauses {
            q.push(" AND ");
            if !push_clause(&mut q, c) {
                return Ok(None);
            }
        }
        q.push(" ORDER BY ");
        for o in order {
            let asc = if o.asc { " ASC" } else { " DESC" };
            push_order_expr(&mut q, &o.field);
            q.push(" IS NULL, ");
            push_order_expr(&mut q, &o.field);
            q.push(asc);
            q.push(", ");
        }
        q.push("r.start_time DESC, r.run_id ASC LIMIT ");
        q.push_bind((limit + 1).min(i64::MAX as usize) as i64);
        q.push(" OFFSET ");
        q.push_bind(offset.min(i64::MAX as usize) as i64);
        let mut ids: Vec<String> =
            q.build().fetch_all(&self.pool).await.map_err(db)?.iter().map(|r| r.get(0)).collect();
        let more = ids.len() > limit;
        ids.truncate(limit);
        Ok(Some((ids, more)))
    }

    async fn get_runs(&self, ids: &[String]) -> Result<Vec<Run>, StoreError> {
        let mut found: HashMap<String, Run> = HashMap::with_capacity(ids.len());
        for chunk in ids.chunks(10_000) {
            for r in self.runs_query(RunSelect::Ids(chunk), None).await? {
                found.insert(r.info.run_id.clone(), r);
            }
        }
        Ok(ids.iter().filter_map(|id| found.remove(id)).collect())
    }
}

/// `r.experiment_id IN (...)` and the lifecycle condition of `view`.
fn push_scope(q: &mut QueryBuilder<Sqlite>, experiment_ids: &[i64], view: ViewType) {
    q.push("r.experiment_id IN (");
    let mut sep = q.separated(", ");
    for id in experiment_ids {
        sep.push_bind(*id);
    }
    q.push(")");
    q.push(match view {
        ViewType::ActiveOnly => " AND r.lifecycle_stage = 'active'",
        ViewType::DeletedOnly => " AND r.lifecycle_stage = 'deleted'",
        ViewType::All => "",
    });
}

/// The column of a string attribute.
fn str_col(k: &str) -> Option<&'static str> {
    Some(match k {
        "run_id" => "r.run_id",
        "run_name" => "r.run_name",
        "status" => "r.status",
        "user_id" => "r.user_id",
        "artifact_uri" => "r.artifact_uri",
        "lifecycle_stage" => "r.lifecycle_stage",
        _ => return None,
    })
}

fn op_sql(op: Op) -> &'static str {
    match op {
        Op::Eq => " = ",
        Op::Ne => " != ",
        Op::Lt => " < ",
        Op::Le => " <= ",
        Op::Gt => " > ",
        Op::Ge => " >= ",
        Op::In => " IN ",
        Op::NotIn => " NOT IN ",
        Op::Like | Op::ILike => " LIKE ",
    }
}

/// `<lhs> <op> <value>` with the value bound; false for a value the op does not take.
fn push_cmp(q: &mut QueryBuilder<Sqlite>, lhs: &str, op: Op, v: &Value) -> bool {
    q.push(lhs);
    q.push(op_sql(op));
    match v {
        Value::Num(n) => {
            q.push_bind(*n);
        }
        Value::Str(s) => {
            q.push_bind(s.clone());
        }
        Value::List(l) => {
            q.push("(");
            let mut sep = q.separated(", ");
            for s in l {
                sep.push_bind(s.clone());
            }
            q.push(")");
        }
    }
    true
}

/// One filter clause as SQL, with the same semantics as `Filter::matches`: a run without the
/// metric, param or tag never matches; NaN is not equal to anything.
fn push_clause(q: &mut QueryBuilder<Sqlite>, c: &Clause) -> bool {
    let keyed = |q: &mut QueryBuilder<Sqlite>, table: &str, key: &str| {
        q.push(format!("EXISTS (SELECT 1 FROM {table} x WHERE x.run_id = r.run_id AND x.key = "));
        q.push_bind(key.to_string());
        q.push(" AND ");
    };
    match &c.field {
        Field::Metric(k) => {
            keyed(q, "latest_metrics", k);
            if c.op == Op::Ne {
                q.push("(x.is_nan = 1 OR ");
                push_cmp(q, "x.value", c.op, &c.value);
                q.push("))");
            } else {
                q.push("x.is_nan = 0 AND ");
                push_cmp(q, "x.value", c.op, &c.value);
                q.push(")");
            }
            true
        }
        Field::Param(k) | Field::Tag(k) => {
            let table = if matches!(c.field, Field::Param(_)) { "params" } else { "run_tags" };
            keyed(q, table, k);
            push_cmp(q, "x.value", c.op, &c.value);
            q.push(")");
            true
        }
        Field::NumAttr(k) => {
            let col = if k == "end_time" { "r.end_time" } else { "r.start_time" };
            push_cmp(q, col, c.op, &c.value)
        }
        Field::StrAttr(k) => match str_col(k) {
            Some(col) => push_cmp(q, col, c.op, &c.value),
            None => false,
        },
    }
}

/// The value an `order_by` clause sorts on, as SQL (NULL when the run lacks it; NaN as NULL).
fn push_order_expr(q: &mut QueryBuilder<Sqlite>, f: &Field) {
    let keyed = |q: &mut QueryBuilder<Sqlite>, expr: &str, table: &str, key: &str| {
        q.push(format!("(SELECT {expr} FROM {table} x WHERE x.run_id = r.run_id AND x.key = "));
        q.push_bind(key.to_string());
        q.push(")");
    };
    match f {
        Field::Metric(k) => {
            keyed(q, "CASE WHEN x.is_nan = 1 THEN NULL ELSE x.value END", "latest_metrics", k)
        }
        Field::Param(k) => keyed(q, "x.value", "params", k),
        Field::Tag(k) => keyed(q, "x.value", "run_tags", k),
        Field::NumAttr(k) => {
            q.push(if k == "end_time" { "r.end_time" } else { "r.start_time" });
        }
        Field::StrAttr(k) => {
            q.push(str_col(k).unwrap_or("r.run_id"));
        }
    }
}

/// Which runs [`SqliteStore::runs_query`] reads.
enum RunSelect<'a> {
    Experiments(&'a [String], ViewType),
    Ids(&'a [String]),
}

impl SqliteStore {
    /// Runs with their params, tags and latest metrics, aggregated to JSON by SQLite (one pass
    /// in C instead of a row per value); with `keys`, only those keys. Metric values travel as
    /// 17-digit text: SQLite's JSON writes reals with 15 digits, which does not round-trip.
    async fn runs_query(
        &self,
        which: RunSelect<'_>,
        keys: Option<&RunKeys>,
    ) -> Result<Vec<Run>, StoreError> {
        let mut q = QueryBuilder::<Sqlite>::new(
            "SELECT r.run_id, r.experiment_id, r.run_name, r.user_id, r.status, r.start_time,
                    r.end_time, r.artifact_uri, r.lifecycle_stage, ",
        );
        let sub =
            |q: &mut QueryBuilder<Sqlite>, expr: &str, table: &str, only: Option<&[String]>| {
                match only {
                    Some([]) => {
                        q.push("'[]'");
                    }
                    _ => {
                        q.push(format!(
                        "(SELECT json_group_array({expr}) FROM {table} x WHERE x.run_id = r.run_id"
                    ));
                        if let Some(keys) = only {
                            q.push(" AND x.key IN (");
                            let mut sep = q.separated(", ");
                            for k in keys {
                                sep.push_bind(k.clone());
                            }
                            q.push(")");
                        }
                        q.push(")");
                    }
                }
            };
        sub(&mut q, "json_array(key, value)", "params", keys.map(|k| k.params.as_slice()));
        q.push(", ");
        sub(&mut q, "json_array(key, value)", "run_tags", keys.map(|k| k.tags.as_slice()));
        q.push(", ");
        sub(
            &mut q,
            "json_array(key, step, timestamp, printf('%!.17g', value), is_nan)",
            "latest_metrics",
            keys.map(|k| k.metrics.as_slice()),
        );
        q.push(" FROM runs r WHERE ");
        match which {
            RunSelect::Experiments(exps, view) => {
                let ids: Vec<i64> = exps.iter().filter_map(|s| s.parse().ok()).collect();
                if ids.is_empty() {
                    return Ok(Vec::new());
                }
                push_scope(&mut q, &ids, view);
            }
            RunSelect::Ids(ids) => {
                if ids.is_empty() {
                    return Ok(Vec::new());
                }
                q.push("r.run_id IN (");
                let mut sep = q.separated(", ");
                for id in ids {
                    sep.push_bind(id.clone());
                }
                q.push(")");
            }
        }
        let rows = q.build().fetch_all(&self.pool).await.map_err(db)?;
        let mut runs = Vec::with_capacity(rows.len());
        for r in &rows {
            let info = info_row(r);
            let corrupt = |why: String| StoreError::Corrupt { id: info.run_id.clone(), why };
            let kv: Vec<(String, String)> =
                serde_json::from_str(r.get::<&str, _>(9)).map_err(|e| corrupt(e.to_string()))?;
            let tags: Vec<(String, String)> =
                serde_json::from_str(r.get::<&str, _>(10)).map_err(|e| corrupt(e.to_string()))?;
            let ms: Vec<(String, i64, i64, Option<String>, i64)> =
                serde_json::from_str(r.get::<&str, _>(11)).map_err(|e| corrupt(e.to_string()))?;
            runs.push(Run {
                data: RunData {
                    params: kv.into_iter().map(|(key, value)| Tag { key, value }).collect(),
                    tags: tags.into_iter().map(|(key, value)| Tag { key, value }).collect(),
                    metrics: ms
                        .into_iter()
                        .map(|(key, step, timestamp, v, nan)| Metric {
                            key,
                            step,
                            timestamp,
                            value: if nan != 0 {
                                f64::NAN
                            } else {
                                v.and_then(|t| t.parse().ok()).unwrap_or(f64::NAN)
                            },
                        })
                        .collect(),
                },
                info,
                inputs: RunInputs::default(),
            });
        }
        Ok(runs)
    }
}

/// MLflow's "latest" order: step, then timestamp, then value (NaN lowest).
fn newer(a: &Metric, b: &Metric) -> bool {
    let v = |m: &Metric| if m.value.is_nan() { f64::NEG_INFINITY } else { m.value };
    (a.step, a.timestamp) > (b.step, b.timestamp)
        || ((a.step, a.timestamp) == (b.step, b.timestamp) && v(a) >= v(b))
}

impl RegistryStore for SqliteStore {
    async fn create_registered_model(
        &self,
        name: &str,
        description: &str,
        tags: &[Tag],
    ) -> Result<RegisteredModel, StoreError> {
        {
            let _w = self.write.lock().await;
            let mut tx = self.pool.begin().await.map_err(db)?;
            let now = wall_ms();
            let r = sqlx::query(
                "INSERT INTO registered_models (name, creation_timestamp, last_updated_timestamp, description)
                 VALUES (?1, ?2, ?2, ?3) ON CONFLICT(name) DO NOTHING",
            )
            .bind(name)
            .bind(now)
            .bind(description)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
            if r.rows_affected() == 0 {
                return Err(StoreError::AlreadyExists(format!(
                    "Registered Model (name={name}) already exists."
                )));
            }
            for t in tags {
                sqlx::query(
                    "INSERT OR REPLACE INTO registered_model_tags (name, key, value) VALUES (?1, ?2, ?3)",
                )
                .bind(name)
                .bind(&t.key)
                .bind(&t.value)
                .execute(&mut *tx)
                .await
                .map_err(db)?;
            }
            tx.commit().await.map_err(db)?;
        }
        self.get_registered_model(name)
            .await?
            .ok_or_else(|| not_found(format!("Registered Model with name={name} not found")))
    }

    async fn get_registered_model(
        &self,
        name: &str,
    ) -> Result<Option<RegisteredModel>, StoreError> {
        let Some(r) = sqlx::query(
            "SELECT name, creation_timestamp, last_updated_timestamp, description
             FROM registered_models WHERE name = ?1",
        )
        .bind(name)
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?
        else {
            return Ok(None);
        };
        let tags = sqlx::query(
            "SELECT key, value FROM registered_model_tags WHERE name = ?1 ORDER BY key",
        )
        .bind(name)
        .fetch_all(&self.pool)
        .await
        .map_err(db)?
        .iter()
        .map(|t| Tag { key: t.get(0), value: t.get(1) })
        .collect();
        let aliases =
            sqlx::query("SELECT alias, version FROM model_aliases WHERE name = ?1 ORDER BY alias")
                .bind(name)
                .fetch_all(&self.pool)
                .await
                .map_err(db)?
                .iter()
                .map(|t| Alias { alias: t.get(0), version: t.get::<i64, _>(1).to_string() })
                .collect();
        // The latest version in each stage.
        let mut latest: Vec<ModelVersion> = Vec::new();
        for v in self.versions_where("name = ?1", name, None).await? {
            if !latest.iter().any(|l| l.current_stage == v.current_stage) {
                latest.push(v);
            }
        }
        Ok(Some(RegisteredModel {
            name: r.get(0),
            creation_timestamp: r.get(1),
            last_updated_timestamp: r.get(2),
            description: r.get(3),
            latest_versions: latest,
            tags,
            aliases,
        }))
    }

    async fn list_registered_models(&self) -> Result<Vec<RegisteredModel>, StoreError> {
        let names: Vec<String> = sqlx::query("SELECT name FROM registered_models ORDER BY name")
            .fetch_all(&self.pool)
            .await
            .map_err(db)?
            .iter()
            .map(|r| r.get(0))
            .collect();
        let mut out = Vec::with_capacity(names.len());
        for n in names {
            if let Some(m) = self.get_registered_model(&n).await? {
                out.push(m);
            }
        }
        Ok(out)
    }

    async fn update_registered_model(
        &self,
        name: &str,
        new_name: Option<&str>,
        description: Option<&str>,
    ) -> Result<(), StoreError> {
        let _w = self.write.lock().await;
        self.model_exists(name).await?;
        let mut tx = self.pool.begin().await.map_err(db)?;
        let now = wall_ms();
        if let Some(d) = description {
            sqlx::query("UPDATE registered_models SET description = ?1, last_updated_timestamp = ?2 WHERE name = ?3")
                .bind(d)
                .bind(now)
                .bind(name)
                .execute(&mut *tx)
                .await
                .map_err(db)?;
        }
        if let Some(n) = new_name.filter(|n| *n != name) {
            let taken = sqlx::query("SELECT 1 FROM registered_models WHERE name = ?1")
                .bind(n)
                .fetch_optional(&mut *tx)
                .await
                .map_err(db)?;
            if taken.is_some() {
                return Err(StoreError::AlreadyExists(format!(
                    "Registered Model (name={n}) already exists."
                )));
            }
            for table in [
                "registered_models",
                "registered_model_tags",
                "model_versions",
                "model_version_tags",
                "model_aliases",
            ] {
                sqlx::query(AssertSqlSafe(format!("UPDATE {table} SET name = ?1 WHERE name = ?2")))
                    .bind(n)
                    .bind(name)
                    .execute(&mut *tx)
                    .await
                    .map_err(db)?;
            }
        }
        tx.commit().await.map_err(db)
    }

    async fn delete_registered_model(&self, name: &str) -> Result<(), StoreError> {
        let _w = self.write.lock().await;
        self.model_exists(name).await?;
        let mut tx = self.pool.begin().await.map_err(db)?;
        for table in [
            "registered_models",
            "registered_model_tags",
            "model_versions",
            "model_version_tags",
            "model_aliases",
        ] {
            sqlx::query(AssertSqlSafe(format!("DELETE FROM {table} WHERE name = ?1")))
                .bind(name)
                .execute(&mut *tx)
                .await
                .map_err(db)?;
        }
        tx.commit().await.map_err(db)
    }

    async fn set_registered_model_tag(
        &self,
        name: &str,
        key: &str,
        value: Option<&str>,
    ) -> Result<(), StoreError> {
        let _w = self.write.lock().await;
        self.model_exists(name).await?;
        let q = match value {
            Some(_) => {
                "INSERT OR REPLACE INTO registered_model_tags (name, key, value) VALUES (?1, ?2, ?3)"
            }
            None => "DELETE FROM registered_model_tags WHERE name = ?1 AND key = ?2 AND ?3 IS NULL",
        };
        sqlx::query(q).bind(name).bind(key).bind(value).execute(&self.pool).await.map_err(db)?;
        Ok(())
    }

    async fn create_model_version(&self, v: &NewModelVersion) -> Result<ModelVersion, StoreError> {
        let version: i64;
        {
            let _w = self.write.lock().await;
            let mut tx = self.pool.begin().await.map_err(db)?;
            let now = wall_ms();
            sqlx::query(
                "INSERT INTO registered_models (name, creation_timestamp, last_updated_timestamp, description)
                 VALUES (?1, ?2, ?2, '') ON CONFLICT(name) DO UPDATE SET last_updated_timestamp = ?2",
            )
            .bind(&v.name)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
            version = sqlx::query(
                "SELECT COALESCE(MAX(version), 0) + 1 FROM model_versions WHERE name = ?1",
            )
            .bind(&v.name)
            .fetch_one(&mut *tx)
            .await
            .map_err(db)?
            .get(0);
            sqlx::query(
                "INSERT INTO model_versions (name, version, creation_timestamp, last_updated_timestamp,
                   user_id, current_stage, description, source, run_id, status, run_link, model_id, lineage)
                 VALUES (?1, ?2, ?3, ?3, ?4, 'None', ?5, ?6, ?7, 'READY', ?8, ?9, ?10)",
            )
            .bind(&v.name)
            .bind(version)
            .bind(now)
            .bind(&v.user_id)
            .bind(&v.description)
            .bind(&v.source)
            .bind(&v.run_id)
            .bind(&v.run_link)
            .bind(&v.model_id)
            .bind(&v.lineage)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
            for t in &v.tags {
                sqlx::query(
                    "INSERT OR REPLACE INTO model_version_tags (name, version, key, value) VALUES (?1, ?2, ?3, ?4)",
                )
                .bind(&v.name)
                .bind(version)
                .bind(&t.key)
                .bind(&t.value)
                .execute(&mut *tx)
                .await
                .map_err(db)?;
            }
            audit(
                &mut tx,
                AuditEntry {
                    name: v.name.clone(),
                    version: Some(version),
                    action: "register".into(),
                    from: None,
                    to: Some(v.source.clone()),
                    who: v.user_id.clone(),
                    at_ms: now,
                },
            )
            .await?;
            tx.commit().await.map_err(db)?;
        }
        self.version_row(&v.name, version).await?.ok_or_else(|| {
            not_found(format!("Model Version (name={}, version={version}) not found", v.name))
        })
    }

    async fn get_model_version(
        &self,
        name: &str,
        version: i64,
    ) -> Result<Option<ModelVersion>, StoreError> {
        self.version_row(name, version).await
    }

    async fn list_model_versions(
        &self,
        name: Option<&str>,
    ) -> Result<Vec<ModelVersion>, StoreError> {
        match name {
            Some(n) => self.versions_where("name = ?1", n, None).await,
            None => self.versions_where("?1 = ?1", "", None).await,
        }
    }

    async fn update_model_version(
        &self,
        name: &str,
        version: i64,
        description: &str,
    ) -> Result<ModelVersion, StoreError> {
        {
            let _w = self.write.lock().await;
            self.version_exists(name, version).await?;
            sqlx::query(
                "UPDATE model_versions SET description = ?1, last_updated_timestamp = ?2 WHERE name = ?3 AND version = ?4",
            )
            .bind(description)
            .bind(wall_ms())
            .bind(name)
            .bind(version)
            .execute(&self.pool)
            .await
            .map_err(db)?;
        }
        self.version_row(name, version).await?.ok_or_else(|| {
            not_found(format!("Model Version (name={name}, version={version}) not found"))
        })
    }

    async fn delete_model_version(&self, name: &str, version: i64) -> Result<(), StoreError> {
        let _w = self.write.lock().await;
        self.version_exists(name, version).await?;
        let mut tx = self.pool.begin().await.map_err(db)?;
        for table in ["model_versions", "model_version_tags", "model_aliases"] {
            sqlx::query(AssertSqlSafe(format!(
                "DELETE FROM {table} WHERE name = ?1 AND version = ?2"
            )))
            .bind(name)
            .bind(version)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        }
        tx.commit().await.map_err(db)
    }

    async fn set_model_version_tag(
        &self,
        name: &str,
        version: i64,
        key: &str,
        value: Option<&str>,
    ) -> Result<(), StoreError> {
        let _w = self.write.lock().await;
        self.version_exists(name, version).await?;
        let q = match value {
            Some(_) => {
                "INSERT OR REPLACE INTO model_version_tags (name, version, key, value) VALUES (?1, ?2, ?3, ?4)"
            }
            None => {
                "DELETE FROM model_version_tags WHERE name = ?1 AND version = ?2 AND key = ?3 AND ?4 IS NULL"
            }
        };
        sqlx::query(q)
            .bind(name)
            .bind(version)
            .bind(key)
            .bind(value)
            .execute(&self.pool)
            .await
            .map_err(db)?;
        Ok(())
    }

    async fn transition_stage(
        &self,
        name: &str,
        version: i64,
        stage: &str,
        archive_existing: bool,
        who: &str,
    ) -> Result<ModelVersion, StoreError> {
        {
            let _w = self.write.lock().await;
            self.version_exists(name, version).await?;
            let mut tx = self.pool.begin().await.map_err(db)?;
            let now = wall_ms();
            let from: String = sqlx::query(
                "SELECT current_stage FROM model_versions WHERE name = ?1 AND version = ?2",
            )
            .bind(name)
            .bind(version)
            .fetch_one(&mut *tx)
            .await
            .map_err(db)?
            .get(0);
            if archive_existing && (stage == "Staging" || stage == "Production") {
                let others: Vec<i64> = sqlx::query(
                    "SELECT version FROM model_versions WHERE name = ?1 AND current_stage = ?2 AND version != ?3",
                )
                .bind(name)
                .bind(stage)
                .bind(version)
                .fetch_all(&mut *tx)
                .await
                .map_err(db)?
                .iter()
                .map(|r| r.get(0))
                .collect();
                for o in others {
                    sqlx::query(
                        "UPDATE model_versions SET current_stage = 'Archived', last_updated_timestamp = ?1
                         WHERE name = ?2 AND version = ?3",
                    )
                    .bind(now)
                    .bind(name)
                    .bind(o)
                    .execute(&mut *tx)
                    .await
                    .map_err(db)?;
                    audit(
                        &mut tx,
                        AuditEntry {
                            name: name.into(),
                            version: Some(o),
                            action: "transition_stage".into(),
                            from: Some(stage.into()),
                            to: Some("Archived".into()),
                            who: who.into(),
                            at_ms: now,
                        },
                    )
                    .await?;
                }
            }
            sqlx::query(
                "UPDATE model_versions SET current_stage = ?1, last_updated_timestamp = ?2 WHERE name = ?3 AND version = ?4",
            )
            .bind(stage)
            .bind(now)
            .bind(name)
            .bind(version)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
            audit(
                &mut tx,
                AuditEntry {
                    name: name.into(),
                    version: Some(version),
                    action: "transition_stage".into(),
                    from: Some(from),
                    to: Some(stage.into()),
                    who: who.into(),
                    at_ms: now,
                },
            )
            .await?;
            tx.commit().await.map_err(db)?;
        }
        self.version_row(name, version).await?.ok_or_else(|| {
            not_found(format!("Model Version (name={name}, version={version}) not found"))
        })
    }

    async fn set_alias(
        &self,
        name: &str,
        alias: &str,
        version: Option<i64>,
        who: &str,
    ) -> Result<(), StoreError> {
        let _w = self.write.lock().await;
        match version {
            Some(v) => self.version_exists(name, v).await?,
            None => self.model_exists(name).await?,
        }
        let mut tx = self.pool.begin().await.map_err(db)?;
        let from: Option<i64> =
            sqlx::query("SELECT version FROM model_aliases WHERE name = ?1 AND alias = ?2")
                .bind(name)
                .bind(alias)
                .fetch_optional(&mut *tx)
                .await
                .map_err(db)?
                .map(|r| r.get(0));
        match version {
            Some(v) => {
                sqlx::query("INSERT OR REPLACE INTO model_aliases (name, alias, version) VALUES (?1, ?2, ?3)")
                    .bind(name)
                    .bind(alias)
                    .bind(v)
                    .execute(&mut *tx)
                    .await
                    .map_err(db)?;
            }
            None => {
                sqlx::query("DELETE FROM model_aliases WHERE name = ?1 AND alias = ?2")
                    .bind(name)
                    .bind(alias)
                    .execute(&mut *tx)
                    .await
                    .map_err(db)?;
            }
        }
        audit(
            &mut tx,
            AuditEntry {
                name: name.into(),
                version: version.or(from),
                action: if version.is_some() { "set_alias" } else { "delete_alias" }.into(),
                from: from.map(|f| format!("{alias}={f}")),
                to: version.map(|v| format!("{alias}={v}")),
                who: who.into(),
                at_ms: wall_ms(),
            },
        )
        .await?;
        tx.commit().await.map_err(db)
    }

    async fn get_by_alias(
        &self,
        name: &str,
        alias: &str,
    ) -> Result<Option<ModelVersion>, StoreError> {
        let mut v = self
            .versions_where(
                "name = ?1 AND version = (SELECT version FROM model_aliases WHERE name = ?1 AND alias = ?2)",
                name,
                Some(Second::Text(alias)),
            )
            .await?;
        Ok(v.pop())
    }

    async fn lineage(&self, name: &str, version: i64) -> Result<Option<String>, StoreError> {
        Ok(sqlx::query("SELECT lineage FROM model_versions WHERE name = ?1 AND version = ?2")
            .bind(name)
            .bind(version)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?
            .map(|r| r.get(0)))
    }

    async fn audit(&self, name: &str, version: Option<i64>) -> Result<Vec<AuditEntry>, StoreError> {
        Ok(sqlx::query(
            "SELECT name, version, action, from_value, to_value, who, at_ms FROM registry_audit
             WHERE name = ?1 AND (?2 IS NULL OR version = ?2) ORDER BY id",
        )
        .bind(name)
        .bind(version)
        .fetch_all(&self.pool)
        .await
        .map_err(db)?
        .iter()
        .map(|r| AuditEntry {
            name: r.get(0),
            version: r.get(1),
            action: r.get(2),
            from: r.get(3),
            to: r.get(4),
            who: r.get(5),
            at_ms: r.get(6),
        })
        .collect())
    }
}
