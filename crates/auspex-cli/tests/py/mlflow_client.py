"""Drives `auspex serve` with the official mlflow client (mlflow-skinny). Run by
crates/auspex-cli/tests/mlflow.rs; prints `mlflow-client: ok` when every check holds."""
import filecmp, json, os, sys, tempfile, threading

os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
import mlflow
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

uri = sys.argv[1]
mlflow.set_tracking_uri(uri)
c = MlflowClient()
work = tempfile.mkdtemp()


def check(cond, msg):
    if not cond:
        print("FAIL:", msg)
        sys.exit(1)


# Experiments
check(c.get_experiment("0").name == "Default", "default experiment")
exp = mlflow.set_experiment("it-exp")
check(mlflow.set_experiment("it-exp").experiment_id == exp.experiment_id, "set_experiment idempotent")
try:
    c.create_experiment("it-exp")
    check(False, "duplicate experiment accepted")
except MlflowException as e:
    check(e.error_code == "RESOURCE_ALREADY_EXISTS", f"duplicate experiment code {e.error_code}")
c.set_experiment_tag(exp.experiment_id, "team", "ml")
check(c.get_experiment(exp.experiment_id).tags.get("team") == "ml", "experiment tag")

# Runs, params, metrics with steps, tags, batches, artifacts
blob = os.urandom(300_000)
path = os.path.join(work, "blob.bin")
open(path, "wb").write(blob)
with mlflow.start_run(run_name="r1") as run:
    rid = run.info.run_id
    mlflow.log_params({"lr": "0.1", "opt": "adam"})
    for s in range(5):
        mlflow.log_metric("loss", 1.0 / (s + 1), step=s)
    mlflow.log_metrics({"acc": 0.9, "f1": 0.8})
    mlflow.set_tags({"stage": "dev"})
    mlflow.log_artifact(path, "data")
    mlflow.log_dict({"a": [1, 2]}, "cfg/c.json")
    mlflow.log_text("hello", "notes/n.txt")
r = c.get_run(rid)
check(r.info.status == "FINISHED", "run finished")
check(r.data.params == {"lr": "0.1", "opt": "adam"}, f"params {r.data.params}")
check(r.data.metrics["loss"] == 0.2 and r.data.metrics["acc"] == 0.9, f"metrics {r.data.metrics}")
check([m.step for m in c.get_metric_history(rid, "loss")] == [0, 1, 2, 3, 4], "history steps")
try:
    c.log_param(rid, "lr", "0.2")
    check(False, "changed param accepted")
except MlflowException as e:
    check(e.error_code == "INVALID_PARAMETER_VALUE", f"param change code {e.error_code}")
try:
    c.get_run("0" * 32)
    check(False, "unknown run found")
except MlflowException as e:
    check(e.error_code == "RESOURCE_DOES_NOT_EXIST", f"unknown run code {e.error_code}")
dl = mlflow.artifacts.download_artifacts(run_id=rid, dst_path=os.path.join(work, "dl"))
check(open(os.path.join(dl, "data", "blob.bin"), "rb").read() == blob, "artifact bytes round trip")
check(mlflow.artifacts.load_dict(f"runs:/{rid}/cfg/c.json") == {"a": [1, 2]}, "load_dict")
check(mlflow.artifacts.load_text(f"runs:/{rid}/notes/n.txt") == "hello", "load_text")
check(sorted(f.path for f in c.list_artifacts(rid)) == ["cfg", "data", "notes"], "list_artifacts")

# Concurrent writers: 8 threads logging to their own runs
errors = []
def writer(i):
    try:
        cl = MlflowClient()
        run = cl.create_run(exp.experiment_id, run_name=f"w{i}")
        for s in range(20):
            cl.log_batch(run.info.run_id, metrics=[mlflow.entities.Metric("x", float(s), 0, s)])
        cl.set_terminated(run.info.run_id)
    except Exception as e:  # noqa
        errors.append(repr(e))
ts = [threading.Thread(target=writer, args=(i,)) for i in range(8)]
[t.start() for t in ts]
[t.join() for t in ts]
check(not errors, f"concurrent writers: {errors[:2]}")

# Search with filters and ordering
found = c.search_runs([exp.experiment_id], "params.opt = 'adam' and metrics.loss < 0.5")
check([x.info.run_id for x in found] == [rid], "search filter")
found = c.search_runs([exp.experiment_id], "metrics.x >= 19", order_by=["attributes.run_name DESC"])
check([x.info.run_name for x in found] == [f"w{i}" for i in range(7, -1, -1)], "search order")
page = c.search_runs([exp.experiment_id], max_results=3)
check(len(page) == 3 and page.token, "paging")
try:
    c.search_runs([exp.experiment_id], "metrics.loss < 'x'")
    check(False, "bad filter accepted")
except MlflowException as e:
    check(e.error_code == "INVALID_PARAMETER_VALUE", "bad filter code")

# Logged model (MLflow 3) and the registry
class Echo(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input):
        return model_input

with mlflow.start_run(run_id=rid):
    info = mlflow.pyfunc.log_model(name="model", python_model=Echo())
mv = mlflow.register_model(f"runs:/{rid}/model", "it-model")
check(mv.version == "1" and mv.status == "READY", f"version {mv.version} {mv.status}")
c.set_registered_model_alias("it-model", "champion", "1")
got = c.get_model_version_by_alias("it-model", "champion")
check(got.version == "1" and got.run_id == rid, "get by alias")
c.transition_model_version_stage("it-model", "1", "Staging")
check(c.get_model_version("it-model", "1").current_stage == "Staging", "stage transition")
d = mlflow.artifacts.download_artifacts(artifact_uri="models:/it-model@champion", dst_path=os.path.join(work, "m"))
check(os.path.exists(os.path.join(d, "MLmodel")), "model download has MLmodel")
check(c.get_model_version_download_uri("it-model", "1"), "download uri")
c.set_model_version_tag("it-model", "1", "k", "v")
check(c.get_model_version("it-model", "1").tags == {"k": "v"}, "version tag")
check([m.name for m in c.search_registered_models("name = 'it-model'")] == ["it-model"], "search models")
c.delete_registered_model_alias("it-model", "champion")
check(c.get_registered_model("it-model").aliases == {}, "alias deleted")

# Delete and restore
c.delete_run(rid)
check(c.get_run(rid).info.lifecycle_stage == "deleted", "deleted")
c.restore_run(rid)
check(c.get_run(rid).info.lifecycle_stage == "active", "restored")
print("mlflow-client: ok")
