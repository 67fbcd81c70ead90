#!/usr/bin/env bash
# The whole test suite, from a fresh machine (Debian, root, Rust present):
#   1. installs the real peers the tests talk to (Debian packages, a Python venv with the
#      official mlflow client, moto's S3-compatible server, the OpenTelemetry SDK and
#      openapi-spec-validator) and cargo-fuzz;
#   2. checks formatting and lints;
#   3. runs every test (a test whose peer is missing fails; nothing is skipped);
#   4. builds every fuzz target and runs each for a bounded number of runs.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
# Peers used by the tests. Later capabilities add theirs here.
command -v python3 >/dev/null || need_apt+=(python3)
command -v prometheus >/dev/null || need_apt+=(prometheus)
command -v prometheus-alertmanager >/dev/null || need_apt+=(prometheus-alertmanager)
if ((${#need_apt[@]})); then
  echo "==> installing Debian packages: ${need_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_apt[@]}"
fi
# The official mlflow client, for the MLflow API tests (pinned to the version they target).
if ! python3 -c "import ensurepip, venv" >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends python3-venv
fi
if ! .venv/bin/python -c "import mlflow, numpy, pandas, cloudpickle, moto, sys; sys.exit(mlflow.__version__ != '3.17.2')" >/dev/null 2>&1; then
  echo "==> creating .venv with mlflow-skinny 3.17.2 and moto (an S3-compatible server)"
  python3 -m venv .venv
  .venv/bin/pip install -q --disable-pip-version-check mlflow-skinny==3.17.2 numpy pandas \
    cloudpickle "moto[server]==5.2.5"
fi
# The OpenTelemetry Python SDK and its OTLP/HTTP exporter, the real trace sender.
if ! .venv/bin/python -c "import opentelemetry.sdk, opentelemetry.exporter.otlp.proto.http" >/dev/null 2>&1; then
  echo "==> adding the OpenTelemetry SDK 1.45.2 and OTLP/HTTP exporter to .venv"
  .venv/bin/pip install -q --disable-pip-version-check opentelemetry-sdk==1.45.2 \
    opentelemetry-exporter-otlp-proto-http==1.45.2
fi
# openapi-spec-validator, the independent check of the OpenAPI document the server serves.
if ! .venv/bin/python -c "import openapi_spec_validator" >/dev/null 2>&1; then
  echo "==> adding openapi-spec-validator 0.9.0 to .venv"
  .venv/bin/pip install -q --disable-pip-version-check openapi-spec-validator==0.9.0
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "==> installing cargo-fuzz"
  cargo install cargo-fuzz --locked --quiet
fi

echo "==> cargo fmt --check"
cargo fmt --all -- --check
echo "==> cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "==> cargo test"
cargo test --workspace --locked
echo "==> fuzz targets (bounded runs)"
for t in $(cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz list); do
  RUSTC_BOOTSTRAP=1 cargo fuzz run --fuzz-dir fuzz "$t" -- -runs="${FUZZ_RUNS:-5000}" -max_len=4096 2>&1 | tail -1
done
echo "==> all tests passed"
