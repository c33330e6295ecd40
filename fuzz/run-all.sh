#!/usr/bin/env bash
# Runs every fuzz target in turn, one process each, for SECONDS seconds (default 180),
# growing fuzz/work/<target> from the committed fuzz/corpus/<target>. Crashes are
# written to fuzz/artifacts/<target>/.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-180}
for target in fhir_ndjson fhir_bundle fhir_consent ndjson_lines fhir_date manifest nir; do
    case $target in
        fhir_*) dict=(-dict=fuzz/dict/fhir.dict) ;;
        manifest) dict=(-dict=fuzz/dict/manifest.dict) ;;
        *) dict=() ;;
    esac
    mkdir -p "fuzz/work/$target"
    cargo +nightly fuzz run "$target" "fuzz/work/$target" "fuzz/corpus/$target" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
        -print_final_stats=1 "${dict[@]}"
done
