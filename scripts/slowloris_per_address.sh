#!/usr/bin/env bash
# The slowloris attack from 127.0.0.1 against `auspex serve` with 100 connection slots, the
# probe from 127.0.0.2, with and without a per-address limit (same binary, the config
# alternating). Used for BENCHMARKS.md ("a per-address limit").
#   bash scripts/slowloris_per_address.sh [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=target/release/auspex
ROUNDS=${1:-3}
[ -x "$BIN" ] || { echo "error: $BIN missing: cargo build --release -p auspex-cli" >&2; exit 2; }
for r in $(seq 1 "$ROUNDS"); do
  for per in 1024 50; do
    d=$(mktemp -d); port=$((20000 + RANDOM % 10000))
    printf '[limits]\nmax_connections = 100\nmax_connections_per_address = %s\n' "$per" > "$d/slow.toml"
    "$BIN" serve --listen "127.0.0.1:$port" --data-dir "$d/data" --config "$d/slow.toml" > "$d/log" 2>&1 & pid=$!
    for _ in $(seq 50); do curl -sf -o /dev/null "127.0.0.1:$port/health" && break; sleep 0.2; done
    out=$(python3 scripts/slowloris.py --port "$port" --mode headers --connections 150 --seconds 60 \
      --give-up 70 --probe-from 127.0.0.2 2>&1 | tail -2 | tr '\n' ' ')
    over=$(curl -s --interface 127.0.0.3 "127.0.0.1:$port/metrics" \
      | grep -E '^auspex_http_(connections_over_address_limit|header_timeouts)_total' | tr '\n' ' ')
    echo "round=$r per_address=$per $out $over"
    kill "$pid"; wait "$pid" 2>/dev/null || true; rm -rf "$d"
  done
done
