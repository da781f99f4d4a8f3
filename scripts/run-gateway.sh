#!/usr/bin/env bash
# Start the gateway on http://127.0.0.1:8080 with a fresh API key for partner "demo".
set -euo pipefail
cd "$(dirname "$0")/.."
export RGW_ROUTES_FILE="${RGW_ROUTES_FILE:-routes.yaml}"
bin=.venv/bin
$bin/returns-gateway db upgrade >&2   # the record's schema at this code's revision (a no-op when it is)
key=$($bin/returns-gateway keys create --partner demo --scope returns:write --scope returns:read \
        --label "make run" 2>/dev/null | tail -n 1)
example=contracts/return-request/v1/examples/valid/defective-ssd-with-serials.json
cat <<INFO

  Gateway starting on http://127.0.0.1:${RGW_PORT:-8080}   (OpenAPI: /schema, Swagger UI: /schema/swagger)
  API key for partner "demo" (shown once):
    $key

  Submit a return:
    curl -s -X POST http://127.0.0.1:${RGW_PORT:-8080}/v1/returns \\
      -H "Authorization: Bearer $key" -H "Idempotency-Key: \$(uuidgen || date +%s%N)" \\
      -H "Content-Type: application/json" --data @$example

INFO
exec $bin/returns-gateway serve --host "${RGW_HOST:-127.0.0.1}" --port "${RGW_PORT:-8080}"
