#!/usr/bin/env bash
# The main job: a pool on the embedded devnet, a simulated fleet mining on it (392 one-account miners in
# 26 countries, US states and Chinese provinces, through PROXY headers carrying real public IPs), and the
# live dashboard. Ctrl-C stops everything it started.
# The payout books go to a PostgreSQL of the demo's own (initdb + pg_ctl on loopback, persistent in
# var/postgres), migrated by `geostratum db migrate`.
# Env: STRATUM_PORT (3333), ADMIN_PORT (8080), REDIS_PORT (6390), PG_PORT (6392), MINERS (0: the demo fleet, which passes
# the production privacy rule; N: N miners over the CCAF country mix), HASHRATE (H/s per miner, 1000),
# DURATION (seconds, default forever), FRESH=1 (drop the stored shares and the devnet chain, start empty).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh

STRATUM_PORT="${STRATUM_PORT:-3333}"
ADMIN_PORT="${ADMIN_PORT:-8080}"
REDIS_PORT="${REDIS_PORT:-6390}"
PG_PORT="${PG_PORT:-6392}"
MINERS="${MINERS:-0}"
HASHRATE="${HASHRATE:-1000}"
# PostgreSQL will not run as root: then the server runs as the postgres user the package created.
as_pg() { if [[ "$(id -u)" == 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi; }
PG_BIN="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)"
PG_DIR="$PWD/var/postgres"
if [[ "$(id -u)" == 0 ]] && ! runuser -u postgres -- test -x "$PWD/var" 2>/dev/null && ! runuser -u postgres -- test -x "$PWD" 2>/dev/null; then
  PG_DIR="/var/tmp/geostratum-demo-postgres-$(echo "$PWD" | md5sum | cut -c1-8)"   # the project folder is closed to it
fi
# The shares in Redis and the books name blocks of the devnet chain: all are kept, or all start over.
if [[ "${FRESH:-0}" == 1 ]]; then rm -rf var/redis var/devnet-chain.dat "$PG_DIR"; fi
mkdir -p var/redis "$PG_DIR"
pids=()
pg_pid=""
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [[ -n "$pg_pid" ]]; then kill -INT "$pg_pid" 2>/dev/null || true; fi   # fast shutdown, data kept
}
trap cleanup EXIT INT TERM

# Persistence on (append-only file in var/redis): the demo's shares and rollups survive a restart.
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir var/redis --appendonly yes --save "60 1" \
  > var/redis.log 2>&1 &
pids+=($!)
for _ in $(seq 50); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done

# The payout books.
[[ "$(id -u)" == 0 ]] && chown postgres: "$PG_DIR" && chmod 700 "$PG_DIR"
if [[ ! -f "$PG_DIR/PG_VERSION" ]]; then
  as_pg "$PG_BIN/initdb" -D "$PG_DIR" -U postgres -A trust -E UTF8 --no-locale > var/postgres-init.log 2>&1
fi
as_pg "$PG_BIN/pg_ctl" -D "$PG_DIR" -l "$PG_DIR/server.log" -w -t 30 \
  -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -k $PG_DIR" start > /dev/null
pg_pid="$(head -1 "$PG_DIR/postmaster.pid")"
as_pg "$PG_BIN/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres -tAc \
  "SELECT 1 FROM pg_database WHERE datname = 'geostratum'" | grep -q 1 \
  || as_pg "$PG_BIN/createdb" -h 127.0.0.1 -p "$PG_PORT" -U postgres geostratum
export GEOSTRATUM__MONEY__DSN="postgresql://postgres@127.0.0.1:$PG_PORT/geostratum"
.venv/bin/geostratum db --config configs/devnet.toml migrate

# A read token for this run, so the worker table and the exports open from the printed link.
READ_TOKEN="$(.venv/bin/python -c 'import secrets; print(secrets.token_urlsafe(24))')"
export GEOSTRATUM_READ_TOKENS="$READ_TOKEN"
export GEOSTRATUM__REDIS__URL="\"redis://127.0.0.1:$REDIS_PORT/0\""
export GEOSTRATUM__ADMIN__PORT="$ADMIN_PORT"
# Simulated miners hash ~1 kH/s each: start low enough that the first share comes within seconds.
export GEOSTRATUM__STRATUM__PORTS="[{port = $STRATUM_PORT, host = \"127.0.0.1\", start_difficulty = 0.000003, \
min_difficulty = 0.000001, max_difficulty = 1.0, target_share_seconds = 10.0}]"

.venv/bin/geostratum run --config configs/devnet.toml --workers "${WORKERS:-1}" > var/pool.log 2>&1 &
pids+=($!)
for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/"$STRATUM_PORT") 2>/dev/null && break; sleep 0.1; done

if [[ "$MINERS" == 0 ]]; then fleet=(--demo-fleet); else fleet=(--miners "$MINERS"); fi
echo "pool:      stratum+tcp://127.0.0.1:$STRATUM_PORT   (log: var/pool.log)"
echo "dashboard: http://127.0.0.1:$ADMIN_PORT/"
echo "map:       http://127.0.0.1:$ADMIN_PORT/map#token=$READ_TOKEN   (hashrate by country, US state, Chinese province)"
echo "sign in:   http://127.0.0.1:$ADMIN_PORT/#token=$READ_TOKEN   (read token for this run)"
echo "miner:     http://127.0.0.1:$ADMIN_PORT/miner/sim0   (one account's own page: workers, best shares, earnings)"
echo "metrics:   http://127.0.0.1:$ADMIN_PORT/metrics"
echo "redis:     redis://127.0.0.1:$REDIS_PORT/0   (persistent in var/redis; FRESH=1 starts empty)"
echo "books:     postgresql://postgres@127.0.0.1:$PG_PORT/geostratum   (persistent in $PG_DIR)"
echo "payouts:   GEOSTRATUM__MONEY__DSN=$GEOSTRATUM__MONEY__DSN \\"
echo "             .venv/bin/geostratum payouts --config configs/devnet.toml balances   (blocks credit at 3 confirmations)"
echo "export:    .venv/bin/geostratum export --config configs/devnet.toml --redis-url redis://127.0.0.1:$REDIS_PORT/0 \\"
echo "             --layout ccaf-countries -o -   (this month to date; also ccaf-china, ccaf-us, regions --format json)"
echo "fleet:     ${fleet[*]} at $HASHRATE H/s each; blocks and shares below, Ctrl-C to stop"
.venv/bin/geostratum simulate "${fleet[@]}" --hashrate "$HASHRATE" --port "$STRATUM_PORT" --proxy v2 \
  ${DURATION:+--duration "$DURATION"} &
pids+=($!)
wait "${pids[-1]}"
