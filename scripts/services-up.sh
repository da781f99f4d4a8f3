#!/usr/bin/env bash
# Make sure the local RabbitMQ and Redis the gateway and its tests use are running.
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
