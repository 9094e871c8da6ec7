#!/usr/bin/env bash
# The peer comparison (issue 7): one client, one run, on this machine.
#
#   bash bench/peers.sh [seconds-per-row] [concurrency] [connections]
#
# Without a concurrency and connections it measures two shapes in the same run, each with its own
# table and ratios to nginx: 32 in flight on 4 connections (h2load -c 4 -m 8) and 128 on 8
# (h2load -c 8 -m 16). SHAPES="32:4 128:8" (concurrency:connections, space-separated) sets others.
#
# Builds shep in release mode, starts a bare tonic echo backend (`shep bench echo`), nginx
# grpc_pass in front of it, a gateway with the in-process ГБД ФЛ, a ГБД ФЛ registry process and a
# second gateway that reaches it over gRPC, then measures every row with the same client
# (`shep bench run`, the lean h2 client, closed loop) and with h2load as an independent check
# (same connections and streams: `-c <connections> -m <concurrency/connections>`, same duration):
#   direct echo | nginx -> echo            (Ed25519, ECDSA P-256 and RSA-2048 envelopes)
#   gateway lookup, in-process registry    (the same three algorithms)
#   gateway lookup, registry in another process | gateway durable submit   (Ed25519)
#   gateway submit with journal.mode = "memory" (a third gateway): durable / in-memory
#   equal offered load: open loop at 50% and 80% of nginx's measured rate, nginx and the gateway
#   concurrency 1: direct echo, nginx, gateway lookup  (the added latency of one hop), and the
#   cost of one signature verification (`shep bench verify`)
# The gateways run with the shipped defaults (exchange journal on, disk journal), participant
# authentication off. The summary judges each of issue 17's targets as met or not.
# Prints a table with ratios to nginx (with the same algorithm's envelopes), the CPU time the
# serving processes spent per request during the shep bench runs (steadier than rates on a busy
# machine), and the load average before and after the run. Installs nginx, nghttp2-client
# (h2load), curl, python3 and procps with apt if missing.
#
# SHEP_SERVER=/path/to/another/shep serves the echo, the gateways and the registry from another
# build while the client stays this one: a before/after comparison of the server with one script.
set -euo pipefail
cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.."

SECONDS_PER_ROW="${1:-10}"
if [ -n "${2:-}" ]; then SHAPES="${2}:${3:-4}"; else SHAPES="${SHAPES:-32:4 128:8}"; fi
# Each row runs ROUNDS times, shep bench and h2load in turn; the table shows the means.
ROUNDS="${ROUNDS:-2}"
RUN="$(mktemp -d /tmp/shep-peers.XXXXXX)"
trap 'kill $(jobs -p) 2>/dev/null || true; [ -f "$RUN/nginx.pid" ] && kill "$(cat "$RUN/nginx.pid")" 2>/dev/null || true' EXIT

need=()
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need+=(nginx)
command -v h2load >/dev/null 2>&1 || need+=(nghttp2-client)
command -v curl >/dev/null 2>&1 || need+=(curl)
command -v python3 >/dev/null 2>&1 || need+=(python3)
command -v pgrep >/dev/null 2>&1 || need+=(procps)
if [ "${#need[@]}" -gt 0 ]; then
  echo "installing ${need[*]}"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
NGINX="$(command -v nginx || echo /usr/sbin/nginx)"

cargo build -q --release --bin shep
SHEP="${CARGO_TARGET_DIR:-$PWD/target}/release/shep"
SERVER="${SHEP_SERVER:-$SHEP}"

ECHO=127.0.0.1:7810
NGINX_PORT=7820
GATEWAY=127.0.0.1:7800
REGISTRY=127.0.0.1:7811
REMOTE_GATEWAY=127.0.0.1:7801
MEMORY_GATEWAY=127.0.0.1:7802

wait_port() { for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/${1%:*}/${1#*:}") 2>/dev/null && return 0; sleep 0.1; done; echo "nothing on $1" >&2; exit 1; }

"$SERVER" bench echo --listen "$ECHO" 2>"$RUN/echo.log" &
ECHO_PID=$!
# The gateways run as shipped (every check on, the exchange journal recording, the disk
# journal), except that participant authentication is off, so the port speaks plaintext HTTP/2
# like nginx and the echo: the comparison measures routing and the envelope checks, not TLS.
cat >"$RUN/gateway.toml" <<TOML
listen = "$GATEWAY"
data_dir = "$RUN/data"
[auth]
participants = "off"
TOML
"$SERVER" serve --config "$RUN/gateway.toml" >"$RUN/gateway.log" 2>&1 &
GATEWAY_PID=$!
"$SERVER" registry gbdfl --listen "$REGISTRY" >"$RUN/registry.log" 2>&1 &
REGISTRY_PID=$!
wait_port "$ECHO"; wait_port "$GATEWAY"; wait_port "$REGISTRY"
# The second gateway shares the data dir's identities but keeps its own journal.
cp -r "$RUN/data" "$RUN/data-remote"; rm -f "$RUN/data-remote/journal.redb"
cat >"$RUN/remote.toml" <<TOML
listen = "$REMOTE_GATEWAY"
data_dir = "$RUN/data-remote"
[registries.gbdfl]
url = "http://$REGISTRY"
[auth]
participants = "off"
TOML
"$SERVER" serve --config "$RUN/remote.toml" >"$RUN/gateway-remote.log" 2>&1 &
REMOTE_PID=$!
# The third keeps nothing on disk (journal.mode = "memory"): durable submit is compared with it.
cp -r "$RUN/data" "$RUN/data-memory"; rm -f "$RUN/data-memory/journal.redb"
cat >"$RUN/memory.toml" <<TOML
listen = "$MEMORY_GATEWAY"
data_dir = "$RUN/data-memory"
[journal]
mode = "memory"
[auth]
participants = "off"
TOML
"$SERVER" serve --config "$RUN/memory.toml" >"$RUN/gateway-memory.log" 2>&1 &
MEMORY_PID=$!
wait_port "$REMOTE_GATEWAY"; wait_port "$MEMORY_GATEWAY"

# nginx: one worker, HTTP/2, keep-alive upstream (../shared/bench/nginx-grpc.conf).
cat >"$RUN/nginx.conf" <<NGINX
worker_processes 1;
pid $RUN/nginx.pid;
error_log $RUN/nginx-error.log;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 10000000;
  upstream backend { server $ECHO; keepalive 64; keepalive_requests 10000000; }
  server { listen 127.0.0.1:$NGINX_PORT http2; location / { grpc_pass grpc://backend; } }
}
NGINX
"$NGINX" -c "$RUN/nginx.conf"
wait_port "127.0.0.1:$NGINX_PORT"
NGINX_WORKER=$(pgrep -P "$(cat "$RUN/nginx.pid")" | head -1)

# CPU time (clock ticks, user + system) the given processes have used so far: the servers'
# cost per request, which the machine's other load changes far less than the rates.
ticks() { local total=0 pid; for pid in "$@"; do total=$(( total + $(awk '{print $14 + $15}' "/proc/$pid/stat") )); done; echo "$total"; }

# The P-256 and RSA-2048 applicants, issued once by the gateway's НУЦ into $RUN/data/identities.
for alg in p256 rsa2048; do
  "$SHEP" bench frame --algorithm "$alg" --data-dir "$RUN/data" --gateway "http://$GATEWAY" \
    --out "$RUN/probe-$alg.bin" 2>>"$RUN/identities.log"
done

# What the gateway counted as answered, to check that h2load's "succeeded" (HTTP 200) were
# gRPC successes too: a refused call is an HTTP 200 with a non-zero grpc-status.
answered() { curl -s "http://$1/metrics" | awk '/^shep_requests_total\{rpc="call",outcome="ok"\}/ {print $2}' | grep . || echo 0; }

bench_once() { # name url scenario algorithm concurrency connections round
  local before
  before=$(ticks $SERVING)
  "$SHEP" bench run --gateway "http://$2" --data-dir "$RUN/data" --nuc "http://$GATEWAY" \
    --scenario "$3" --algorithm "$4" --concurrency "$5" --connections "$6" \
    --seconds "$SECONDS_PER_ROW" --json "$RUN/$1.r$7.json" >/dev/null 2>"$RUN/$1.r$7.bench.log"
  echo $(( $(ticks $SERVING) - before )) "$(getconf CLK_TCK)" >"$RUN/$1.r$7.ticks"
}

h2load_once() { # name url algorithm concurrency connections round [metrics-url]
  local name=$1 url=$2 alg=$3 concurrency=$4 connections=$5 round=$6 metrics=${7:-} before=0
  # Signed now: message_date must be within the gateway's skew (5 minutes) when it arrives.
  "$SHEP" bench frame --algorithm "$alg" --data-dir "$RUN/data" --nuc "http://$GATEWAY" \
    --out "$RUN/$name.frame" 2>/dev/null
  [ -n "$metrics" ] && before=$(answered "$metrics")
  h2load -D "$SECONDS_PER_ROW" -c "$connections" -m $(( (concurrency + connections - 1) / connections )) \
    -d "$RUN/$name.frame" -H 'content-type: application/grpc' -H 'te: trailers' \
    "http://$url/shep.gateway.v1.Gateway/Call" >"$RUN/$name.r$round.h2load.log" 2>&1 || true
  if [ -n "$metrics" ]; then echo $(( $(answered "$metrics") - before )) >"$RUN/$name.r$round.h2load.ok"; fi
}

row() { # name url scenario algorithm concurrency connections [metrics-url]
  local name=$1 url=$2 scenario=$3 alg=$4 concurrency=$5 connections=$6 metrics=${7:-}
  for round in $(seq 1 "$ROUNDS"); do
    if [ "$scenario" != lookup ]; then
      bench_once "$name" "$url" "$scenario" "$alg" "$concurrency" "$connections" "$round"
    # Alternating which tool goes first (ABBA) cancels a steady drift in the machine's load.
    elif [ $((round % 2)) -eq 1 ]; then
      bench_once "$name" "$url" "$scenario" "$alg" "$concurrency" "$connections" "$round"
      h2load_once "$name" "$url" "$alg" "$concurrency" "$connections" "$round" "$metrics"
    else
      h2load_once "$name" "$url" "$alg" "$concurrency" "$connections" "$round" "$metrics"
      bench_once "$name" "$url" "$scenario" "$alg" "$concurrency" "$connections" "$round"
    fi
  done
  echo "  $name done" >&2
}

LOAD_BEFORE="$(cut -d' ' -f1-3 /proc/loadavg)"
echo "load average before the run: $LOAD_BEFORE (nproc $(nproc)); server: $SERVER; shapes: $SHAPES" >&2
# SERVING: the processes that serve a row (their CPU per request is reported).
for shape in $SHAPES; do
  CONCURRENCY="${shape%:*}"; CONNECTIONS="${shape#*:}"; P="c${CONCURRENCY}x${CONNECTIONS}-"
  for alg in ed25519 p256 rsa2048; do
    SERVING="$ECHO_PID" row "${P}direct-$alg" "$ECHO" lookup "$alg" "$CONCURRENCY" "$CONNECTIONS"
    SERVING="$NGINX_WORKER $ECHO_PID" row "${P}nginx-$alg" "127.0.0.1:$NGINX_PORT" lookup "$alg" "$CONCURRENCY" "$CONNECTIONS"
    SERVING="$GATEWAY_PID" row "${P}gateway-$alg" "$GATEWAY" lookup "$alg" "$CONCURRENCY" "$CONNECTIONS" "$GATEWAY"
  done
  SERVING="$REMOTE_PID $REGISTRY_PID" row "${P}gateway-remote" "$REMOTE_GATEWAY" lookup ed25519 "$CONCURRENCY" "$CONNECTIONS" "$REMOTE_GATEWAY"
  # Durable and in-memory submissions take turns, so a drift in the machine's load hits both.
  SERVING="$GATEWAY_PID" row "${P}gateway-submit" "$GATEWAY" submit ed25519 "$CONCURRENCY" "$CONNECTIONS"
  SERVING="$MEMORY_PID" row "${P}gateway-submit-memory" "$MEMORY_GATEWAY" submit ed25519 "$CONCURRENCY" "$CONNECTIONS"
done
# Equal offered load: open loop at 50% and 80% of the rate nginx just served (the first shape's
# Ed25519 row, shep bench), nginx and the gateway at the same rate, taking turns; each request is
# timed from when it was due (coordinated omission corrected by the tool).
FIRST="${SHAPES%% *}"; P1="c${FIRST%:*}x${FIRST#*:}-"; OPEN_CONNECTIONS="${FIRST#*:}"
NGINX_RATE=$(python3 -c "import json,sys; r=[json.load(open(f)) for f in sys.argv[1:]]; print(int(sum(x['throughput'] for x in r)/len(r)))" "$RUN/${P1}nginx-ed25519".r*.json)
echo "$NGINX_RATE" >"$RUN/open.capacity"
open_once() { # name url rate round
  "$SHEP" bench run --gateway "http://$2" --data-dir "$RUN/data" --nuc "http://$GATEWAY" \
    --mode open --rate "$3" --concurrency 4096 --connections "$OPEN_CONNECTIONS" \
    --seconds "$SECONDS_PER_ROW" --json "$RUN/$1.r$4.json" >/dev/null 2>"$RUN/$1.r$4.bench.log"
}
for pct in 50 80; do
  rate=$(( NGINX_RATE * pct / 100 ))
  for round in $(seq 1 "$ROUNDS"); do
    if [ $((round % 2)) -eq 1 ]; then
      open_once "open$pct-nginx" "127.0.0.1:$NGINX_PORT" "$rate" "$round"; open_once "open$pct-gateway" "$GATEWAY" "$rate" "$round"
    else
      open_once "open$pct-gateway" "$GATEWAY" "$rate" "$round"; open_once "open$pct-nginx" "127.0.0.1:$NGINX_PORT" "$rate" "$round"
    fi
  done
  echo "  open loop at $pct% of nginx ($rate/s) done" >&2
done
SERVING="$ECHO_PID" row c1-direct "$ECHO" lookup ed25519 1 1
SERVING="$NGINX_WORKER $ECHO_PID" row c1-nginx "127.0.0.1:$NGINX_PORT" lookup ed25519 1 1
SERVING="$GATEWAY_PID" row c1-gateway "$GATEWAY" lookup ed25519 1 1 "$GATEWAY"
# The cost of one signature verification (Ed25519, as the gateway checks it), in the same run.
"$SHEP" bench verify --data-dir "$RUN/data" --seconds 3 >"$RUN/verify.txt" 2>>"$RUN/identities.log"
LOAD_AFTER="$(cut -d' ' -f1-3 /proc/loadavg)"

SERVER="$SERVER" python3 - "$RUN" "$LOAD_BEFORE" "$LOAD_AFTER" "$SHAPES" "$ROUNDS" <<'PY'
import json, os, re, sys
run, load_before, load_after, shapes, rounds = sys.argv[1:6]
rounds = int(rounds)
algs = {"ed25519": "Ed25519", "p256": "P-256", "rsa2048": "RSA-2048"}
def shape_rows(p):
    rows = []
    for alg in algs:
        rows += [(f"{p}direct-{alg}", "direct echo (no checks)", f"{p}nginx-{alg}"),
                 (f"{p}nginx-{alg}", "nginx grpc_pass -> echo (no checks)", f"{p}nginx-{alg}"),
                 (f"{p}gateway-{alg}", "gateway lookup, in-process ГБД ФЛ, all checks", f"{p}nginx-{alg}")]
    return rows + [(f"{p}gateway-remote", "gateway lookup, ГБД ФЛ in another process", f"{p}nginx-ed25519"),
                   (f"{p}gateway-submit", "gateway durable submit + provider ack", f"{p}nginx-ed25519"),
                   (f"{p}gateway-submit-memory", "gateway submit, journal in memory", f"{p}nginx-ed25519")]
c1_rows = [("c1-direct", "concurrency 1: direct echo", "c1-nginx"),
           ("c1-nginx", "concurrency 1: nginx -> echo", "c1-nginx"),
           ("c1-gateway", "concurrency 1: gateway lookup, in-process", "c1-nginx")]
def mean(values):
    values = [v for v in values if v is not None]
    return sum(values) / len(values) if values else None
def h2(name):
    rates, problems = [], []
    for r in range(1, rounds + 1):
        path = os.path.join(run, f"{name}.r{r}.h2load.log")
        if not os.path.exists(path):
            continue
        text = open(path).read()
        rps = re.search(r"finished in [^,]+, ([\d.]+) req/s", text)
        ok = re.search(r"(\d+) succeeded, (\d+) failed", text)
        rates.append(float(rps.group(1)) if rps else None)
        okfile = os.path.join(run, f"{name}.r{r}.h2load.ok")
        grpc_ok = int(open(okfile).read().strip() or 0) if os.path.exists(okfile) else None
        if ok and grpc_ok is not None and grpc_ok < int(ok.group(1)):
            problems.append(f"{int(ok.group(1)) - grpc_ok} refused")
        elif ok and int(ok.group(2)):
            problems.append(f"{ok.group(2)} failed")
    return mean(rates), ", ".join(problems)
def report(name):
    runs = [json.load(open(os.path.join(run, f"{name}.r{r}.json"))) for r in range(1, rounds + 1)]
    cpu = []
    for r, x in enumerate(runs, 1):
        path = os.path.join(run, f"{name}.r{r}.ticks")
        if os.path.exists(path) and x["requests"]:
            ticks, per_second = open(path).read().split()
            cpu.append(int(ticks) / int(per_second) / x["requests"] * 1e6)
    return {
        "cpu_us": mean(cpu),
        "throughput": mean([x["throughput"] for x in runs]),
        "p50_us": mean([x["p50_us"] for x in runs]),
        "mean_us": mean([x["mean_us"] for x in runs]),
        "p99_us": mean([x["p99_us"] for x in runs]),
        "errors": sum(sum(x["errors"].values()) for x in runs),
        "each": [x["throughput"] for x in runs],
    }
print(f"server: {os.environ.get('SERVER', '')}")
print(f"load average before {load_before}, after {load_after}; nproc {os.cpu_count()}; "
      f"means of {rounds} rounds, shep bench and h2load in turn")
def table(title, rows):
    reports = {name: report(name) for name, _, _ in rows}
    print()
    print(title)
    print(f"{'path':<46} {'alg':<8} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'err':>4} {'/nginx':>7} {'h2load':>8} {'h2l/nginx':>9} {'bench/h2load':>12} {'server CPU µs/req':>17}")
    for name, label, base in rows:
        r = reports[name]
        rps, problem = h2(name)
        base_rps, _ = h2(base)
        h2s = f"{rps:.0f}" if rps else "-"
        h2_ratio = f"{rps / base_rps:.2f}" if rps and base_rps else "-"
        agree = f"{r['throughput'] / rps:.2f}" if rps else "-"
        alg = algs.get(name.rsplit("-", 1)[-1], "Ed25519")
        ratio = r["throughput"] / reports[base]["throughput"]
        note = f"  h2load: {problem}" if problem else ""
        cpu = f"{r['cpu_us']:.1f}" if r["cpu_us"] is not None else "-"
        print(f"{label:<46} {alg:<8} {r['throughput']:>8.0f} {r['p50_us']/1000:>7.3f} {r['p99_us']/1000:>7.3f} {r['errors']:>4} {ratio:>7.2f} {h2s:>8} {h2_ratio:>9} {agree:>12} {cpu:>17}{note}")
    return reports
targets = []  # (target, per-shape results, met)
def judged(ratio, floor):
    return f"{ratio:.2f}", ratio >= floor
for shape in shapes.split():
    concurrency, connections = (int(x) for x in shape.split(":"))
    streams = (concurrency + connections - 1) // connections
    p = f"c{concurrency}x{connections}-"
    reports = table(f"closed loop, {concurrency} in flight on {connections} connections (h2load -c {connections} -m {streams})",
                    shape_rows(p))
    def both(name, base, floor):
        bench = reports[name]["throughput"] / reports[base]["throughput"]
        rps, _ = h2(name)
        base_rps, _ = h2(base)
        shown = f"{bench:.2f}" + (f" / {rps / base_rps:.2f}" if rps and base_rps else "")
        met = bench >= floor and (not (rps and base_rps) or rps / base_rps >= floor)
        return shown, met
    for label, name, base, floor in (("Ed25519 lookup >= 1.5x nginx", "gateway-ed25519", "nginx-ed25519", 1.5),
                                     ("P-256 lookup >= 1.0x nginx", "gateway-p256", "nginx-p256", 1.0),
                                     ("RSA-2048 lookup >= 1.5x nginx", "gateway-rsa2048", "nginx-rsa2048", 1.5),
                                     ("remote registry >= 1.0x nginx", "gateway-remote", "nginx-ed25519", 1.0)):
        targets.append((label, f"{concurrency}x{connections}", *both(p + name, p + base, floor)))
    durable = reports[p + "gateway-submit"]["throughput"] / reports[p + "gateway-submit-memory"]["throughput"]
    targets.append(("durable submit >= 0.8x memory", f"{concurrency}x{connections}", f"{durable:.2f}", durable >= 0.8))
    print(f"durable submit / in-memory submit: {durable:.2f}")
capacity = int(open(os.path.join(run, "open.capacity")).read())
open_connections = shapes.split()[0].split(":")[1]
print()
print(f"equal offered load, open loop (each request timed from when it was due), Ed25519, at 50% and 80% "
      f"of nginx's {capacity}/s above")
print(f"{'path':<50} {'offered/s':>9} {'served/s':>9} {'p50 ms':>7} {'p99 ms':>7} {'p99.9 ms':>8}  errors")
for pct in (50, 80):
    p99, errors = {}, {}
    for who, label in (("nginx", "nginx grpc_pass -> echo (no checks)"), ("gateway", "gateway lookup, in-process ГБД ФЛ, all checks")):
        runs = [json.load(open(os.path.join(run, f"open{pct}-{who}.r{r}.json"))) for r in range(1, rounds + 1)]
        p99[who] = mean([x["p99_us"] for x in runs])
        errors[who] = {}
        for x in runs:
            for code, n in x["errors"].items():
                errors[who][code] = errors[who].get(code, 0) + n
        shown = ", ".join(f"{code} {n}" for code, n in errors[who].items()) or "0"
        print(f"{label + f' at {pct}%':<50} {mean([x['rate'] for x in runs]):>9.0f} {mean([x['throughput'] for x in runs]):>9.0f} "
              f"{mean([x['p50_us'] for x in runs])/1000:>7.3f} {p99[who]/1000:>7.3f} {mean([x['p999_us'] for x in runs])/1000:>8.3f}  {shown}")
    # A p99 over a fraction of the requests says nothing: every one must be answered.
    if errors["gateway"]:
        verdict, met = "not met (the gateway did not answer every request)", False
    else:
        met = p99["gateway"] <= p99["nginx"]
        verdict = "met" if met else "not met"
    print(f"  at {pct}%: gateway p99 <= nginx p99: {verdict}")
    targets.append((f"open loop at {pct}%: gateway p99 <= nginx p99", f"{open_connections} conns",
                    f"{p99['gateway']/1000:.3f} vs {p99['nginx']/1000:.3f} ms", met))
reports = table("concurrency 1 (one request at a time, one connection)", c1_rows)
added = reports["c1-gateway"]["mean_us"] - reports["c1-direct"]["mean_us"]
added_nginx = reports["c1-nginx"]["mean_us"] - reports["c1-direct"]["mean_us"]
verify_text = open(os.path.join(run, "verify.txt")).read()
verify_us = float(re.search(r"verification: ([\d.]+) µs", verify_text).group(1))
print(f"one gateway hop at concurrency 1 adds {added:.0f} µs to the mean over direct "
      f"(nginx adds {added_nginx:.0f} µs; p50: {reports['c1-gateway']['p50_us'] - reports['c1-direct']['p50_us']:.0f} "
      f"and {reports['c1-nginx']['p50_us'] - reports['c1-direct']['p50_us']:.0f} µs); one Ed25519 verification: {verify_us:.1f} µs")
targets.append(("concurrency 1: added mean <= nginx's + one verification", "1x1",
                f"{added:.0f} vs {added_nginx:.0f} + {verify_us:.0f} µs", added <= added_nginx + verify_us))
print()
print("issue 17's targets (shep bench / h2load where both ran)")
for label, shape, shown, met in targets:
    print(f"  {label:<56} {shape:>8}  {shown:<24} {'met' if met else 'not met'}")
PY
echo "(logs and JSON reports in $RUN)"
