#!/usr/bin/env bash
# The soak (issue 13): does the gateway hold a steady load for an hour with flat memory and a
# stable p99?
#
#   bash bench/soak.sh [minutes] [rate]
#
# minutes  how long the load is held (default 60; a shorter run scales its windows, see below)
# rate     submissions per second to hold (default: half the capacity measured first)
#
# Builds shep in release mode. Capacity: a fresh gateway (embedded redb journal, fsync before every
# receipt) takes `shep bench run --scenario submit` in a closed loop, 32 in flight, for
# CAPACITY_SECONDS (20) with a provider acknowledging every delivery; half its receipts per second
# is the soak's rate. Then a second fresh gateway (new data directory) takes that rate in an open
# loop for the whole run, the provider acknowledging again, while this script samples the
# gateway's resident memory (VmRSS in /proc/PID/status) and `shep bench` writes the p50/p99 of
# each interval (`--interval`). The samples go to target/soak/soak.csv, the chart to
# target/soak/soak.svg (bench/soak_report.py, Python's standard library only).
#
# Verdict (exit status 1 when any fails):
#   memory flat   mean RSS of the last window within 10% of the first window after the warm-up
#   p99 stable    mean of the interval p99s of the last window within 1.2x the first window's
#   load held     every request answered OK, at least 95% of the offered rate
# A run of 30 minutes or more samples each minute, warms up for 5 and compares windows of 10
# minutes; a shorter run scales all three by minutes/30 (a 15-minute run: 30 s, 2.5 and 5 min).
#
# LOOKUP_RATE=200 adds an open-loop lookup load at that rate beside the submissions (registry,
# access audit, verification of a fixed pool); its p99 is drawn, not judged. PORT (7880) moves the
# gateway; SOAK_DIR (target/soak) the output; SHEP=/path/to/shep runs that build instead of building.
# MAX_RSS_MIB (half of this machine's memory) protects the machine: a gateway resident beyond it
# ends the load at once, and the verdict fails with the minute it happened.
set -euo pipefail
cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.."

MINUTES="${1:-60}"
RATE="${2:-}"
CAPACITY_SECONDS="${CAPACITY_SECONDS:-20}"
LOOKUP_RATE="${LOOKUP_RATE:-0}"
MAX_RSS_MIB="${MAX_RSS_MIB:-$(awk '/MemTotal/ {print int($2 / 2048)}' /proc/meminfo)}"
PORT="${PORT:-7880}"
OUT="${SOAK_DIR:-$PWD/target/soak}"
ADDR="127.0.0.1:$PORT"
URL="http://$ADDR"

if [ -z "${SHEP:-}" ]; then
  cargo build -q --release --bin shep
  SHEP="${CARGO_TARGET_DIR:-$PWD/target}/release/shep"
fi

# Sample interval, warm-up and window in seconds: 60, 300 and 600 from 30 minutes up, scaled
# down below (integer arithmetic, so every window holds the same number of samples).
TOTAL=$(( MINUTES * 60 ))
if [ "$MINUTES" -ge 30 ]; then SCALE_NOTE="windows of 10 min after a 5-min warm-up, a sample each minute"; STEP=60
else STEP=$(( MINUTES * 2 )); SCALE_NOTE="a ${MINUTES}-minute run: everything scaled by ${MINUTES}/30: windows of $(( STEP * 10 )) s after a warm-up of $(( STEP * 5 )) s, a sample each ${STEP} s"; fi
[ "$STEP" -ge 2 ] || { echo "soak: at least 1 minute" >&2; exit 64; }

# Only what an earlier soak left: SOAK_DIR may name a directory with other things in it.
mkdir -p "$OUT"
rm -rf "${OUT:?}/capacity" "${OUT:?}/soak"
rm -f "$OUT"/{capacity,soak}.{toml,log} "$OUT"/{capacity.json,capacity.out,bench.out,report.json} \
  "$OUT"/{intervals,lookups}.jsonl "$OUT"/{lookups.json,lookups.out,rss.csv,soak.csv,soak.json,soak.svg}
GATEWAY_PID=
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true' EXIT

wait_port() { for _ in $(seq 1 300); do (exec 3<>"/dev/tcp/${1%:*}/${1#*:}") 2>/dev/null && return 0; sleep 0.1; done; echo "nothing on $1" >&2; exit 1; }

# Every setting the gateway runs with is in this one file. Participant authentication is off, as in
# bench/peers.sh: the soak measures memory and latency over plaintext. Load runs switch the
# exchange journal (a test aid) off, as bench/peers.sh and bench/cluster.sh do; every check stays on.
config() {
  cat <<TOML
listen = "$ADDR"
data_dir = "$1"
[auth]
participants = "off"
[toolkit]
exchanges = false
TOML
}

# start <name>: a gateway on a fresh data directory <OUT>/<name>
start() {
  config "$OUT/$1" >"$OUT/$1.toml"
  "$SHEP" serve --config "$OUT/$1.toml" >"$OUT/$1.log" 2>&1 &
  GATEWAY_PID=$!
  wait_port "$ADDR"
  # The port opens before start-up is over: the line saying so comes once the demo identities the
  # load signs with are on disk.
  for _ in $(seq 1 300); do grep -q "listening on" "$OUT/$1.log" && return 0; sleep 0.1; done
  echo "soak: the gateway on $ADDR did not finish starting (see $OUT/$1.log)" >&2; exit 1
}
# A graceful stop, but not an endless one: a gateway holding gigabytes took a minute to stop.
stop() {
  kill -INT "$GATEWAY_PID" 2>/dev/null || true
  for _ in $(seq 1 180); do kill -0 "$GATEWAY_PID" 2>/dev/null || break; sleep 1; done
  if kill -0 "$GATEWAY_PID" 2>/dev/null; then
    echo "soak: the gateway did not stop within 180 s of SIGINT: killed" >&2
    kill -KILL "$GATEWAY_PID" 2>/dev/null || true
  fi
  wait "$GATEWAY_PID" 2>/dev/null || true
}
rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }

if [ -z "$RATE" ]; then
  start capacity
  "$SHEP" bench run --gateway "$URL" --data-dir "$OUT/capacity" --scenario submit --mode closed \
    --concurrency 32 --seconds "$CAPACITY_SECONDS" --json "$OUT/capacity.json" >"$OUT/capacity.out" 2>&1
  stop
  CAPACITY="$(python3 -c 'import json,sys; print(round(json.load(open(sys.argv[1]))["throughput"]))' "$OUT/capacity.json")"
  RATE=$(( CAPACITY / 2 ))
  echo "capacity: $CAPACITY submissions/s (closed loop, 32 in flight, ${CAPACITY_SECONDS} s); holding $RATE/s"
else
  CAPACITY=
  echo "holding $RATE submissions/s (given)"
fi
echo "soak: $MINUTES min; $SCALE_NOTE"

start soak
"$SHEP" bench run --gateway "$URL" --data-dir "$OUT/soak" --scenario submit --mode open --rate "$RATE" \
  --concurrency 512 --seconds "$TOTAL" --interval "$STEP" --interval-log "$OUT/intervals.jsonl" \
  --json "$OUT/report.json" >"$OUT/bench.out" 2>&1 &
BENCH_PID=$!
LOOKUP_PID=
if [ "$LOOKUP_RATE" != 0 ]; then
  "$SHEP" bench run --gateway "$URL" --data-dir "$OUT/soak" --scenario lookup --mode open --rate "$LOOKUP_RATE" \
    --concurrency 128 --seconds "$TOTAL" --interval "$STEP" --interval-log "$OUT/lookups.jsonl" \
    --json "$OUT/lookups.json" >"$OUT/lookups.out" 2>&1 &
  LOOKUP_PID=$!
fi

# RSS at each interval's end, on the bench's clock (its lines carry elapsed_s); the bench's first
# line comes one interval after it starts.
echo "elapsed_s,rss_kb" >"$OUT/rss.csv"
echo "0,$(rss_kb "$GATEWAY_PID")" >>"$OUT/rss.csv"
STARTED=$(date +%s)
CAPPED=
for (( n = 1; n * STEP <= TOTAL; n++ )); do
  sleep $(( STARTED + n * STEP - $(date +%s) > 0 ? STARTED + n * STEP - $(date +%s) : 0 ))
  kill -0 "$GATEWAY_PID" 2>/dev/null || { echo "soak: the gateway died (see $OUT/soak.log)" >&2; exit 1; }
  rss="$(rss_kb "$GATEWAY_PID")"
  echo "$(( n * STEP )),$rss" >>"$OUT/rss.csv"
  python3 bench/soak_report.py --progress "$OUT" "$(( n * STEP ))" "$rss"
  if [ "$(( rss / 1024 ))" -gt "$MAX_RSS_MIB" ]; then
    CAPPED=$(( n * STEP ))
    echo "soak: the gateway is resident beyond MAX_RSS_MIB=$MAX_RSS_MIB MiB after $CAPPED s: load stopped"
    kill "$BENCH_PID" $LOOKUP_PID 2>/dev/null || true
    break
  fi
done
BENCH_STATUS=0
wait "$BENCH_PID" || BENCH_STATUS=$?
[ -z "$LOOKUP_PID" ] || wait "$LOOKUP_PID" || BENCH_STATUS=$?
[ -z "$CAPPED" ] || BENCH_STATUS=0
# Memory once the load is over (the provider has acknowledged everything by now).
sleep 5
AFTER_KB="$(rss_kb "$GATEWAY_PID")"
stop
[ "$BENCH_STATUS" = 0 ] || { echo "soak: shep bench failed (see $OUT/bench.out)" >&2; cat "$OUT/bench.out" >&2; exit 1; }

COMMIT="$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- . 2>/dev/null || echo '+changes')"
MACHINE="$(nproc) cores, $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo), $(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo)"
python3 bench/soak_report.py "$OUT" --minutes "$MINUTES" --step "$STEP" --rate "$RATE" \
  --capacity "${CAPACITY:-}" --after-kb "$AFTER_KB" --commit "$COMMIT" --machine "$MACHINE" \
  --capped-at "$CAPPED" --max-rss-mib "$MAX_RSS_MIB"
