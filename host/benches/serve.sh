#!/usr/bin/env bash
# HTTP throughput of `carrel up` against `wasmtime serve` on the same hello components,
# in one invocation: a fixed number of requests at 64 connections, driven by oha.
#
#   host/benches/serve.sh [REQUESTS] [ROUNDS]        (defaults 60000 and 5)
#
# carrel is built with the `dist` profile (fat LTO; the build to deploy, about 23 minutes
# from scratch); CARREL_BENCH_PROFILE=release measures the README's build instead.
#
# This machine's speed drifts by ±10-15% from one run to the next, so each server runs
# ROUNDS times, alternating which goes first; the summary gives medians and the median of
# the per-round ratios. Besides requests/s it reports the server's CPU time per request
# (user + system, from /proc), which oha's share of the two cores does not blur.
#
#   CARREL_BENCH_BIN=/path/to/carrel host/benches/serve.sh …   (that binary, unbuilt)
#   CARREL_BENCH_SUMMARY=file   also appends each round's pair of requests/s to file, as
#                               "hello-<kind>-vs-wasmtime-serve <carrel> <wasmtime>" (all.sh)
#
# Needs `oha` and `wasmtime` 48.0.8 on PATH:
#   cargo install oha --locked && cargo install wasmtime-cli@48.0.8 --locked
set -euo pipefail
requests=${1:-60000}
rounds=${2:-5}
connections=64
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"

for tool in oha wasmtime python3; do
  command -v "$tool" >/dev/null || { echo "missing $tool: cargo install oha --locked && cargo install wasmtime-cli@48.0.8 --locked" >&2; exit 1; }
done
wasmtime --version | grep -q "48.0.8" || { echo "wasmtime 48.0.8 required (the version carrel pins), found $(wasmtime --version)" >&2; exit 1; }

profile=${CARREL_BENCH_PROFILE:-dist}
# CARREL_BENCH_BIN=path: measure that carrel binary instead (an earlier commit's build,
# to tell a regression from this machine's drift against the same `wasmtime serve`).
carrel_bin=${CARREL_BENCH_BIN:-$root/target/$profile/carrel}
[ -n "${CARREL_BENCH_BIN:-}" ] || cargo build --profile "$profile" -q -p carrel
CARGO_TARGET_DIR="$root/target/guest-programs" cargo build -q --release --locked --target wasm32-wasip2 --manifest-path tests/programs/Cargo.toml -p spin5-hello -p spin7-hello
guests=$root/target/guest-programs/wasm32-wasip2/release
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
ticks=$(getconf CLK_TCK)

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

wait_up() {
  for _ in $(seq 200); do
    curl -fs -o /dev/null "http://127.0.0.1:$1/" && return 0
    sleep 0.05
  done
  echo "server on port $1 did not come up" >&2; return 1
}

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# Prints "rps p50_ms p99_ms errors cpu_us_per_request" for a run against server $2 on port $1.
drive() {
  oha -n 2000 -c "$connections" --no-tui "http://127.0.0.1:$1/" >/dev/null
  local before; before=$(cpu_ticks "$2")
  oha -n "$requests" -c "$connections" --no-tui --output-format json "http://127.0.0.1:$1/" > "$work/out.json"
  local after; after=$(cpu_ticks "$2")
  python3 - "$work/out.json" "$(( after - before ))" "$ticks" "$requests" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
cpu_ticks, hz, n = (int(x) for x in sys.argv[2:5])
s = d["summary"]; p = d["latencyPercentiles"]
codes = d.get("statusCodeDistribution", {})
errors = sum(v for k, v in codes.items() if k != "200") + sum(d.get("errorDistribution", {}).values())
print(f'{s["requestsPerSec"]:.0f} {p["p50"]*1000:.2f} {p["p99"]*1000:.2f} {errors} {cpu_ticks / hz / n * 1e6:.1f}')
PY
}

# One run of server $1 (carrel|wasmtime) on guest $2; appends its figures to $work/$2.$1.
run() {
  local server=$1 kind=$2 wasm=$guests/${2}_hello.wasm port pid
  port=$(free_port)
  if [ "$server" = carrel ]; then
    CARREL_LOG=error "$carrel_bin" up -f "$work/$kind/spin.toml" --listen "127.0.0.1:$port" >/dev/null &
  else
    local flags=(-Scli=y)
    [ "$kind" = spin7 ] && flags+=(-Sp3=y -Wcomponent-model-async=y)
    wasmtime serve "${flags[@]}" --addr "127.0.0.1:$port" "$wasm" >/dev/null 2>"$work/wasmtime.err" &
  fi
  pid=$!
  if ! wait_up "$port"; then
    echo "$server does not serve the $kind hello: $(head -c 300 "$work/wasmtime.err" 2>/dev/null)" >&2
    kill "$pid" 2>/dev/null; return 1
  fi
  local figures; figures=$(drive "$port" "$pid")
  kill "$pid"; wait "$pid" 2>/dev/null || true
  echo "$figures" >> "$work/$kind.$server"
  printf '  round %-3s %-9s %s\n' "$3" "$server" "$figures"
}

echo "requests=$requests connections=$connections rounds=$rounds profile=$profile machine=$(nproc) cores"
echo "  (per run: requests/s p50_ms p99_ms errors server_cpu_us_per_request)"
for kind in spin5 spin7; do
  mkdir -p "$work/$kind"
  cat > "$work/$kind/spin.toml" <<TOML
spin_manifest_version = 2
[application]
name = "bench"
[[trigger.http]]
route = "/..."
component = "hello"
[component.hello]
source = "$guests/${kind}_hello.wasm"
TOML
  echo "$kind hello:"
  for round in $(seq "$rounds"); do
    if [ $((round % 2)) = 1 ]; then order=(carrel wasmtime); else order=(wasmtime carrel); fi
    for server in "${order[@]}"; do run "$server" "$kind" "$round" || continue 2; done
  done
  if [ -n "${CARREL_BENCH_SUMMARY:-}" ]; then
    paste -d' ' "$work/$kind.carrel" "$work/$kind.wasmtime" |
      awk -v kind="$kind" '{print "hello-" kind "-vs-wasmtime-serve", $1, $6}' >> "$CARREL_BENCH_SUMMARY"
  fi
  python3 - "$work/$kind.carrel" "$work/$kind.wasmtime" "$kind" <<'PY'
import statistics as st, sys
runs = [[[float(x) for x in line.split()] for line in open(f)] for f in sys.argv[1:3]]
kind = sys.argv[3]
print(f'{"server":28} {"requests/s":>10} {"p50_ms":>8} {"p99_ms":>8} {"errors":>7} {"cpu_us/req":>10}   (medians)')
for name, rs in zip(["carrel up", "wasmtime serve"], runs):
    med = [st.median(r[i] for r in rs) for i in range(5)]
    print(f'{name + " (" + kind + " hello)":28} {med[0]:10.0f} {med[1]:8.2f} {med[2]:8.2f} {sum(r[3] for r in rs):7.0f} {med[4]:10.1f}')
pairs = list(zip(*runs))
ratios = sorted(c[0] / w[0] for c, w in pairs)
cpu = sorted(w[4] / c[4] for c, w in pairs)
print(f'ratio carrel/wasmtime ({kind}): {st.median(ratios):.2f}x requests/s '
      f'(rounds {ratios[0]:.2f}-{ratios[-1]:.2f}), {st.median(cpu):.2f}x CPU efficiency')
PY
done
