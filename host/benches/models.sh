#!/usr/bin/env bash
# Scoring and fitting prediction models over the same N consultations, end to end in
# carrel, next to onnxruntime running natively on the same rows, in one invocation:
#
#   1. Scoring: the shipped `model-eval` component (tract inside the study's sandbox) runs
#      (i) a logistic regression and (ii) a 40-tree, depth-3 gradient-boosting classifier,
#      both trained here with scikit-learn on the declared features and exported with
#      skl2onnx (no ZipMap), over every consultation; the host bins the scores and
#      computes the evaluation report. onnxruntime runs the same files on the same
#      feature matrix, built in Python from the same rows (Parquet) by the rules of
#      components/study-sdk/src/features.rs. Target: carrel >= 0.5x onnxruntime's rows/s.
#   2. Fitting: the shipped `glm-fit` component hands the host each row's 9 features and
#      outcome; the host fits the logistic regression (10 parameters) by IRLS. Target:
#      under 30 s at 10 million rows. No reference: the figure is absolute.
#
# Each carrel run is a whole process under /usr/bin/time (wall seconds, peak RSS), after
# a warm-up run on one month that compiles the component into the cache as a running
# warehouse would have. With `perf` on the PATH, a run of each scoring study on the last
# six months is sampled (CARREL_PROFILER=perfmap) and the script prints the share of the
# process's CPU spent in the guest's code (feature vectors and tract: the scoring proper),
# applied to the timed run's CPU time, and the rows/s that gives.
#
#   host/benches/models.sh [CONSULTATIONS]      (default 10000000)
#
# Needs Python with pyarrow, numpy, scikit-learn, skl2onnx, onnx and onnxruntime
# (installed into the venv target/bench-venv on first use).
set -euo pipefail
n=${1:-10000000}
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
venv=$root/target/bench-venv
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
py=$venv/bin/python
"$py" -c "import pyarrow, numpy, sklearn, skl2onnx, onnx, onnxruntime" 2>/dev/null ||
  "$venv/bin/pip" install -q pyarrow numpy scikit-learn skl2onnx onnx onnxruntime
cargo build --release -q -p carrel
cargo bench -q -p carrel --bench study_data --no-run 2>/dev/null
data=$(ls -t "$root"/target/release/deps/study_data-* | grep -v '\.d$' | head -1)
(cd components && cargo build --release -q --target wasm32-wasip2 -p model-eval -p glm-fit)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
carrel=$root/target/release/carrel
state=(--state-dir "$work/state")
export CARREL_LOG=error
features='"age_years", "hour", "sex=F", "visit_type=home", "visit_type=tele", "diagnoses:J", "diagnoses:A", "diagnoses:R", "departement=35"'

"$data" "$n" "$work/state" "$work/rows.arrow" >/dev/null
mkdir -p "$work/models"
# The rows as Parquet (the reference's input), then both models trained on the first
# 200,000 rows' feature vectors and exported without ZipMap (onnxruntime's ZipMap output,
# a list of maps, would cost the reference more than the model).
"$py" - "$work" "$features" <<'PY'
import sys, json, pyarrow as pa, pyarrow.parquet as pq
work, features = sys.argv[1], json.loads("[" + sys.argv[2] + "]")
with pa.ipc.open_stream(f"{work}/rows.arrow") as reader:
    pq.write_table(reader.read_all(), f"{work}/rows.parquet")
json.dump(features, open(f"{work}/features.json", "w"))
PY
rm "$work/rows.arrow"

# features.py: the feature matrix of the Parquet rows, as the study SDK builds it: numbers
# for age_years and hour, 1/0 for COLUMN=VALUE (0 when the value is missing), 1 when one of
# the row's codes starts with the prefix for diagnoses:PREFIX; rows of unknown age get no
# vector.
cat > "$work/features.py" <<'PY'
import json, numpy as np, pyarrow.compute as pc, pyarrow.parquet as pq

def matrix(path, features):
    table = pq.read_table(path, columns=["age_years", "hour", "sex", "visit_type",
                                         "departement", "diagnoses", "outcome"])
    n = table.num_rows
    x = np.zeros((n, len(features)), dtype=np.float32)
    for j, feature in enumerate(features):
        if feature in ("age_years", "hour"):
            x[:, j] = table[feature].to_numpy(zero_copy_only=False)
        elif feature.startswith("diagnoses:"):
            lists = table["diagnoses"].combine_chunks()
            parents = pc.list_parent_indices(lists).to_numpy()
            hits = pc.starts_with(pc.list_flatten(lists), feature.split(":", 1)[1])
            has = np.zeros(n, dtype=bool)
            has[parents[hits.to_numpy(zero_copy_only=False)]] = True
            x[:, j] = has
        else:
            column, value = feature.split("=", 1)
            x[:, j] = pc.fill_null(pc.equal(table[column], value), False).to_numpy()
    scored = table["age_years"].is_valid().to_numpy(zero_copy_only=False)
    y = pc.fill_null(pc.equal(table["outcome"], "hospital"), False).to_numpy()
    return x[scored], y[scored].astype(np.int64)
PY

"$py" - "$work" <<'PY'
import sys, json
sys.path.insert(0, sys.argv[1])
from features import matrix
from skl2onnx import to_onnx
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
work = sys.argv[1]
x, y = matrix(f"{work}/rows.parquet", json.load(open(f"{work}/features.json")))
x, y = x[:200_000], y[:200_000]
for name, model in {"logistic": LogisticRegression(max_iter=1000),
                    "boosting": GradientBoostingClassifier(n_estimators=40, max_depth=3)}.items():
    model.fit(x, y)
    onnx = to_onnx(model, x[:1], options={"zipmap": False},
                   target_opset={"": 17, "ai.onnx.ml": 3})
    with open(f"{work}/models/{name}.onnx", "wb") as file:
        file.write(onnx.SerializeToString())
PY

# The manifest: spin.toml with absolute sources, plus the bench's three studies. The
# evaluations are the shipped referral-eval's section with the bench's model and features.
sed "s#^source = \"components/#source = \"$root/components/#" spin.toml > "$work/spin.toml"
study_section() { # ID SOURCE KIND
  cat <<EOF

[[trigger.study]]
component = "$1"

[component.$1]
source = "$root/components/target/wasm32-wasip2/release/$2.wasm"

[component.$1.tool.carrel.study]
title = "Bench: $1"
purpose = "Speed of scoring and fitting a model of hospital referral over every consultation."
legal_basis = "Benchmark on synthetic rows"
principal_investigator = "carrel benches"
expires = "2099-12-31"
time_limit_seconds = 3600
memory_limit_mb = 512
kind = "$3"
datasets = { consultations = ["age_years", "hour", "sex", "visit_type", "departement", "diagnoses", "outcome"] }
EOF
}
for model in logistic boosting; do
  study_section "bench-$model" model_eval model-evaluation
  cat <<EOF

[component.bench-$model.tool.carrel.study.model]
file = "models/$model.onnx"
features = [$features]
outcome = "hospital"
bins = 20
thresholds = [0.05, 0.1]
subgroups = ["age_class", "sex", "visit_type", "region"]
EOF
done >> "$work/spin.toml"
{
  study_section bench-fit glm_fit model-fit
  # 20 rows per patient: every generated row is fitted (the default bound, 3, would drop
  # the returning patients' rows beyond it).
  cat <<EOF

[component.bench-fit.tool.carrel.study.fit]
family = "logistic"
features = [$features]
outcome = "outcome=hospital"
max_rows_per_patient = 20
EOF
} >> "$work/spin.toml"
manifest=(-f "$work/spin.toml")

auditor=$($carrel tokens add --role auditor "${state[@]}" | tail -1)
for study in bench-logistic bench-boosting bench-fit; do
  $carrel study submit "$study" "${manifest[@]}" "${state[@]}" >/dev/null
  $carrel study approve "$study" --token "$auditor" "${manifest[@]}" "${state[@]}" >/dev/null
done

# carrel_run STUDY: a warm-up run on the last month (it compiles the component into the
# cache), with perf a profiled run on the last six months, then the timed run on every
# row. Leaves STUDY.time ("seconds peak-KiB user sys"), STUDY.run.json (`carrel audit
# run`) and, with perf, STUDY.guest (the share of CPU samples in the guest's JIT code) in
# $work.
carrel_run() {
  local study=$1 run_id
  $carrel study run "$study" --param from=2025-06-01 "${manifest[@]}" "${state[@]}" --json >/dev/null
  if command -v perf >/dev/null && [ "$study" != bench-fit ]; then
    CARREL_PROFILER=perfmap perf record -q -F 499 -o "$work/$study.perf" -- \
      $carrel study run "$study" --param from=2025-01-01 "${manifest[@]}" "${state[@]}" --json >/dev/null 2>&1
    # The guest's code is what the JIT's perf map names.
    perf report -q -i "$work/$study.perf" --no-children --sort dso 2>/dev/null |
      awk '/perf-[0-9]+\.map/ { gsub("%", "", $1); guest += $1 } END { printf "%.1f\n", guest }' \
        > "$work/$study.guest"
    rm -f "$work/$study.perf"
  fi
  /usr/bin/time -f "%e %M %U %S" -o "$work/$study.time" \
    $carrel study run "$study" "${manifest[@]}" "${state[@]}" --json > "$work/$study.view.json"
  run_id=$("$py" -c "import json, sys; print(json.load(open(sys.argv[1]))['run_id'])" "$work/$study.view.json")
  $carrel audit run "$run_id" "${state[@]}" > "$work/$study.run.json"
}
carrel_run bench-logistic
carrel_run bench-boosting
carrel_run bench-fit

# onnxruntime on the same models: the feature matrix built from Parquet once (timed
# apart), one warm-up run on 100,000 rows, then every row scored in chunks of 1,000,000.
# Prints "model matrix-seconds score-seconds rows auroc".
"$py" - "$work" > "$work/ort.txt" <<'PY'
import sys, json, time
sys.path.insert(0, sys.argv[1])
import numpy as np, onnxruntime
from features import matrix
work = sys.argv[1]
start = time.perf_counter()
x, y = matrix(f"{work}/rows.parquet", json.load(open(f"{work}/features.json")))
built = time.perf_counter() - start
def auroc(score, y):
    order = np.argsort(score, kind="stable")
    ranks = np.empty(len(score)); ranks[order] = np.arange(1, len(score) + 1)
    # Mean ranks of ties, as the Mann-Whitney statistic counts them.
    _, inverse, counts = np.unique(score, return_inverse=True, return_counts=True)
    sums = np.bincount(inverse, weights=ranks)
    ranks = (sums / counts)[inverse]
    pos = y.sum(); neg = len(y) - pos
    return (ranks[y == 1].sum() - pos * (pos + 1) / 2) / (pos * neg)
for name in ["logistic", "boosting"]:
    session = onnxruntime.InferenceSession(f"{work}/models/{name}.onnx",
                                           providers=["CPUExecutionProvider"])
    feed = session.get_inputs()[0].name
    session.run(None, {feed: x[:100_000]})
    start = time.perf_counter()
    probabilities = [session.run(None, {feed: x[i:i + 1_000_000]})[-1]
                     for i in range(0, len(x), 1_000_000)]
    seconds = time.perf_counter() - start
    p = np.concatenate(probabilities)
    p = p[:, 1] if p.ndim == 2 and p.shape[1] == 2 else p.reshape(-1)
    print(name, f"{built:.3f}", f"{seconds:.3f}", len(x), f"{auroc(p, y):.4f}")
PY

rate() { "$py" -c "print(f'{$1 / $2:,.0f}')"; }
ratio() { "$py" -c "print(f'{$1 / $2:.2f}')"; }
outcome() {
  "$py" -c "import json, sys; r = json.load(open(sys.argv[1])); print(r['status'], 'rows read', r['rows_read'], 'dropped', r['contributions_dropped'], r['error'] or '')" "$work/$1.run.json"
}

echo "consultations=$n cores=$(nproc) onnxruntime $("$py" -c 'import onnxruntime; print(onnxruntime.__version__)') (default threads)"
for model in logistic boosting; do
  study=bench-$model
  read -r s kb user sys < "$work/$study.time"
  read -r _ built ort_s rows ort_auroc < <(grep "^$model " "$work/ort.txt")
  auroc=$("$py" -c "import json, sys; r = json.load(open(sys.argv[1])).get('model_report') or {}; o = r.get('overall') or r; print(o.get('auroc', 'n/a'))" "$work/$study.run.json" 2>/dev/null || echo n/a)
  echo "== $model: carrel study run $study (decrypt, feature vectors and tract in the sandbox, host binning, report, run record)"
  echo "carrel: ${s} s wall (${user} s user, ${sys} s sys), $(rate "$rows" "$s") rows/s, peak RSS $((kb / 1024)) MiB; run: $(outcome "$study"); AUROC from the host's bins $auroc"
  echo "onnxruntime: scoring ${ort_s} s, $(rate "$rows" "$ort_s") rows/s (AUROC $ort_auroc); with the feature matrix built from Parquet (${built} s): $(rate "$rows" "$("$py" -c "print($built + $ort_s)")") rows/s"
  echo "carrel / onnxruntime rows/s: $(ratio "$ort_s" "$s")x against scoring alone, $(ratio "$("$py" -c "print($built + $ort_s)")" "$s")x against matrix + scoring (target >= 0.5x)"
  # perf attributes JIT code through the perf map; without one (or without samples in
  # it), there is no guest share to print.
  if [ -s "$work/$study.guest" ] && [ "$(cat "$work/$study.guest")" != "0.0" ]; then
    guest=$(cat "$work/$study.guest")
    guest_s=$("$py" -c "print(f'{($user + $sys) * $guest / 100:.2f}')")
    echo "scoring part (perf): ${guest}% of carrel's CPU samples in the guest's code (feature vectors and tract), about ${guest_s} s: $(rate "$rows" "$guest_s") rows/s, $(ratio "$ort_s" "$guest_s")x onnxruntime's scoring"
  fi
done
read -r s kb user sys < "$work/bench-fit.time"
echo "== logistic fit, 10 parameters: carrel study run bench-fit (decrypt, feature vectors in the sandbox, host patterns, checks, IRLS, run record)"
echo "carrel: ${s} s wall (${user} s user, ${sys} s sys), peak RSS $((kb / 1024)) MiB (target < 30 s at 10,000,000 rows); run: $(outcome bench-fit)"
"$py" -c "import json, sys; r = json.load(open(sys.argv[1])).get('model_report') or {}; print('fit:', {k: r.get(k) for k in ('rows', 'events', 'iterations', 'parameters')})" "$work/bench-fit.run.json"
