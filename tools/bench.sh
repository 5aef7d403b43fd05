#!/usr/bin/env bash
# The Performance issue's figures in one run: the bare axum handler and our signed
# `POST /twilio/voice` (new calls) under the same load generator, on SQLite and on
# PostgreSQL (when HOTLINE580_TEST_POSTGRES_URL is set), then a storm of complete calls.
# Run by hand from the repository root: `tools/bench.sh` (not part of CI).
#
# Env: HOTLINE580_TEST_POSTGRES_URL (admin URL; a database hotline580_bench_* is created
# and dropped), DURATION (closed-loop seconds, 10), RATE (open-loop req/s, 1000),
# STORM_CALLS (1000), STORM_OVER (60 s), VOLUNTEERS (10000), BACKENDS ("sqlite postgres"),
# SKIP_BUILD (set: use the release build already there).
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10}
RATE=${RATE:-1000}
STORM_CALLS=${STORM_CALLS:-1000}
STORM_OVER=${STORM_OVER:-60}
VOLUNTEERS=${VOLUNTEERS:-10000}
BACKENDS=${BACKENDS:-sqlite postgres}
PG_ADMIN=${HOTLINE580_TEST_POSTGRES_URL:-}
TARGET_DIR=${CARGO_TARGET_DIR:-target}

[[ -n "${SKIP_BUILD:-}" ]] || cargo build --release --bin hotline580 --example loadgen --example hello_server --example fake_provider >&2
BIN=$TARGET_DIR/release/hotline580
EX=$TARGET_DIR/release/examples

WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [[ -n "$PG_ADMIN" ]]; then
    for db in $(psql "$PG_ADMIN" -Atc "SELECT datname FROM pg_database WHERE datname LIKE 'hotline580_bench_$$_%'"); do
      psql "$PG_ADMIN" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null
    done
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

PORT=8580; HELLO_PORT=8590; FAKE_PORT=8591
TOKEN=bench-auth-token-0123456789
PUBLIC=http://127.0.0.1:$PORT
export HOTLINE580__SERVER__LISTEN=127.0.0.1:$PORT
export HOTLINE580__SERVER__PUBLIC_URL=$PUBLIC
export HOTLINE580__TELEPHONY__PROVIDER=twilio
export HOTLINE580__TWILIO__ACCOUNT_SID=ACbench0000000000000000000000000
export HOTLINE580__TWILIO__AUTH_TOKEN=$TOKEN
export HOTLINE580__TWILIO__API_BASE=http://127.0.0.1:$FAKE_PORT
export HOTLINE580__TWILIO__VALIDATE_SIGNATURES=true
export HOTLINE580__DISPATCH__QUIET_HOURS=off
export HOTLINE580__LOG__LEVEL=warn
# The load comes from one resident's number: lift the per-number limits
# (limits.*) so every request takes the full path (the limiter is still asked).
export HOTLINE580__LIMITS__WEBHOOK_PER_MINUTE=100000000
export HOTLINE580__LIMITS__INTAKE_PER_HOUR=100000000
LOAD=("$EX/loadgen")
COMMON=(--target "http://127.0.0.1:$PORT" --public-url "$PUBLIC" --token "$TOKEN")

echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -sr), $(date -u +%FT%TZ)"

# The community: one resident at the centre, volunteers spread over a 20 km square.
cat > "$WORK/residents.csv" <<EOF
name,phone,address,lat,lon,language,grid
张大爷,+8613800000001,解放碑1号,29.5630,106.5516,zh,网格3
EOF
awk -v n="$VOLUNTEERS" 'BEGIN {
  print "name,phone,lat,lon,skills,languages,max_active"; srand(580)
  for (i = 0; i < n; i++) {
    lat = 29.563 + (rand() * 20000 - 10000) / 111195; lon = 106.5516 + (rand() * 20000 - 10000) / 96700
    skills = (i % 2 == 0) ? "repair;errands" : "companion;escort"
    printf "v%d,+86139%08d,%.6f,%.6f,%s,zh,2\n", i, i, lat, lon, skills
  }
}' > "$WORK/volunteers.csv"

"$EX/fake_provider" 127.0.0.1:$FAKE_PORT > "$WORK/provider.log" 2>/dev/null &
PIDS+=($!)

wait_http() { # url
  for _ in $(seq 1 500); do curl -sf -o /dev/null "$1" && return 0; sleep 0.01; done
  echo "not ready: $1" >&2; return 1
}
field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p"; }

echo
echo "== bare axum handler (fixed TwiML), closed loop, 32 connections, ${DURATION}s"
"$EX/hello_server" 127.0.0.1:$HELLO_PORT 2>/dev/null &
HELLO=$!; PIDS+=($HELLO)
for _ in $(seq 1 500); do curl -s -o /dev/null "http://127.0.0.1:$HELLO_PORT/" && break; sleep 0.01; done
sleep 0.3
BARE=$("${LOAD[@]}" closed --target "http://127.0.0.1:$HELLO_PORT" --public-url "$PUBLIC" --token "$TOKEN" --connections 32 --duration "$DURATION" --prefix CAbare)
echo "$BARE"
BARE_TPUT=$(echo " $BARE" | field throughput)
echo "== bare axum handler, open loop at $RATE req/s (the tool's own floor)"
"${LOAD[@]}" open --target "http://127.0.0.1:$HELLO_PORT" --public-url "$PUBLIC" --token "$TOKEN" --rate "$RATE" --duration "$DURATION" --prefix CAbareopen
kill $HELLO; wait $HELLO 2>/dev/null || true

new_db() { # backend name -> url
  if [[ $1 == sqlite ]]; then
    echo "sqlite://$WORK/$2/hotline580.db"
  else
    local name="hotline580_bench_$$_$2"
    psql "$PG_ADMIN" -qc "CREATE DATABASE $name" >/dev/null
    echo "${PG_ADMIN%/*}/$name"
  fi
}

start_service() { # url -> sets SVC, READY_MS, RSS_START_KB
  export HOTLINE580__DATABASE__URL=$1
  "$BIN" migrate >/dev/null
  "$BIN" import residents "$WORK/residents.csv" >/dev/null
  "$BIN" import volunteers "$WORK/volunteers.csv" >/dev/null
  local t0; t0=$(date +%s%N)
  "$BIN" serve 2> "$WORK/serve.log" &
  SVC=$!; PIDS+=($SVC)
  wait_http "http://127.0.0.1:$PORT/readyz"
  READY_MS=$(( ($(date +%s%N) - t0) / 1000000 ))
  sleep 1
  RSS_START_KB=$(awk '/VmRSS/ {print $2}' /proc/$SVC/status)
}

stop_service() {
  kill -TERM "$SVC"; wait "$SVC" 2>/dev/null || true
}

checkpoint() { [[ $1 == postgres ]] && psql "${HOTLINE580__DATABASE__URL}" -qc CHECKPOINT >/dev/null || true; }

sql() { # backend, query
  if [[ $1 == sqlite ]]; then sqlite3 "${HOTLINE580__DATABASE__URL#sqlite://}" "$2"; else psql "$HOTLINE580__DATABASE__URL" -Atc "$2"; fi
}

pct() { # stdin: numbers -> "median p99 n"
  sort -n | awk '{ a[NR] = $1 } END {
    if (NR == 0) { print "NaN NaN 0"; exit }
    m = a[int((NR + 1) / 2)]; i = int(NR * 0.99 + 0.999); if (i < 1) i = 1; print m, a[i], NR }'
}

for backend in $BACKENDS; do
  if [[ $backend == postgres && -z "$PG_ADMIN" ]]; then
    echo; echo "SKIP PostgreSQL: HOTLINE580_TEST_POSTGRES_URL is not set"; continue
  fi
  echo
  echo "== $backend: signed new calls (signature, database write, TwiML)"
  start_service "$(new_db "$backend" load)"
  echo "ready_ms=$READY_MS rss_after_start_mb=$((RSS_START_KB / 1024))"
  checkpoint "$backend"
  OURS=$("${LOAD[@]}" closed "${COMMON[@]}" --connections 32 --duration "$DURATION" --prefix "CAmax$backend")
  echo "$OURS"
  OURS_TPUT=$(echo " $OURS" | field throughput)
  awk -v a="$OURS_TPUT" -v b="$BARE_TPUT" 'BEGIN { printf "ratio_to_bare=%.3f (ours %.0f / bare %.0f req/s)\n", a / b, a, b }'
  for run in 1 2 3; do
    checkpoint "$backend"
    "${LOAD[@]}" open "${COMMON[@]}" --rate "$RATE" --duration "$DURATION" --prefix "CAopen${run}$backend"
  done
  stop_service

  echo
  echo "== $backend: storm, $STORM_CALLS complete calls over ${STORM_OVER}s, $VOLUNTEERS volunteers"
  start_service "$(new_db "$backend" storm)"
  echo "ready_ms=$READY_MS rss_after_start_mb=$((RSS_START_KB / 1024))"
  "${LOAD[@]}" storm "${COMMON[@]}" --calls "$STORM_CALLS" --over "$STORM_OVER" --prefix "CAstorm$backend"
  sleep 3 # the last offers leave the outbox
  echo "peak_rss_mb=$(( $(awk '/VmHWM/ {print $2}' /proc/$SVC/status) / 1024 ))"
  echo "requests=$(sql "$backend" "SELECT COUNT(*) FROM requests") classified=$(sql "$backend" "SELECT COUNT(*) FROM requests WHERE classified_at IS NOT NULL") offered=$(sql "$backend" "SELECT COUNT(DISTINCT request_id) FROM offers") not_offered=$(sql "$backend" "SELECT COUNT(*) FROM requests r WHERE r.classified_at IS NOT NULL AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.request_id = r.id AND o.offer_id IS NOT NULL AND o.status IN ('sent', 'delivered'))")"
  echo "errors_logged=$(grep -c ERROR "$WORK/serve.log" || true)"
  read -r MED P99 N < <(sql "$backend" "SELECT o.t - r.classified_at FROM requests r JOIN (SELECT request_id, MIN(updated_at) AS t FROM outbox WHERE offer_id IS NOT NULL AND status IN ('sent', 'delivered') GROUP BY request_id) o ON o.request_id = r.id" | pct)
  echo "classified_to_first_offer_sent_ms: median=$MED p99=$P99 (n=$N)"
  stop_service
done
