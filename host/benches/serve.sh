#!/usr/bin/env bash
# HTTP throughput of `carrel up` against `wasmtime serve` on the same hello components,
# in one invocation: a fixed number of requests at 64 connections, driven by oha.
#
#   host/benches/serve.sh [REQUESTS]        (default 100000)
#
# Needs `oha` and `wasmtime` 48.0.8 on PATH:
#   cargo install oha --locked && cargo install wasmtime-cli@48.0.8 --locked
set -euo pipefail
requests=${1:-100000}
connections=64
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"

for tool in oha wasmtime python3; do
  command -v "$tool" >/dev/null || { echo "missing $tool: cargo install oha --locked && cargo install wasmtime-cli@48.0.8 --locked" >&2; exit 1; }
done
wasmtime --version | grep -q "48.0.8" || { echo "wasmtime 48.0.8 required (the version carrel pins), found $(wasmtime --version)" >&2; exit 1; }

cargo build --release -q -p carrel
CARGO_TARGET_DIR="$root/target/guest-programs" cargo build -q --release --locked --target wasm32-wasip2 --manifest-path tests/programs/Cargo.toml -p spin5-hello -p spin7-hello
guests=$root/target/guest-programs/wasm32-wasip2/release
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

wait_up() {
  for _ in $(seq 200); do
    curl -fs -o /dev/null "http://127.0.0.1:$1/" && return 0
    sleep 0.05
  done
  echo "server on port $1 did not come up" >&2; return 1
}

# Prints "rps p50_ms p99_ms errors" for a run against port $1.
drive() {
  oha -n 2000 -c "$connections" --no-tui "http://127.0.0.1:$1/" >/dev/null
  oha -n "$requests" -c "$connections" --no-tui --output-format json "http://127.0.0.1:$1/" > "$work/out.json"
  python3 - "$work/out.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
s = d["summary"]; p = d["latencyPercentiles"]
codes = d.get("statusCodeDistribution", {})
errors = sum(v for k, v in codes.items() if k != "200") + sum(d.get("errorDistribution", {}).values())
print(f'{s["requestsPerSec"]:.0f} {p["p50"]*1000:.2f} {p["p99"]*1000:.2f} {errors}')
PY
}

echo "requests=$requests connections=$connections machine=$(nproc) cores"
printf '%-28s %12s %9s %9s %7s\n' server requests/s p50_ms p99_ms errors
for kind in spin5 spin7; do
  wasm=$guests/${kind}_hello.wasm
  mkdir -p "$work/$kind"
  cat > "$work/$kind/spin.toml" <<TOML
spin_manifest_version = 2
[application]
name = "bench"
[[trigger.http]]
route = "/..."
component = "hello"
[component.hello]
source = "$wasm"
TOML
  port=$(free_port)
  CARREL_LOG=error "$root/target/release/carrel" up -f "$work/$kind/spin.toml" --listen "127.0.0.1:$port" >/dev/null &
  pid=$!
  wait_up "$port"
  read -r c_rps c_p50 c_p99 c_err < <(drive "$port")
  kill "$pid"; wait "$pid" 2>/dev/null || true
  printf '%-28s %12s %9s %9s %7s\n' "carrel up ($kind hello)" "$c_rps" "$c_p50" "$c_p99" "$c_err"

  port=$(free_port)
  flags=(-Scli=y)
  [ "$kind" = spin7 ] && flags+=(-Sp3=y -Wcomponent-model-async=y)
  if wasmtime serve "${flags[@]}" --addr "127.0.0.1:$port" "$wasm" >/dev/null 2>"$work/wasmtime.err" & then
    pid=$!
    if wait_up "$port"; then
      read -r w_rps w_p50 w_p99 w_err < <(drive "$port")
      printf '%-28s %12s %9s %9s %7s\n' "wasmtime serve ($kind hello)" "$w_rps" "$w_p50" "$w_p99" "$w_err"
      python3 -c "print(f'ratio carrel/wasmtime ($kind): {$c_rps/$w_rps:.2f}x')"
    else
      echo "wasmtime serve does not run the $kind hello: $(head -c 300 "$work/wasmtime.err")"
    fi
    kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true
  fi
done
