#!/usr/bin/env bash
# Start throwaway Redis and PostgreSQL servers on loopback for the test suite.
# Source it: it exports FLASHSALE_TEST_REDIS_URL, FLASHSALE_TEST_REDIS_CLUSTER_URL (a 3-master Redis
# Cluster) and FLASHSALE_TEST_POSTGRES_URL, and stops them all on exit. The ports come from REDIS_PORT,
# REDIS_CLUSTER_PORTS (three, space-separated; REDIS_CLUSTER_PORTS=none starts no Cluster) and PG_PORT.
set -euo pipefail

REDIS_PORT="${REDIS_PORT:-63799}"
PG_PORT="${PG_PORT:-54329}"
REDIS_CLUSTER_PORTS="${REDIS_CLUSTER_PORTS:-7001 7002 7003}"
SERVICES_DIR="$(mktemp -d /tmp/flashsale-services.XXXXXX)"
chmod 755 "$SERVICES_DIR"
# Exported so the exit trap still sees them when the caller set them only for the `.` command.
export REDIS_PORT PG_PORT REDIS_CLUSTER_PORTS SERVICES_DIR

start_redis() {
  mkdir -p "$SERVICES_DIR/redis"
  redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --dir "$SERVICES_DIR/redis" \
    --appendonly yes --appendfsync everysec --save '' --daemonize yes \
    --pidfile "$SERVICES_DIR/redis/redis.pid" --logfile "$SERVICES_DIR/redis/redis.log"
  for _ in $(seq 50); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
  redis-cli -p "$REDIS_PORT" ping >/dev/null
  export FLASHSALE_TEST_REDIS_URL="redis://127.0.0.1:${REDIS_PORT}/0"
  export FLASHSALE_TEST_REDIS_SERVER_DIR="$SERVICES_DIR/redis"
}

# Three masters on loopback, no replicas: the Redis ledger's contract suite runs on it (tests/contract).
start_redis_cluster() {
  [ "$REDIS_CLUSTER_PORTS" = none ] && return
  local port nodes=()
  for port in $REDIS_CLUSTER_PORTS; do
    mkdir -p "$SERVICES_DIR/cluster/$port"
    redis-server --bind 127.0.0.1 --port "$port" --dir "$SERVICES_DIR/cluster/$port" \
      --cluster-enabled yes --cluster-config-file "$SERVICES_DIR/cluster/$port/nodes.conf" \
      --appendonly no --save '' --daemonize yes \
      --pidfile "$SERVICES_DIR/cluster/$port/redis.pid" --logfile "$SERVICES_DIR/cluster/$port/redis.log"
    for _ in $(seq 50); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
    nodes+=("127.0.0.1:$port")
  done
  redis-cli --cluster create "${nodes[@]}" --cluster-replicas 0 --cluster-yes >/dev/null
  for port in $REDIS_CLUSTER_PORTS; do
    for _ in $(seq 100); do
      redis-cli -p "$port" cluster info | grep -q '^cluster_state:ok' && break
      sleep 0.1
    done
    redis-cli -p "$port" cluster info | grep -q '^cluster_state:ok'
  done
  export FLASHSALE_TEST_REDIS_CLUSTER_URL="redis+cluster://${nodes[0]}"
}

start_postgres() {
  local bin
  bin="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n1)"
  mkdir -p "$SERVICES_DIR/pg"
  chown postgres:postgres "$SERVICES_DIR/pg"
  runuser -u postgres -- "$bin/initdb" -D "$SERVICES_DIR/pg/data" -A trust -U postgres >/dev/null
  runuser -u postgres -- "$bin/pg_ctl" -D "$SERVICES_DIR/pg/data" -l "$SERVICES_DIR/pg/log" -w \
    -o "-h 127.0.0.1 -p $PG_PORT -k $SERVICES_DIR/pg -c fsync=on -c max_connections=200" start >/dev/null
  runuser -u postgres -- "$bin/createdb" -h 127.0.0.1 -p "$PG_PORT" -U postgres flashsale_test
  export FLASHSALE_TEST_POSTGRES_URL="postgresql+psycopg://postgres@127.0.0.1:${PG_PORT}/flashsale_test"
  export FLASHSALE_TEST_PG_BIN="$bin"
  export FLASHSALE_TEST_PG_DATA="$SERVICES_DIR/pg/data"
}

stop_services() {
  redis-cli -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
  if [ "$REDIS_CLUSTER_PORTS" != none ]; then
    for port in $REDIS_CLUSTER_PORTS; do redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || true; done
  fi
  if [ -n "${FLASHSALE_TEST_PG_BIN:-}" ]; then
    runuser -u postgres -- "$FLASHSALE_TEST_PG_BIN/pg_ctl" -D "$SERVICES_DIR/pg/data" -m fast stop >/dev/null 2>&1 || true
  fi
  rm -rf "$SERVICES_DIR"
}
trap stop_services EXIT

start_redis
start_redis_cluster
start_postgres
