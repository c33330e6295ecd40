#!/usr/bin/env bash
# Two studies over the same N consultations, each end to end in carrel (decrypt the
# granted column groups, run the approved Wasm study, count consultations and distinct
# patients per cell, disclosure control, record the run) next to DuckDB computing the
# same table from the same rows in a Parquet file, in one invocation:
#
#   1. ili-weekly, --param by=national: per ISO week, for coded, ili, gastro and
#      bronchiolitis, the consultations and the distinct patients, and the three shares
#      over coded consultations.
#   2. reconsult, --param by=monthly: per month, for consultations, reconsult_72h,
#      reconsult_7d and referral, the consultations and the distinct patients, and the
#      three shares over consultations. DuckDB finds each consultation's next one with a
#      window over the patient's consultations ordered by date and hour.
#
# Prints each comparison's times, their ratio and carrel's peak memory, and checks that
# carrel's released counts are DuckDB's up to disclosure control (rounding to 5, withheld
# cells).
#
#   host/benches/study.sh [CONSULTATIONS]      (default 10000000)
#   NOISE_ROUNDS=5 host/benches/study.sh …     (and 5 alternating pairs with/without noise)
#
# Needs Python with duckdb and pyarrow (installed into a venv under target/ on first use).
set -euo pipefail
n=${1:-10000000}
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
venv=$root/target/bench-venv
# The venv is shared with models.sh, which may have made it without DuckDB.
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/python" -c "import duckdb, pyarrow" 2>/dev/null ||
  "$venv/bin/pip" install -q duckdb pyarrow
py=$venv/bin/python
cargo build --release -q -p carrel
cargo bench -q -p carrel --bench study_data --no-run 2>/dev/null
data=$(ls -t "$root"/target/release/deps/study_data-* | grep -v '\.d$' | head -1)
(cd components && cargo build --release -q --target wasm32-wasip2 -p ili-weekly -p reconsult)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
carrel=$root/target/release/carrel
state=(--state-dir "$work/state")
export CARREL_LOG=error

"$data" "$n" "$work/state" "$work/rows.arrow" >/dev/null
"$py" - "$work" <<'PY'
import sys, pyarrow as pa, pyarrow.parquet as pq
work = sys.argv[1]
with pa.ipc.open_stream(f"{work}/rows.arrow") as reader:
    pq.write_table(reader.read_all(), f"{work}/rows.parquet")
PY
rm "$work/rows.arrow"

# The auditor's secret token is the last line `tokens add` prints.
auditor=$($carrel tokens add --role auditor "${state[@]}" | tail -1)
for study in ili-weekly reconsult; do
  $carrel study submit "$study" "${state[@]}" >/dev/null
  $carrel study approve "$study" --token "$auditor" "${state[@]}" >/dev/null
done

# carrel_run STUDY BY: a warm-up run (it compiles the component into the cache, as a
# long-running warehouse would have), then a timed one. Leaves STUDY.time ("seconds
# peak-KiB"), STUDY.run.json (the auditors' full record: `carrel audit run`) and
# STUDY.csv (the released table) in $work.
carrel_run() {
  local study=$1 by=$2
  $carrel study run "$study" --param "by=$by" "${state[@]}" --json >/dev/null
  /usr/bin/time -f "%e %M" -o "$work/$study.time" \
    $carrel study run "$study" --param "by=$by" "${state[@]}" --json > "$work/$study.view.json"
  local run_id
  run_id=$("$py" -c "import json, sys; print(json.load(open(sys.argv[1]))['run_id'])" "$work/$study.view.json")
  $carrel audit run "$run_id" "${state[@]}" > "$work/$study.run.json"
  $carrel study results "$run_id" --format csv --out "$work/$study.csv" "${state[@]}" || true
}
carrel_run ili-weekly national
carrel_run reconsult monthly

# The same ILI run without cell-key noise, for what the perturbation costs: the manifest
# with absolute sources and the studies' noise off, which the operator's runtime config
# allows; submitted and approved anew (the manifest section changed).
mkdir -p "$work/exact"
sed "s#^source = \"components/#source = \"$root/components/#" spin.toml > "$work/exact/spin.toml"
printf '\n[component.ili-weekly.tool.carrel.study.disclosure]\nnoise_scale = 0\nepsilon_budget = 0\n' >> "$work/exact/spin.toml"
printf '[disclosure]\nnoise_scale = 0\nepsilon_budget = 0\n' > "$work/exact/runtime-config.toml"
exact=(-f "$work/exact/spin.toml" --runtime-config-file "$work/exact/runtime-config.toml")
$carrel study submit ili-weekly "${exact[@]}" "${state[@]}" >/dev/null
$carrel study approve ili-weekly --token "$auditor" "${exact[@]}" "${state[@]}" >/dev/null
$carrel study run ili-weekly --param by=national "${exact[@]}" "${state[@]}" --json >/dev/null
/usr/bin/time -f "%e %M" -o "$work/ili-exact.time" \
  $carrel study run ili-weekly --param by=national "${exact[@]}" "${state[@]}" --json >/dev/null

# NOISE_ROUNDS=K (K > 1): K more timed pairs of the ILI run with and without noise,
# alternating which goes first, for the noise's cost beyond this machine's drift. Each
# run needs its manifest approved, so each round submits and approves before it runs.
noise_rounds=${NOISE_ROUNDS:-1}
ili_with() {
  $carrel study submit ili-weekly "$@" "${state[@]}" >/dev/null
  $carrel study approve ili-weekly --token "$auditor" "$@" "${state[@]}" >/dev/null
  /usr/bin/time -f "%e" -a -o "$work/$label.rounds" \
    $carrel study run ili-weekly --param by=national "$@" "${state[@]}" --json >/dev/null
}
if [ "$noise_rounds" -gt 1 ]; then
  for round in $(seq "$noise_rounds"); do
    if [ $((round % 2)) -eq 1 ]; then
      label=noisy ili_with; label=exact ili_with "${exact[@]}"
    else
      label=exact ili_with "${exact[@]}"; label=noisy ili_with
    fi
  done
fi

# DuckDB: the same two tables, each run once to warm up and once timed. Writes
# ili-weekly.duck.json and reconsult.duck.json; prints "study seconds rows" lines.
"$py" - "$work" > "$work/duck.txt" <<'PY'
import json, sys, time, duckdb
work = sys.argv[1]
rows = f"read_parquet('{work}/rows.parquet')"
def has(prefixes):
    listed = ", ".join(f"'{p}'" for p in prefixes)
    return f"list_bool_or(list_transform(diagnoses, lambda x: x[1:3] IN ({listed})))"
def counts(measures, where):
    # Per measure, as carrel releases it: consultations, then distinct patients.
    return ",\n  ".join(
        f"count(*) FILTER (WHERE {where[m]}) AS {m}, "
        f"count(DISTINCT patient_id) FILTER (WHERE {where[m]}) AS {m}_patients"
        for m in measures)
ili_counts = counts(["coded", "ili", "gastro", "bronchiolitis"], {
    "coded": "true",
    "ili": has(["J10", "J11"]),
    "gastro": has(["A08", "A09"]),
    "bronchiolitis": "age_years < 2 AND " + has(["J21"]),
})
reconsult_counts = counts(["consultations", "reconsult_72h", "reconsult_7d", "referral"], {
    "consultations": "true",
    "reconsult_72h": "gap <= 72",
    "reconsult_7d": "gap <= 168",
    "referral": "outcome = 'hospital'",
})
queries = {
    # Coded: at least one code (the generator writes ICD-10 codes only).
    "ili-weekly": f"""
SELECT strftime(date, '%G-W%V') AS week,
  {ili_counts},
  ili / coded AS ili_share, gastro / coded AS gastro_share,
  bronchiolitis / coded AS bronchiolitis_share
FROM {rows}
WHERE len(diagnoses) > 0
GROUP BY ALL ORDER BY ALL""",
    # Hours between a consultation and the patient's next strictly later one: the
    # smallest start at least one hour later (a consultation at the same date and hour
    # is not a later one), over the patient's consultations ordered by date and hour.
    "reconsult": f"""
WITH starts AS (
  SELECT patient_id, date, outcome, (date - DATE '1970-01-01') * 24 + hour AS start
  FROM {rows}
), gaps AS (
  SELECT patient_id, strftime(date, '%Y-%m') AS month, outcome,
    min(start) OVER (PARTITION BY patient_id ORDER BY start
                     RANGE BETWEEN 1 FOLLOWING AND UNBOUNDED FOLLOWING) - start AS gap
  FROM starts
)
SELECT month,
  {reconsult_counts},
  reconsult_72h / consultations AS reconsult_72h_share,
  reconsult_7d / consultations AS reconsult_7d_share,
  referral / consultations AS referral_share
FROM gaps
GROUP BY ALL ORDER BY ALL""",
}
con = duckdb.connect()
for study, query in queries.items():
    con.execute(query).fetchall()  # warm-up, as for carrel
    start = time.perf_counter()
    cursor = con.execute(query)
    result = cursor.fetchall()
    seconds = time.perf_counter() - start
    columns = [d[0] for d in cursor.description]
    json.dump([dict(zip(columns, r)) for r in result], open(f"{work}/{study}.duck.json", "w"))
    print(study, f"{seconds:.3f}", len(result))
PY

# compare STUDY: carrel's released counts against DuckDB's exact ones. Cell-key noise
# (standard deviation 4.2 at scale 3) and rounding to the nearest 5 move a count: within
# 30 of DuckDB's is "agrees" (beyond 6 standard deviations is a difference); a withheld
# count is an empty field.
compare() {
  "$py" - "$work" "$1" <<'PY'
import csv, json, sys
work, study = sys.argv[1:]
duck = json.load(open(f"{work}/{study}.duck.json"))
try:
    carrel = list(csv.DictReader(open(f"{work}/{study}.csv")))
except FileNotFoundError:
    print("no released table to compare"); sys.exit()
key = next(iter(duck[0])) if duck else None
exact = {row[key]: row for row in duck}
counts = [c for c in (carrel[0].keys() if carrel else []) if c != key and not c.endswith("_share")]
agree = withheld = 0
differ = []
for row in carrel:
    reference = exact.get(row[key])
    for column in counts:
        if row[column] == "":
            withheld += 1
        elif reference is not None and abs(int(row[column]) - reference[column]) <= 30:
            agree += 1
        else:
            differ.append(f"{row[key]} {column}: carrel {row[column]}, DuckDB {reference and reference[column]}")
missing = sorted(set(exact) - {row[key] for row in carrel})
print(f"{len(carrel)} rows against DuckDB's {len(duck)}; counts within noise and rounding: {agree}, "
      f"withheld: {withheld}, different: {len(differ)}"
      + (f" (first: {differ[0]})" if differ else "")
      + (f"; rows not released: {', '.join(missing[:5])}" if missing else ""))
PY
}

# report STUDY "WHAT carrel DOES": one comparison's figures.
report() {
  local study=$1 what=$2 carrel_s carrel_kb duck_s duck_rows status
  read -r carrel_s carrel_kb < "$work/$study.time"
  read -r _ duck_s duck_rows < <(grep "^$study " "$work/duck.txt")
  status=$("$py" -c "import json, sys; r = json.load(open(sys.argv[1])); print(r['status'], 'rows read', r['rows_read'], 'released', r['rows_released'], 'dropped', r['contributions_dropped'], r['error'] or '')" "$work/$study.run.json")
  echo "carrel study run $study ($what): ${carrel_s} s, peak RSS $((carrel_kb / 1024)) MiB; run: $status"
  echo "DuckDB on Parquet, same table: ${duck_s} s, $duck_rows rows"
  echo "carrel / DuckDB time: $("$py" -c "print(f'{$carrel_s/$duck_s:.2f}')")x (target <= 1.0x); peak memory target < 512 MiB"
  echo "same table: $(compare "$study")"
}

echo "consultations=$n cores=$(nproc) DuckDB $("$py" -c 'import duckdb; print(duckdb.__version__)')"
echo "== ILI weekly indicator, by=national"
report ili-weekly "decrypt the granted columns, Wasm study per consultation, host tally, disclosure control, run record"
read -r exact_s exact_kb < "$work/ili-exact.time"
read -r noisy_s _ < "$work/ili-weekly.time"
echo "the same run without cell-key noise: ${exact_s} s, peak RSS $((exact_kb / 1024)) MiB; noise adds $("$py" -c "print(f'{($noisy_s/$exact_s - 1)*100:+.1f}')")% (target <= +5%)"
if [ "$noise_rounds" -gt 1 ]; then
  "$py" - "$work/noisy.rounds" "$work/exact.rounds" <<'PY'
import statistics, sys
noisy, exact = ([float(x) for x in open(f).read().split()] for f in sys.argv[1:])
ratios = [a / b for a, b in zip(noisy, exact)]
print(f"{len(ratios)} alternating rounds, with noise: {' '.join(f'{x:.2f}' for x in noisy)} s; "
      f"without: {' '.join(f'{x:.2f}' for x in exact)} s; per-round cost: "
      f"{' '.join(f'{(r - 1) * 100:+.1f}%' for r in ratios)}; median "
      f"{(statistics.median(ratios) - 1) * 100:+.1f}% (target <= +5%)")
PY
fi
echo "== Re-consultation within 72 hours and 7 days, referral, by=monthly"
report reconsult "decrypt the granted columns, group by patient, Wasm study per patient, host tally, locality check, disclosure control, run record"
