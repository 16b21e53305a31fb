#!/usr/bin/env bash
# Load benchmark: authenticated GET and POST of partners over HTTP on
# loopback, against the release binary, with wrk; the raw one-row-per-commit
# rate of the same database measured in the same run.
#
#   scripts/load.sh                  # SQLite
#   PARTNERLOOP_BENCH_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/postgres scripts/load.sh   # and PostgreSQL
#
# Env: SECONDS_PER_RUN (default 10), CONNECTIONS (default 32), WRK_THREADS (default 1).
set -euo pipefail
cd "$(dirname "$0")/.."

secs=${SECONDS_PER_RUN:-10}
conns=${CONNECTIONS:-32}
threads=${WRK_THREADS:-1}
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
cargo build --release --quiet
bin=target/release/partnerloop
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

cat > "$work/post.lua" <<'LUA'
local token = os.getenv("TOKEN")
local run = os.getenv("RUN_ID")
local n = 0
request = function()
  n = n + 1
  local body = string.format('{"name":"Load %s %d","type":"agency","contact":{"name":"Load","email":"l%s-%d@load.example"}}', run, n, run, n)
  return wrk.format("POST", "/api/v1/partners", {["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. token}, body)
end
LUA

# Prints "requests/s p50 p99" from wrk --latency output.
summary() {
  awk '/Requests\/sec/ {rps=$2} /^ +50%/ {p50=$2} /^ +99%/ {p99=$2} /Non-2xx/ {bad=$NF} END {printf "%8.0f req/s  p50 %8s  p99 %8s%s\n", rps, p50, p99, (bad ? "  NON-2XX " bad : "")}'
}

bench_engine() {
  local engine=$1 url=$2 port=18${RANDOM:0:3}
  PARTNERLOOP_DATABASE_URL=$url PARTNERLOOP_LOG=warn PARTNERLOOP_BIND=127.0.0.1:$port $bin serve >/dev/null 2>&1 &
  local pid=$!
  for _ in $(seq 100); do curl -fs "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.1; done
  local token
  token=$(PARTNERLOOP_DATABASE_URL=$url PARTNERLOOP_LOG=warn $bin keys create --role admin --name load)
  local id
  id=$(curl -fs -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
    -d '{"name":"Bench Partner","type":"consultant","contact":{"name":"B","email":"b@bench.example"}}' \
    "http://127.0.0.1:$port/api/v1/partners" | grep -o '"id":"prt_[^"]*"' | head -n 1 | cut -d'"' -f4)
  local base="http://127.0.0.1:$port"
  echo "## $engine ($secs s per run, $conns connections, wrk threads $threads, $(nproc) cores)"
  printf '%-34s' "GET /healthz (no auth, no DB)"; wrk -t"$threads" -c"$conns" -d"${secs}s" --latency "$base/healthz" | summary
  printf '%-34s' "GET /api/v1/partners/{id}"; wrk -t"$threads" -c"$conns" -d"${secs}s" --latency -H "Authorization: Bearer $token" "$base/api/v1/partners/$id" | summary
  printf '%-34s' "POST /api/v1/partners"; TOKEN=$token RUN_ID=$RANDOM wrk -t"$threads" -c"$conns" -d"${secs}s" --latency -s "$work/post.lua" "$base" | summary
  kill -TERM $pid; wait $pid || true
}

bench_engine sqlite "sqlite://$work/load.db"
if [ -n "${PARTNERLOOP_BENCH_POSTGRES_URL:-}" ]; then
  db="pl_load_$RANDOM"
  psql "$PARTNERLOOP_BENCH_POSTGRES_URL" -qc "CREATE DATABASE $db"
  bench_engine postgres "${PARTNERLOOP_BENCH_POSTGRES_URL%/*}/$db"
  psql "$PARTNERLOOP_BENCH_POSTGRES_URL" -qc "DROP DATABASE $db WITH (FORCE)"
fi
echo "## raw one-row-per-commit rate (same settings, same run)"
PARTNERLOOP_BENCH_SECONDS=$secs cargo bench --quiet --bench commit_rate 2>/dev/null | grep raw_commit_rate
