#!/usr/bin/env bash
# The main job: a pool on the embedded devnet, a simulated fleet mining on it (through PROXY headers
# carrying real public IPs from 16 countries), and the live dashboard. Ctrl-C stops everything it started.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh

MINERS="${MINERS:-20}"
REDIS_PORT=6390
mkdir -p var/redis
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir var/redis --save "" --appendonly no \
  > var/redis.log 2>&1 &
pids+=($!)
for _ in $(seq 50); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done

.venv/bin/geostratum run --config configs/devnet.toml --workers "${WORKERS:-1}" > var/pool.log 2>&1 &
pids+=($!)
for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/3333) 2>/dev/null && break; sleep 0.1; done

echo "pool:      stratum+tcp://127.0.0.1:3333   (log: var/pool.log)"
echo "dashboard: http://127.0.0.1:8080/"
echo "metrics:   http://127.0.0.1:8080/metrics"
echo "fleet:     $MINERS simulated miners; blocks and shares below, Ctrl-C to stop"
.venv/bin/geostratum simulate --miners "$MINERS" --proxy v2 ${DURATION:+--duration "$DURATION"} &
pids+=($!)
wait "${pids[-1]}"
