#!/usr/bin/env bash
# End-to-end ingestion throughput: N synthetic consultations as NDJSON over HTTP with 8
# parallel clients into `carrel up` (ingest-fhir + pseudonymise components, checks,
# encryption, durable appends), next to the same parse + pseudonymise code run natively
# in-process on the same files, in one invocation.
#
#   host/benches/ingest.sh [CONSULTATIONS]      (default 1000000)
set -euo pipefail
n=${1:-1000000}
clients=8
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
cargo build --release -q -p carrel
cargo bench -q -p carrel --bench ingest_native --no-run 2>/dev/null
native=$(ls -t "$root"/target/release/deps/ingest_native-* | grep -v '\.d$' | head -1)
(cd components && cargo build --release -q --target wasm32-wasip2)
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
carrel=$root/target/release/carrel

$carrel synth --consultations "$n" --seed 1 --out "$work/data" >/dev/null 2>&1
files=$(ls "$work/data"/consultations-*.ndjson | wc -l)
bytes=$(cat "$work/data"/consultations-*.ndjson | wc -c)
$carrel keys init --state-dir "$work/state" >/dev/null
token=$($carrel tokens add --association sos-bench --role ingest --state-dir "$work/state" | tail -1)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
CARREL_LOG=error $carrel up -f spin.toml --state-dir "$work/state" --listen "127.0.0.1:$port" --max-body-mib 128 --request-timeout 120 ${CARREL_UP_ARGS:-} >/dev/null &
for _ in $(seq 300); do curl -fs -o /dev/null "http://127.0.0.1:$port/.well-known/spin/health" && break; sleep 0.1; done

start=$(date +%s.%N)
ls "$work/data"/consultations-*.ndjson | xargs -P "$clients" -I{} sh -c \
  'code=$(curl -s -o /dev/null -w "%{http_code}" -X POST "http://127.0.0.1:'"$port"'/ingest/fhir" -H "Authorization: Bearer '"$token"'" -H "Content-Type: application/fhir+ndjson" -H "Idempotency-Key: bench-$(basename {})" --data-binary @{}); [ "$code" = 201 ] || { echo "{}: HTTP $code" >&2; exit 1; }'
end=$(date +%s.%N)
wasm_rate=$(python3 -c "print(f'{$n/($end-$start):.0f}')")
echo "consultations=$n files=$files bytes=$bytes clients=$clients cores=$(nproc)"
echo "end to end over HTTP (Wasm ingest + pseudonymise, checks, encrypted durable appends): $(python3 -c "print(f'{$end-$start:.1f}')") s, $wasm_rate consultations/s"

# The same parse + pseudonymise code, native, in-process, one thread per core.
read -r native_rows native_seconds native_rate < <("$native" "$work/data"/consultations-*.ndjson)
echo "native parse + pseudonymise in-process (one thread per core): ${native_seconds} s, $native_rate consultations/s"
python3 -c "print(f'ratio wasm end-to-end / native: {$wasm_rate/$native_rate:.2f}x')"
