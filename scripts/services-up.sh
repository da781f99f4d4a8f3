#!/usr/bin/env bash
# Make sure the local RabbitMQ, Redis and PostgreSQL the gateway and its tests use are running,
# and that PostgreSQL has the project's database (returns_gateway: RGW_DATABASE_URL's default).
set -euo pipefail

wait_for() {  # wait_for <what> <seconds> <command...>
  local what=$1 seconds=$2; shift 2
  for _ in $(seq 1 "$seconds"); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 1
  done
  echo "services-up: $what did not come up within ${seconds}s" >&2
  return 1
}

if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  echo "services-up: starting Redis" >&2
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no
  wait_for Redis 30 redis-cli -h 127.0.0.1 -p 6379 ping
fi

if ! rabbitmq-diagnostics -q ping >/dev/null 2>&1; then
  echo "services-up: starting RabbitMQ" >&2
  rabbitmq-server -detached
  wait_for RabbitMQ 120 rabbitmq-diagnostics -q ping
fi
wait_for "RabbitMQ listener" 60 rabbitmq-diagnostics -q check_port_listener 5672

# PostgreSQL on 127.0.0.1:5432 as user postgres (the defaults of RGW_DATABASE_URL and of the
# tests' RGW_TEST_DATABASE_URL; PGHOST, PGPORT and PGUSER say otherwise). Debian's clusters
# (pg_lsclusters) are started where installed and stopped; elsewhere start it yourself
# (pg_ctl -D <data dir> start) and this only waits for it.
PG_HOST=${PGHOST:-127.0.0.1} PG_PORT=${PGPORT:-5432} PG_USER=${PGUSER:-postgres} PG_DATABASE=returns_gateway
if ! command -v pg_isready >/dev/null 2>&1; then
  echo "services-up: PostgreSQL's client tools (pg_isready, psql) are not installed" >&2
  exit 1
fi
if ! pg_isready -q -h "$PG_HOST" -p "$PG_PORT"; then
  if command -v pg_lsclusters >/dev/null 2>&1; then
    # version, cluster, port, status... of each cluster; start the down ones that own our port
    while read -r version cluster port status _; do
      if [ "$port" = "$PG_PORT" ] && [ "$status" != online ]; then
        echo "services-up: starting PostgreSQL $version/$cluster" >&2
        pg_ctlcluster --skip-systemctl-redirect "$version" "$cluster" start
      fi
    done < <(pg_lsclusters -h)
  fi
  wait_for PostgreSQL 60 pg_isready -q -h "$PG_HOST" -p "$PG_PORT"
fi
if [ -z "$(psql -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" -d postgres -XtAc \
    "SELECT 1 FROM pg_database WHERE datname = '$PG_DATABASE'")" ]; then
  echo "services-up: creating the database $PG_DATABASE" >&2
  createdb -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" "$PG_DATABASE"
fi
