#!/usr/bin/env bash
# Storage backends and gateway nodes (issue 12): one client, one run, on this machine.
#
#   bash bench/cluster.sh [seconds-per-row] [concurrency]
#
# Builds shep in release mode, starts its own nats-server (JetStream, own port and storage
# directory under /tmp) and measures four rows of durable submissions with a provider
# acknowledging every delivery (`shep bench run --scenario submit`, the lean h2 client, closed
# loop, Ed25519 envelopes):
#   embedded      one gateway, the redb journal (fsync before every receipt)
#   jetstream x1  one gateway on JetStream
#   jetstream x2  two gateways sharing one stream; the load split between them, a provider on each
#   jetstream x3  three gateways, likewise
# Each row prints the receipts per second (Submit throughput), p50 and p99 of Submit, the
# deliveries the providers acknowledged in the run, and the CPU time per receipted application of
# the gateways and of nats-server (from /proc: steadier than rates on a busy machine).
# Every process shares this machine's cores: the rows show what a node and the stream cost,
# not how far several machines scale (docs/OPERATIONS.md sizes that).
set -euo pipefail
cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.."

SECONDS_PER_ROW="${1:-10}"
CONCURRENCY="${2:-32}"
RUN="$(mktemp -d /tmp/shep-cluster.XXXXXX)"
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true' EXIT

NATS="$(command -v nats-server || echo /usr/sbin/nats-server)"
if [ ! -x "$NATS" ]; then
  echo "installing nats-server"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nats-server >/dev/null
  NATS="$(command -v nats-server || echo /usr/sbin/nats-server)"
fi

cargo build -q --release --bin shep
SHEP="${CARGO_TARGET_DIR:-$PWD/target}/release/shep"

wait_port() { for _ in $(seq 1 200); do (exec 3<>"/dev/tcp/${1%:*}/${1#*:}") 2>/dev/null && return 0; sleep 0.1; done; echo "nothing on $1" >&2; exit 1; }
ticks() { local total=0 pid; for pid in "$@"; do total=$(( total + $(awk '{print $14 + $15}' "/proc/$pid/stat") )); done; echo "$total"; }

NATS_PORT=7850
"$NATS" -js -a 127.0.0.1 -p "$NATS_PORT" -sd "$RUN/nats" >"$RUN/nats.log" 2>&1 &
NATS_PID=$!
wait_port "127.0.0.1:$NATS_PORT"

# Shared by every gateway: one test НУЦ and its identities.
DATA="$RUN/data"
# Load runs switch the exchange journal off: a test aid, not part of routing.
# Plaintext and unauthenticated, as in bench/peers.sh: the runs measure storage, not TLS.
base_config() { printf '[auth]\nparticipants = "off"\n[toolkit]\nexchanges = false\n'; }

# row <label> <nodes> <jetstream: 0|1>
row() {
  local label="$1" nodes="$2" jetstream="$3" config="$RUN/$1.toml" pids=() urls=() i
  base_config >"$config"
  if [ "$jetstream" = 1 ]; then
    printf '[cluster]\nnats = "nats://127.0.0.1:%s"\nprefix = "%s"\n' "$NATS_PORT" "${label//[^a-z0-9]/}" >>"$config"
  fi
  local data="$DATA"
  [ "$jetstream" = 1 ] || data="$RUN/embedded-data"
  # One at a time: the first node of a fresh data directory writes the test НУЦ
  # before it listens, and the others read it.
  for i in $(seq 1 "$nodes"); do
    local addr="127.0.0.1:$((7860 + i))"
    "$SHEP" serve --config "$config" --listen "$addr" --data-dir "$data" >"$RUN/$label-$i.log" 2>&1 &
    pids+=($!)
    wait_port "$addr"
    urls+=("http://$addr")
  done
  sleep 1
  local per=$(( CONCURRENCY / nodes )) clients=() gw0 nats0
  gw0="$(ticks "${pids[@]}")"
  nats0="$(ticks "$NATS_PID")"
  for i in $(seq 1 "$nodes"); do
    "$SHEP" bench run --scenario submit --client lean --concurrency "$per" --connections 1 \
      --seconds "$SECONDS_PER_ROW" --gateway "${urls[$((i - 1))]}" --data-dir "$data" \
      --json "$RUN/$label-client-$i.json" >"$RUN/$label-client-$i.out" 2>&1 &
    clients+=($!)
  done
  for i in "${clients[@]}"; do wait "$i"; done
  local gw1 nats1
  gw1="$(ticks "${pids[@]}")"
  nats1="$(ticks "$NATS_PID")"
  echo "$label $nodes $jetstream $((gw1 - gw0)) $((nats1 - nats0))" >>"$RUN/cpu.txt"
  kill "${pids[@]}" 2>/dev/null || true
  for i in "${pids[@]}"; do wait "$i" 2>/dev/null || true; done
}

LOAD_BEFORE="$(cut -d' ' -f1-3 /proc/loadavg)"
row embedded 1 0
row jetstream-x1 1 1
row jetstream-x2 2 1
row jetstream-x3 3 1
LOAD_AFTER="$(cut -d' ' -f1-3 /proc/loadavg)"

python3 - "$RUN" "$(getconf CLK_TCK)" "$LOAD_BEFORE" "$LOAD_AFTER" "$SECONDS_PER_ROW" "$CONCURRENCY" <<'EOF'
import glob, json, os, sys
run, per_second, load_before, load_after, seconds, concurrency = sys.argv[1:]
rows = []
for line in open(os.path.join(run, "cpu.txt")):
    label, nodes, jetstream, gw_ticks, nats_ticks = line.split()
    reports = [json.load(open(path)) for path in sorted(glob.glob(os.path.join(run, f"{label}-client-*.json")))]
    ok = sum(r["ok"] for r in reports)
    errors = sum(sum(r["errors"].values()) for r in reports)
    acked = sum(r.get("acknowledged") or 0 for r in reports)
    throughput = sum(r["throughput"] for r in reports)
    # Clients ran side by side: the worst p50/p99 of them stands for the row.
    p50 = max(r["p50_us"] for r in reports) / 1000
    p99 = max(r["p99_us"] for r in reports) / 1000
    gw = int(gw_ticks) / int(per_second) / max(ok, 1) * 1e6
    nats = int(nats_ticks) / int(per_second) / max(ok, 1) * 1e6 if jetstream == "1" else None
    rows.append((label, int(nodes), throughput, p50, p99, ok, acked, errors, gw, nats))
print(f"submit + deliver + ack, closed loop, {concurrency} in flight in all, {seconds} s per row, "
      f"lean client, Ed25519; nproc {os.cpu_count()}; load average before {load_before}, after {load_after}")
print(f"{'row':<14} {'nodes':>5} {'receipts/s':>10} {'p50 ms':>7} {'p99 ms':>7} {'receipted':>9} "
      f"{'acked':>7} {'errors':>6} {'gateway CPU µs/req':>18} {'nats-server CPU µs/req':>22} {'vs embedded':>11}")
base = rows[0][2]
for label, nodes, throughput, p50, p99, ok, acked, errors, gw, nats in rows:
    nats_text = f"{nats:.0f}" if nats is not None else "-"
    print(f"{label:<14} {nodes:>5} {throughput:>10.0f} {p50:>7.2f} {p99:>7.2f} {ok:>9} {acked:>7} {errors:>6} "
          f"{gw:>18.0f} {nats_text:>22} {throughput / base:>10.2f}x")
EOF
