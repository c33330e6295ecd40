#!/usr/bin/env bash
# The national ILI weekly indicator (ili-weekly with by=national) over N consultations, end to end in carrel (decrypt the granted
# column groups, run the approved ili-weekly Wasm study, disclosure control, record the
# run), next to DuckDB computing the same table from the same rows in a Parquet file, in
# one invocation. Prints both times, the ratio and carrel's peak memory.
#
#   host/benches/study.sh [CONSULTATIONS]      (default 10000000)
#
# Needs Python with duckdb and pyarrow (installed into a venv under target/ on first use).
set -euo pipefail
n=${1:-10000000}
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
venv=$root/target/bench-venv
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q duckdb pyarrow
fi
cargo build --release -q -p carrel
cargo bench -q -p carrel --bench study_data --no-run 2>/dev/null
data=$(ls -t "$root"/target/release/deps/study_data-* | grep -v '\.d$' | head -1)
(cd components && cargo build --release -q --target wasm32-wasip2 -p ili-weekly)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
carrel=$root/target/release/carrel
export CARREL_LOG=error

"$data" "$n" "$work/state" "$work/rows.arrow" >/dev/null
"$venv/bin/python" - "$work" <<'PY'
import sys, pyarrow as pa, pyarrow.parquet as pq
work = sys.argv[1]
with pa.ipc.open_stream(f"{work}/rows.arrow") as reader:
    pq.write_table(reader.read_all(), f"{work}/rows.parquet")
PY
rm "$work/rows.arrow"

auditor=$($carrel tokens add --role auditor --state-dir "$work/state" | head -1 | awk '{print $2}')
$carrel study submit ili-weekly --state-dir "$work/state" >/dev/null
$carrel study approve ili-weekly --by "$auditor" --state-dir "$work/state" >/dev/null
# Warm-up: compiles the component into the cache, as a long-running warehouse would have.
$carrel study run ili-weekly --param by=national --state-dir "$work/state" --json >/dev/null
/usr/bin/time -f "%e %M" -o "$work/time" $carrel study run ili-weekly --param by=national --state-dir "$work/state" --json > "$work/run.json"
read -r carrel_s carrel_kb < "$work/time"
status=$(python3 -c "import json; r=json.load(open('$work/run.json')); print(r['status'], r['rows_read'], r['rows_released'], r['error'] or '')")

duck=$("$venv/bin/python" - "$work" <<'PY'
import sys, time, duckdb
work = sys.argv[1]
con = duckdb.connect()
query = f"""
SELECT strftime(date, '%G-W%V') AS week,
  count(*) AS coded,
  count(*) FILTER (WHERE list_bool_or(list_transform(diagnoses, lambda x: x[1:3] IN ('J10','J11')))) AS ili,
  count(*) FILTER (WHERE list_bool_or(list_transform(diagnoses, lambda x: x[1:3] IN ('A08','A09')))) AS gastro,
  count(*) FILTER (WHERE age_years < 2 AND list_bool_or(list_transform(diagnoses, lambda x: x[1:3] = 'J21'))) AS bronchiolitis,
  ili / coded AS ili_share, gastro / coded AS gastro_share, bronchiolitis / coded AS bronchiolitis_share
FROM read_parquet('{work}/rows.parquet')
WHERE len(diagnoses) > 0
GROUP BY ALL ORDER BY ALL"""
con.execute(query).fetchall()  # warm-up, as for carrel
start = time.perf_counter()
rows = con.execute(query).fetchall()
print(f"{time.perf_counter() - start:.3f} {len(rows)}")
PY
)
read -r duck_s duck_rows <<< "$duck"
echo "consultations=$n cores=$(nproc)"
echo "carrel study run ili-weekly (decrypt 4 columns, Wasm study, disclosure control, run record): ${carrel_s} s, peak RSS $((carrel_kb / 1024)) MiB; run: $status"
echo "DuckDB $("$venv/bin/python" -c 'import duckdb; print(duckdb.__version__)') on Parquet, same table: ${duck_s} s, $duck_rows rows"
echo "carrel / DuckDB time: $(python3 -c "print(f'{$carrel_s/$duck_s:.2f}')")x (target <= 2x); peak memory target < 512 MiB"
