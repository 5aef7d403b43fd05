#!/usr/bin/env bash
# A short look at one build's new-call latency on SQLite at a fixed rate: starts the
# service of build BUILD (a target profile folder with hotline580 and examples/loadgen,
# default target/release) on a fresh SQLite file and sends RATE signed new calls a second
# for DURATION seconds (defaults 200 and 5). Used to compare two builds quickly; the
# figures of record come from tools/bench.sh.
set -euo pipefail
BUILD=${BUILD:-target/release}
RATE=${RATE:-200}
DURATION=${DURATION:-5}
WORK=$(mktemp -d)
SVC=
trap '[[ -n $SVC ]] && kill $SVC 2>/dev/null; wait 2>/dev/null; rm -rf "$WORK"' EXIT
TOKEN=bench-auth-token-0123456789
export HOTLINE580__SERVER__LISTEN=127.0.0.1:8680 HOTLINE580__SERVER__PUBLIC_URL=http://127.0.0.1:8680
export HOTLINE580__TELEPHONY__PROVIDER=twilio HOTLINE580__TWILIO__ACCOUNT_SID=ACbench0000000000000000000000000
export HOTLINE580__TWILIO__AUTH_TOKEN=$TOKEN HOTLINE580__TWILIO__API_BASE=http://127.0.0.1:8691
export HOTLINE580__TWILIO__VALIDATE_SIGNATURES=true HOTLINE580__DISPATCH__QUIET_HOURS=off HOTLINE580__LOG__LEVEL=warn
export HOTLINE580__LIMITS__WEBHOOK_PER_MINUTE=100000000 HOTLINE580__LIMITS__INTAKE_PER_HOUR=100000000
export HOTLINE580__DATABASE__URL=sqlite://$WORK/db/hotline580.db
printf 'name,phone,address,lat,lon,language,grid\n张大爷,+8613800000001,解放碑1号,29.5630,106.5516,zh,网格3\n' > "$WORK/residents.csv"
"$BUILD/hotline580" migrate >/dev/null
"$BUILD/hotline580" import residents "$WORK/residents.csv" >/dev/null
"$BUILD/hotline580" serve 2> "$WORK/serve.log" & SVC=$!
for _ in $(seq 1 500); do curl -sf -o /dev/null http://127.0.0.1:8680/readyz && break; sleep 0.01; done
sleep 1.5
"$BUILD/examples/loadgen" open --target http://127.0.0.1:8680 --public-url http://127.0.0.1:8680 \
  --token "$TOKEN" --rate "$RATE" --duration "$DURATION" --prefix "CAlat$$"
