#!/usr/bin/env bash
# Every comparison of issue 27 in one invocation, with one table at the end: each path
# of carrel next to its peer or its limit on the same machine, medians of interleaved
# rounds, and the ratio's median with its spread.
#
#   host/benches/all.sh [ROUNDS]      (default 3)
#
#   hello, WASIp3 and WASIp2    carrel up  against  wasmtime serve 48.0.8 (oha, serve.sh)
#   hello, WASIp3 and WASIp2    carrel up  against  a native hyper server (wrk, 2 threads
#                                                   x 64 connections, 6 s; native_hello.rs)
#   ingestion, 1M consultations end to end  against  native parse + pseudonymise (ingest.sh)
#   vault scan, 10M rows        encrypted  against  plaintext Arrow IPC (scan_throughput)
#
# carrel is the `release` build the README makes; CARREL_BENCH_PROFILE=dist measures the
# build infra deploys (fat LTO, about 23 minutes from scratch). CARREL_BENCH_ONLY=serve,
# native, ingest or scan (comma-separated) runs only those. Needs oha, wrk and wasmtime
# 48.0.8 on PATH for the HTTP comparisons:
#   cargo install oha --locked && cargo install wasmtime-cli@48.0.8 --locked
#   apt-get install wrk
# Run it on an otherwise idle machine: every figure is CPU-bound on its cores.
set -euo pipefail
rounds=${1:-3}
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
export CARREL_BENCH_PROFILE=${CARREL_BENCH_PROFILE:-release}
only=${CARREL_BENCH_ONLY:-serve,native,ingest,scan}
wanted() { [[ ",$only," == *",$1,"* ]]; }
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
summary=$work/summary
touch "$summary"

if wanted native; then
  command -v wrk >/dev/null || { echo "missing wrk: apt-get install wrk" >&2; exit 1; }
fi
cargo build --profile "$CARREL_BENCH_PROFILE" -q -p carrel
carrel=$root/target/$CARREL_BENCH_PROFILE/carrel

if wanted serve; then
  echo "== carrel up against wasmtime serve (host/benches/serve.sh 60000 $rounds)"
  CARREL_BENCH_SUMMARY=$summary host/benches/serve.sh 60000 "$rounds"
fi

if wanted native; then
  echo "== carrel up against a native hyper server (wrk -t2 -c64 -d6s)"
  cargo bench -q -p carrel --bench native_hello --no-run 2>/dev/null
  native=$(ls -t "$root"/target/release/deps/native_hello-* | grep -v '\.d$' | head -1)
  CARGO_TARGET_DIR="$root/target/guest-programs" cargo build -q --release --locked \
    --target wasm32-wasip2 --manifest-path tests/programs/Cargo.toml -p spin5-hello -p spin7-hello
  guests=$root/target/guest-programs/wasm32-wasip2/release
  free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
  # Requests/s of wrk against port $1, after a 2-second warm-up.
  drive() {
    wrk -t2 -c64 -d2s "http://127.0.0.1:$1/" >/dev/null
    wrk -t2 -c64 -d6s "http://127.0.0.1:$1/" | awk '/^Requests\/sec/ {print int($2)}'
  }
  wait_up() {
    for _ in $(seq 200); do curl -fs -o /dev/null "http://127.0.0.1:$1/" && return 0; sleep 0.05; done
    echo "nothing answers on port $1" >&2; return 1
  }
  for kind in spin7 spin5; do
    mkdir -p "$work/$kind"
    printf 'spin_manifest_version = 2\n[application]\nname = "bench"\n[[trigger.http]]\nroute = "/..."\ncomponent = "hello"\n[component.hello]\nsource = "%s"\n' \
      "$guests/${kind}_hello.wasm" > "$work/$kind/spin.toml"
  done
  for round in $(seq "$rounds"); do
    for kind in spin7 spin5; do
      if [ $((round % 2)) = 1 ]; then order=(carrel native); else order=(native carrel); fi
      declare -A rate=()
      for server in "${order[@]}"; do
        port=$(free_port)
        if [ "$server" = carrel ]; then
          CARREL_LOG=error "$carrel" up -f "$work/$kind/spin.toml" --listen "127.0.0.1:$port" >/dev/null &
        else
          "$native" "127.0.0.1:$port" >/dev/null &
        fi
        pid=$!
        wait_up "$port"
        rate[$server]=$(drive "$port")
        kill "$pid"; wait "$pid" 2>/dev/null || true
      done
      echo "  round $round $kind: carrel ${rate[carrel]} req/s, native ${rate[native]} req/s"
      echo "hello-$kind-vs-native-hyper ${rate[carrel]} ${rate[native]}" >> "$summary"
    done
  done
fi

if wanted ingest; then
  for round in $(seq "$rounds"); do
    echo "== ingestion, round $round (host/benches/ingest.sh 1000000)"
    host/benches/ingest.sh 1000000 | tee "$work/ingest.out"
    wasm=$(awk '/^end to end/ {print $(NF-1)}' "$work/ingest.out")
    limit=$(awk '/^native parse/ {print $(NF-1)}' "$work/ingest.out")
    echo "ingestion-vs-native $wasm $limit" >> "$summary"
  done
fi

if wanted scan; then
  for round in $(seq "$rounds"); do
    echo "== vault scan, round $round (cargo bench -p carrel-vault --bench scan_throughput)"
    cargo bench -q -p carrel-vault --bench scan_throughput 2>/dev/null | tee "$work/scan.out"
    # Rows per wall second of each full scan.
    rows_per_second='{for (i = 2; i <= NF; i++) if ($i == "rows/s") {print $(i-1); exit}}'
    vault=$(awk "/^vault scan \\(decrypt/ $rows_per_second" "$work/scan.out")
    plain=$(awk "/^unencrypted Arrow IPC/ $rows_per_second" "$work/scan.out")
    echo "scan-encrypted-vs-plaintext $vault $plain" >> "$summary"
  done
fi

python3 - "$summary" "$rounds" "$CARREL_BENCH_PROFILE" <<'PY'
import collections, os, statistics as st, sys
rows = collections.OrderedDict()
for line in open(sys.argv[1]):
    name, ours, theirs = line.split()
    rows.setdefault(name, []).append((float(ours), float(theirs)))
what = {
    "hello-spin7-vs-wasmtime-serve": ("hello, WASIp3: carrel up / wasmtime serve", "req/s", ">= 1.2x"),
    "hello-spin5-vs-wasmtime-serve": ("hello, WASIp2: carrel up / wasmtime serve", "req/s", ">= 1.2x"),
    "hello-spin7-vs-native-hyper": ("hello, WASIp3: carrel up / native hyper", "req/s", ">= 0.3x"),
    "hello-spin5-vs-native-hyper": ("hello, WASIp2: carrel up / native hyper", "req/s", ">= 0.1x"),
    "ingestion-vs-native": ("ingestion: end to end / native", "consultations/s", ">= 0.7x, >= 100,000/s"),
    "scan-encrypted-vs-plaintext": ("scan: encrypted / plaintext", "rows/s", ">= 0.9x"),
}
print()
print(f"carrel against its peers, {os.cpu_count()} cores, profile {sys.argv[3]}, "
      f"medians of {sys.argv[2]} interleaved rounds")
print(f"| {'path':44} | {'carrel':>12} | {'peer or limit':>13} | {'ratio':>6} | {'rounds':>11} | {'unit':15} | target |")
print(f"| {'-'*44} | {'-'*12} | {'-'*13} | {'-'*6} | {'-'*11} | {'-'*15} | --- |")
for name, pairs in rows.items():
    label, unit, target = what.get(name, (name, "", ""))
    ratios = sorted(a / b for a, b in pairs)
    print(f"| {label:44} | {st.median(a for a, _ in pairs):12,.0f} | {st.median(b for _, b in pairs):13,.0f} "
          f"| {st.median(ratios):5.2f}x | {ratios[0]:4.2f}-{ratios[-1]:4.2f}x | {unit:15} | {target} |")
PY
