#!/usr/bin/env bash
# The peer comparison (issue 7): one client, one run, on this machine.
#
#   bash bench/peers.sh [seconds-per-row] [concurrency]
#
# Builds shep in release mode, starts a bare tonic echo backend (`shep bench echo`), nginx
# grpc_pass in front of it, a gateway with the in-process ГБД ФЛ, a ГБД ФЛ registry process and a
# second gateway that reaches it over gRPC, then measures with the same client (`shep bench`,
# closed loop, Ed25519-signed Gateway.Call / Submit) and with h2load as an independent check:
#   direct echo | nginx -> echo | gateway lookup, in-process registry |
#   gateway lookup, registry in another process | gateway durable submit
# Prints a table with ratios to nginx. Installs nginx and nghttp2-client (h2load) if missing.
set -euo pipefail
cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.."

SECONDS_PER_ROW="${1:-10}"
CONCURRENCY="${2:-32}"
RUN="$(mktemp -d /tmp/shep-peers.XXXXXX)"
trap 'kill $(jobs -p) 2>/dev/null || true; [ -f "$RUN/nginx.pid" ] && kill "$(cat "$RUN/nginx.pid")" 2>/dev/null || true' EXIT

need=()
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need+=(nginx)
command -v h2load >/dev/null 2>&1 || need+=(nghttp2-client)
if [ "${#need[@]}" -gt 0 ]; then
  echo "installing ${need[*]}"
  apt-get update -qq && apt-get install -y -qq "${need[@]}" >/dev/null
fi
NGINX="$(command -v nginx || echo /usr/sbin/nginx)"

cargo build -q --release --bin shep
SHEP="$PWD/target/release/shep"

ECHO=127.0.0.1:7810
NGINX_PORT=7820
GATEWAY=127.0.0.1:7800
REGISTRY=127.0.0.1:7811
REMOTE_GATEWAY=127.0.0.1:7801

wait_port() { for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/${1%:*}/${1#*:}") 2>/dev/null && return 0; sleep 0.1; done; echo "nothing on $1" >&2; exit 1; }

"$SHEP" bench echo --listen "$ECHO" 2>"$RUN/echo.log" &
"$SHEP" serve --listen "$GATEWAY" --data-dir "$RUN/data" >"$RUN/gateway.log" 2>&1 &
"$SHEP" registry gbdfl --listen "$REGISTRY" >"$RUN/registry.log" 2>&1 &
wait_port "$ECHO"; wait_port "$GATEWAY"; wait_port "$REGISTRY"
# The second gateway shares the data dir's identities but keeps its own journal.
cp -r "$RUN/data" "$RUN/data-remote"; rm -f "$RUN/data-remote/journal.redb"
cat >"$RUN/remote.toml" <<TOML
listen = "$REMOTE_GATEWAY"
data_dir = "$RUN/data-remote"
[registries.gbdfl]
url = "http://$REGISTRY"
TOML
"$SHEP" serve --config "$RUN/remote.toml" >"$RUN/gateway-remote.log" 2>&1 &
wait_port "$REMOTE_GATEWAY"

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

"$SHEP" bench frame --data-dir "$RUN/data" --out "$RUN/lookup.bin" 2>/dev/null

row() { # name url scenario
  "$SHEP" bench run --gateway "http://$2" --data-dir "$RUN/data" --scenario "$3" \
    --concurrency "$CONCURRENCY" --seconds "$SECONDS_PER_ROW" --json "$RUN/$1.json" >/dev/null 2>"$RUN/$1.bench.log"
  if [ "$3" = lookup ]; then
    h2load -n $((SECONDS_PER_ROW * 2000)) -c 4 -m $((CONCURRENCY / 4)) -d "$RUN/lookup.bin" \
      -H 'content-type: application/grpc' -H 'te: trailers' \
      "http://$2/shep.gateway.v1.Gateway/Call" >"$RUN/$1.h2load.log" 2>&1 || true
  fi
}
row direct "$ECHO" lookup
row nginx "127.0.0.1:$NGINX_PORT" lookup
row gateway-lookup "$GATEWAY" lookup
row gateway-remote "$REMOTE_GATEWAY" lookup
row gateway-submit "$GATEWAY" submit

python3 - "$RUN" <<'PY'
import json, re, sys, os
run = sys.argv[1]
rows = [("direct", "direct echo (no checks)"), ("nginx", "nginx grpc_pass -> echo (no checks)"),
        ("gateway-lookup", "gateway lookup, in-process ГБД ФЛ, all checks"),
        ("gateway-remote", "gateway lookup, ГБД ФЛ in another process, all checks"),
        ("gateway-submit", "gateway durable submit + provider ack, all checks")]
def h2(name):
    path = os.path.join(run, name + ".h2load.log")
    if not os.path.exists(path): return None
    text = open(path).read()
    rps = re.search(r"finished in [^,]+, ([\d.]+) req/s", text)
    ok = re.search(r"(\d+) succeeded, (\d+) failed", text)
    return (float(rps.group(1)) if rps else None, ok.groups() if ok else None)
reports = {name: json.load(open(os.path.join(run, name + ".json"))) for name, _ in rows}
base = reports["nginx"]["throughput"]
print(f"{'path':<55} {'alg':<8} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'errors':>6} {'/nginx':>7} {'h2load req/s':>13}")
for name, label in rows:
    r = reports[name]
    errors = sum(r["errors"].values())
    h = h2(name)
    hs = f"{h[0]:.0f}" if h and h[0] else "-"
    print(f"{label:<55} {r['algorithm']:<8} {r['throughput']:>8.0f} {r['p50_us']/1000:>7.2f} {r['p99_us']/1000:>7.2f} {errors:>6} {r['throughput']/base:>7.2f} {hs:>13}")
PY
echo "(logs and JSON reports in $RUN)"
