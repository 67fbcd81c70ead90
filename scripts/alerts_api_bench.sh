#!/usr/bin/env bash
# Alert intake on Alertmanager's own API (POST /api/v2/alerts), Auspex beside Alertmanager,
# with the same client: `auspex bench alerts --api alertmanager`. Each receiver starts fresh
# on an empty data directory per run; the order alternates per round. Needs the release build
# and Debian's prometheus-alertmanager. Used for BENCHMARKS.md ("alert intake on
# Alertmanager's own API").
#   bash scripts/alerts_api_bench.sh [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=target/release/auspex
ROUNDS=${1:-3}
[ -x "$BIN" ] || { echo "error: $BIN missing: cargo build --release -p auspex-cli" >&2; exit 2; }
command -v prometheus-alertmanager >/dev/null || { echo "error: apt-get install prometheus-alertmanager" >&2; exit 2; }
for r in $(seq 1 "$ROUNDS"); do
  for mode in new redeliver; do
    order="auspex am"; [ $((r % 2)) -eq 0 ] && order="am auspex"
    for who in $order; do
      d=$(mktemp -d); port=$((20000 + RANDOM % 10000))
      if [ "$who" = auspex ]; then
        "$BIN" serve --listen "127.0.0.1:$port" --data-dir "$d/data" > "$d/log" 2>&1 & pid=$!
        ready=/health
      else
        printf 'route:\n  receiver: blackhole\nreceivers:\n  - name: blackhole\n' > "$d/am.yml"
        prometheus-alertmanager --config.file="$d/am.yml" --storage.path="$d/amdata" \
          --web.listen-address="127.0.0.1:$port" --cluster.listen-address= > "$d/log" 2>&1 & pid=$!
        ready=/-/ready
      fi
      for _ in $(seq 100); do curl -sf -o /dev/null "127.0.0.1:$port$ready" && break; sleep 0.1; done
      out=$("$BIN" bench alerts --target "http://127.0.0.1:$port/api/v2/alerts" --api alertmanager \
        --mode "$mode" --target-pid "$pid" 2>/dev/null | tr '\n' ' ')
      echo "round=$r mode=$mode receiver=$who $out"
      kill "$pid"; wait "$pid" 2>/dev/null || true; rm -rf "$d"
    done
  done
done
