#!/usr/bin/env bash
# Hostile load against `carrel up` (release build) on a small warehouse, in one invocation:
#
#   1. Unauthenticated flood: for SECONDS, 48 clients (half keep-alive, half a new
#      connection per request, a third of the requests with an invented bearer token) ask
#      for /api/studies/<60,000 characters> as fast as they get answers. Meanwhile and
#      after, an auditor opens /audit once a second. Prints requests and requests/s, how
#      much the state directory grew, the auth.failed entries written, and /audit's
#      latency before (the reference), during and after the flood, with their ratios.
#      Targets: growth under 1 MB, /audit under 100 ms.
#   2. Run flood: 48 concurrent `POST /api/studies/ili-weekly/runs`, from one researcher
#      and then from three, against the default caps and against caps opened to 48 (the
#      reference: what the host did before runs were capped). Prints the answers by
#      status and the server's peak resident memory (VmHWM) for each, against one run
#      alone, with ratios.
#
#   host/benches/flood.sh [SECONDS] [CONSULTATIONS]      (defaults 60 and 100000)
set -euo pipefail
seconds=${1:-60}
n=${2:-100000}
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
cargo build --release -q -p carrel
(cd components && cargo build --release -q --target wasm32-wasip2)
work=$(mktemp -d)
pid=
cleanup() {
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
carrel=$root/target/release/carrel
state=$work/state
manifest=$root/spin.toml
s=(--state-dir "$state")
export CARREL_LOG=error

$carrel keys init "${s[@]}" >/dev/null
$carrel synth --consultations "$n" --seed 7 --out "$work/synth" >/dev/null
files=$(python3 -c "import json,sys; d=sys.argv[1]; print(' '.join(d+'/'+f for f in json.load(open(d+'/ground-truth.json'))['files']))" "$work/synth")
# shellcheck disable=SC2086
$carrel import -f "$manifest" "${s[@]}" --association sos-bench $files >/dev/null
auditor=$($carrel tokens add --role auditor "${s[@]}" | tail -1)
ids=(); tokens=()
for who in "Dr A" "Dr B" "Dr C"; do
  out=$($carrel tokens add --role researcher --name "$who" "${s[@]}")
  ids+=("$(echo "$out" | head -1 | awk '{print $2}')")
  tokens+=("$(echo "$out" | tail -1)")
done
$carrel study submit ili-weekly -f "$manifest" --by "${ids[0]}" "${s[@]}" >/dev/null
for id in "${ids[@]:1}"; do
  $carrel study owners add ili-weekly "$id" --by "${ids[0]}" "${s[@]}" >/dev/null
done
$carrel study approve ili-weekly -f "$manifest" --token "$auditor" "${s[@]}" >/dev/null

# start_server ARGS…: `carrel up` in the background; sets pid and base.
start_server() {
  $carrel up -f "$manifest" "${s[@]}" --listen 127.0.0.1:0 "$@" > "$work/up.out" 2>"$work/up.err" &
  pid=$!
  base=
  for _ in $(seq 1 600); do
    base=$(sed -n 's/^Serving //p' "$work/up.out" | head -1)
    [ -n "$base" ] && return 0
    sleep 0.1
  done
  echo "carrel up did not start:" >&2; cat "$work/up.err" >&2; exit 1
}
stop_server() {
  kill -TERM "$pid"; wait "$pid" || true; pid=
}
peak_kib() { awk '/VmHWM/ {print $2}' "/proc/$pid/status"; }
state_bytes() { du -sb "$state" | awk '{print $1}'; }

echo "== 1. unauthenticated flood, ${seconds} s =="
start_server
before=$(state_bytes)
entries_before=$($carrel audit log --action auth.failed "${s[@]}" 2>/dev/null | wc -l)
python3 - "$base" "$seconds" "$auditor" <<'PY'
import asyncio, statistics, sys, time
base, seconds, auditor = sys.argv[1], float(sys.argv[2]), sys.argv[3]
host, port = base.removeprefix("http://").split(":")
path = "/api/studies/" + "a" * 60_000

async def request(reader, writer, target, headers=""):
    writer.write(f"GET {target} HTTP/1.1\r\nHost: {host}:{port}\r\n{headers}\r\n".encode())
    await writer.drain()
    status = await reader.readline()
    length = 0
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode().partition(":")
        if name.lower() == "content-length":
            length = int(value)
    await reader.readexactly(length)
    return int(status.split()[1])

sent = 0
statuses = {}
async def flooder(i, deadline):
    global sent
    keep_alive = i % 2 == 0
    conn = None
    while time.monotonic() < deadline:
        if conn is None:
            conn = await asyncio.open_connection(host, port)
        token = f"Authorization: Bearer carrel_{sent:08x}_invented\r\n" if sent % 3 == 0 else ""
        close = "" if keep_alive else "Connection: close\r\n"
        status = await request(*conn, path, token + close)
        statuses[status] = statuses.get(status, 0) + 1
        sent += 1
        if not keep_alive:
            conn[1].close()
            conn = None

async def audit_latency(samples, every, deadline=None):
    times = []
    reader, writer = await asyncio.open_connection(host, port)
    for _ in range(samples):
        if deadline and time.monotonic() > deadline:
            break
        t = time.monotonic()
        status = await request(reader, writer, "/audit", f"Authorization: Bearer {auditor}\r\n")
        assert status == 200, status
        times.append((time.monotonic() - t) * 1000)
        await asyncio.sleep(every)
    writer.close()
    return times

def summary(ms):
    return f"median {statistics.median(ms):.1f} ms, max {max(ms):.1f} ms ({len(ms)} requests)"

async def main():
    idle = await audit_latency(20, 0.05)
    deadline = time.monotonic() + seconds
    started = time.monotonic()
    floods = [asyncio.create_task(flooder(i, deadline)) for i in range(48)]
    during = await audit_latency(int(seconds), 1.0, deadline)
    await asyncio.gather(*floods)
    took = time.monotonic() - started
    after = await audit_latency(20, 0.05)
    print(f"flood: {sent} requests in {took:.1f} s ({sent / took:,.0f}/s), answers {statuses}")
    print(f"/audit idle (reference): {summary(idle)}")
    print(f"/audit during the flood: {summary(during)}; ratio of medians {statistics.median(during) / statistics.median(idle):.2f}x")
    print(f"/audit after the flood:  {summary(after)}; ratio of medians {statistics.median(after) / statistics.median(idle):.2f}x")
asyncio.run(main())
PY
stop_server
after=$(state_bytes)
entries_after=$($carrel audit log --action auth.failed "${s[@]}" 2>/dev/null | wc -l)
echo "state directory grew by $((after - before)) bytes ($(python3 -c "print(f'{($after - $before) / 1048576:.3f}')") MiB); auth.failed entries written: $((entries_after - entries_before))"
$carrel audit verify "${s[@]}"

echo "== 2. run flood: 48 concurrent runs of ili-weekly (${n} consultations) =="
# runs TOKEN…: 48 POSTs at once, spread over the tokens; prints the answers by status.
runs() {
  python3 - "$base" "$@" <<'PY'
import sys, threading, urllib.request, urllib.error, time
base, tokens = sys.argv[1], sys.argv[2:]
counts, lock = {}, threading.Lock()
def one(i):
    req = urllib.request.Request(f"{base}/api/studies/ili-weekly/runs", method="POST",
        data=b'{"params": {"by": "national"}}', headers={"Authorization": f"Bearer {tokens[i % len(tokens)]}"})
    try:
        status = urllib.request.urlopen(req, timeout=600).status
    except urllib.error.HTTPError as e:
        status = e.code
    with lock:
        counts[status] = counts.get(status, 0) + 1
t = time.monotonic()
threads = [threading.Thread(target=one, args=(i,)) for i in range(48)]
[t_.start() for t_ in threads]; [t_.join() for t_ in threads]
print(f"answers {dict(sorted(counts.items()))} in {time.monotonic() - t:.1f} s", end="")
PY
}
one_run() {
  start_server
  curl -s -o /dev/null -X POST -H "Authorization: Bearer ${tokens[0]}" \
    -d '{"params": {"by": "national"}}' "$base/api/studies/ili-weekly/runs"
  alone=$(peak_kib)
  stop_server
  echo "one run alone (reference): peak RSS $((alone / 1024)) MiB"
}
one_run
uncapped=(--max-study-runs 48 --max-study-runs-per-researcher 48 --max-queued-study-runs 48)
for case in "one researcher" "three researchers"; do
  if [ "$case" = "one researcher" ]; then who=("${tokens[0]}"); else who=("${tokens[@]}"); fi
  for caps in default opened; do
    if [ "$caps" = default ]; then start_server; else start_server "${uncapped[@]}"; fi
    result=$(runs "${who[@]}")
    peak=$(peak_kib)
    stop_server
    echo "$case, caps $caps: $result; peak RSS $((peak / 1024)) MiB ($(python3 -c "print(f'{$peak / $alone:.2f}')")x one run)"
  done
done
