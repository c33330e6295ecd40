#!/usr/bin/env bash
# The ILI weekly indicator as a Rust study (components/studies/ili-weekly) and as a Python
# study (tests/python/ili_weekly, built by componentize-py over sdk/python), each run
# inside the study sandbox on the same N consultations, on one thread: consultations per
# second of CPU time, the cost of one group call, and Python's time over Rust's (see
# host/benches/python_study.rs). Target: the Python study at >= 100,000 consultations/s.
#
#   host/benches/python_study.sh [CONSULTATIONS]      (default 1000000)
#
# Needs componentize-py (pip install componentize-py==0.25.1).
set -euo pipefail
n=${1:-1000000}
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
command -v componentize-py >/dev/null || {
  echo "componentize-py is not installed: pip install componentize-py==0.25.1" >&2
  exit 1
}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd components && cargo build --release -q --target wasm32-wasip2 -p ili-weekly)
(cd tests/python/ili_weekly && componentize-py -d "$root/wit" -w carrel:eds/study \
  componentize carrel_study.component -p . -p "$root/sdk/python" -o "$work/ili_python.wasm" >/dev/null)
echo "consultations=$n cores=$(nproc) $(componentize-py --version)"
cargo bench -q -p carrel --bench python_study -- \
  rust="$root/components/target/wasm32-wasip2/release/ili_weekly.wasm" \
  python="$work/ili_python.wasm" --rows "$n"
