#!/usr/bin/env bash
# The whole test suite, from a fresh machine (Debian, root, Rust present):
#   1. installs the real peers the tests talk to (Debian packages, a Python venv);
#   2. checks formatting and lints;
#   3. runs every test. A test whose peer is missing fails; nothing is skipped.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
# Peers used by the tests today. Later capabilities add theirs here.
command -v python3 >/dev/null || need_apt+=(python3)
command -v curl >/dev/null || need_apt+=(curl)
if ((${#need_apt[@]})); then
  echo "==> installing Debian packages: ${need_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need_apt[@]}"
fi

echo "==> cargo fmt --check"
cargo fmt --all -- --check
echo "==> cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "==> cargo test"
cargo test --workspace --locked
echo "==> all tests passed"
