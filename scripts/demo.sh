#!/usr/bin/env bash
# The main job: a pool on the embedded devnet, a simulated fleet mining on it (392 one-account miners in
# 26 countries, US states and Chinese provinces, through PROXY headers carrying real public IPs), and the
# live dashboard. Ctrl-C stops everything it started.
# The payout books go to a PostgreSQL of the demo's own (initdb + pg_ctl on loopback, persistent in
# var/postgres), migrated by `geostratum db migrate`.
# Env: STRATUM_PORT (3333), ADMIN_PORT (8080), REDIS_PORT (6390), PG_PORT (6392), MINERS (0: the demo fleet, which passes
# the production privacy rule; N: N miners over the CCAF country mix), HASHRATE (H/s per miner, 1000),
# DURATION (seconds, default forever), FRESH=1 (drop the stored shares and the devnet chain, start empty),
# DEMO_DIR (var: where Redis, the books, the chain, the journal and the logs live), SKIP_SETUP=1 (already set up),
# REPORT_EVERY (seconds between the fleet's progress lines, 10).
set -euo pipefail
cd "$(dirname "$0")/.."
[[ "${SKIP_SETUP:-0}" == 1 ]] || ./scripts/setup.sh
mkdir -p "${DEMO_DIR:-var}"
VAR="$(cd "${DEMO_DIR:-var}" && pwd)"

STRATUM_PORT="${STRATUM_PORT:-3333}"
ADMIN_PORT="${ADMIN_PORT:-8080}"
REDIS_PORT="${REDIS_PORT:-6390}"
PG_PORT="${PG_PORT:-6392}"
MINERS="${MINERS:-0}"
HASHRATE="${HASHRATE:-1000}"
# A port already taken (another demo on this machine?) would have the demo talk to someone else's server.
for port in "$STRATUM_PORT" "$ADMIN_PORT" "$REDIS_PORT" "$PG_PORT"; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "demo: port $port on 127.0.0.1 is in use; choose others with STRATUM_PORT, ADMIN_PORT, REDIS_PORT, PG_PORT" >&2
    exit 1
  fi
done
# PostgreSQL will not run as root: then the server runs as the postgres user the package created.
as_pg() { if [[ "$(id -u)" == 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi; }
PG_BIN="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)"
PG_DIR="$VAR/postgres"
if [[ "$(id -u)" == 0 ]] && ! runuser -u postgres -- test -x "$VAR" 2>/dev/null; then
  # The folder is closed to the postgres user: a folder of its own, one per demo folder.
  key="$PWD"; [[ -z "${DEMO_DIR:-}" ]] || key="$VAR"
  PG_DIR="/var/tmp/geostratum-demo-postgres-$(echo "$key" | md5sum | cut -c1-8)"
fi
# The shares in Redis and the books name blocks of the devnet chain: all are kept, or all start over.
if [[ "${FRESH:-0}" == 1 ]]; then rm -rf "$VAR/redis" "$VAR/devnet-chain.dat" "$VAR/journal" "$PG_DIR"; fi
mkdir -p "$VAR/redis" "$PG_DIR"
sim_pid="" pool_pid="" redis_pid="" pg_pid=""
# Stop one process and wait for it to exit (SIGKILL after 30 s: a hung process does not hang the demo).
stop() {
  local pid="$1" name="$2"
  [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then echo "demo: $name did not stop in 30 s; killing it" >&2; kill -KILL "$pid"; fi
  wait "$pid" 2>/dev/null || true
}
# In dependency order: the fleet, then the pool (it flushes its last share batch to Redis and its
# credits to the books), then the stores it writes to. The pool and Redis run in sessions of their own
# (setsid), so Ctrl-C reaches only the fleet and this script, never them before their turn.
cleanup() {
  trap - EXIT INT TERM
  stop "$sim_pid" fleet
  stop "$pool_pid" pool
  stop "$redis_pid" redis-server
  if [[ -n "$pg_pid" ]]; then as_pg "$PG_BIN/pg_ctl" -D "$PG_DIR" -m fast -w -t 30 stop > /dev/null || true; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Persistence on (append-only file in var/redis): the demo's shares and rollups survive a restart.
setsid redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$VAR/redis" --appendonly yes --save "60 1" \
  > "$VAR/redis.log" 2>&1 &
redis_pid=$!
for _ in $(seq 50); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
if ! kill -0 "$redis_pid" 2>/dev/null; then
  echo "demo: redis-server did not start on port $REDIS_PORT; the end of $VAR/redis.log:" >&2
  tail -3 "$VAR/redis.log" >&2; exit 1
fi

# The payout books.
[[ "$(id -u)" == 0 ]] && chown postgres: "$PG_DIR" && chmod 700 "$PG_DIR"
if [[ ! -f "$PG_DIR/PG_VERSION" ]]; then
  as_pg "$PG_BIN/initdb" -D "$PG_DIR" -U postgres -A trust -E UTF8 --no-locale > "$VAR/postgres-init.log" 2>&1
fi
if ! as_pg "$PG_BIN/pg_ctl" -D "$PG_DIR" -l "$PG_DIR/server.log" -w -t 30 \
    -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -k $PG_DIR" start > /dev/null 2>&1; then
  echo "demo: PostgreSQL did not start on port $PG_PORT; the end of $PG_DIR/server.log:" >&2
  tail -3 "$PG_DIR/server.log" >&2; exit 1
fi
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
export GEOSTRATUM__POOL__DATA_DIR="\"$VAR\"" GEOSTRATUM__LEDGER__JOURNAL_DIR="\"$VAR/journal\""
export GEOSTRATUM__CHAIN__DEVNET__CHAIN_FILE="\"$VAR/devnet-chain.dat\""
# Simulated miners hash ~1 kH/s each: start low enough that the first share comes within seconds.
export GEOSTRATUM__STRATUM__PORTS="[{port = $STRATUM_PORT, host = \"127.0.0.1\", start_difficulty = 0.000003, \
min_difficulty = 0.000001, max_difficulty = 1.0, target_share_seconds = 10.0}]"

setsid .venv/bin/geostratum run --config configs/devnet.toml --workers "${WORKERS:-1}" > "$VAR/pool.log" 2>&1 &
pool_pid=$!
for _ in $(seq 300); do
  (exec 3<>/dev/tcp/127.0.0.1/"$STRATUM_PORT") 2>/dev/null && break
  if ! kill -0 "$pool_pid" 2>/dev/null; then
    echo "demo: the pool exited at start; the end of $VAR/pool.log:" >&2; tail -5 "$VAR/pool.log" >&2; exit 1
  fi
  sleep 0.1
done

if [[ "$MINERS" == 0 ]]; then fleet=(--demo-fleet); else fleet=(--miners "$MINERS"); fi
echo "pool:      stratum+tcp://127.0.0.1:$STRATUM_PORT   (log: $VAR/pool.log)"
echo "dashboard: http://127.0.0.1:$ADMIN_PORT/"
echo "map:       http://127.0.0.1:$ADMIN_PORT/map#token=$READ_TOKEN   (hashrate by country, US state, Chinese province)"
echo "sign in:   http://127.0.0.1:$ADMIN_PORT/#token=$READ_TOKEN   (read token for this run)"
echo "miner:     http://127.0.0.1:$ADMIN_PORT/miner/sim0   (one account's own page: workers, best shares, earnings)"
echo "metrics:   http://127.0.0.1:$ADMIN_PORT/metrics"
echo "redis:     redis://127.0.0.1:$REDIS_PORT/0   (persistent in $VAR/redis; FRESH=1 starts empty)"
echo "books:     postgresql://postgres@127.0.0.1:$PG_PORT/geostratum   (persistent in $PG_DIR)"
echo "payouts:   GEOSTRATUM__MONEY__DSN=$GEOSTRATUM__MONEY__DSN \\"
echo "             .venv/bin/geostratum payouts --config configs/devnet.toml balances   (blocks credit at 3 confirmations)"
echo "export:    .venv/bin/geostratum export --config configs/devnet.toml --redis-url redis://127.0.0.1:$REDIS_PORT/0 \\"
echo "             --layout ccaf-countries -o -   (this month to date; also ccaf-china, ccaf-us, regions --format json)"
if [[ "$MINERS" == 0 ]]; then what="the demo fleet (392 miners)"; else what="$MINERS miners"; fi
echo "fleet:     $what at $HASHRATE H/s each, as set; every ${REPORT_EVERY:-10} s below: shares, blocks, the hashrate the"
echo "           fleet really computed over the last minute (its own count: the truth) and the pool's 1m"
echo "           estimate from accepted shares with its 95 % range. Ctrl-C stops the fleet, the pool, then the stores."
GEOSTRATUM_READ_TOKEN="$READ_TOKEN" .venv/bin/geostratum simulate "${fleet[@]}" --hashrate "$HASHRATE" \
  --port "$STRATUM_PORT" --proxy v2 --pool-api "http://127.0.0.1:$ADMIN_PORT" --report-every "${REPORT_EVERY:-10}" \
  ${DURATION:+--duration "$DURATION"} &
sim_pid=$!
wait "$sim_pid" || true
sim_pid=""
