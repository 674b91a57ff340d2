#!/usr/bin/env bash
# What the library's coverage instrumentation adds to fuzzing (`make fuzz-compare SECONDS`).
#
# For each target, two fresh corpora grown from the seeds for SECONDS each: one by the
# harness linked against the plain library (libFuzzer guided by the harness's own coverage
# only), one by the harness linked against the fuzzing build of the library (FUZZ_BIN/lib,
# guided by harness, C surface and engine). Both corpora are then replayed once under the
# instrumented library, which counts the edges (cov) and features (ft) each one reaches in
# harness, C surface and engine alike: the fair comparison. libFuzzer's own final cov/ft of
# each run are printed too (the plain run counts harness edges only).
set -euo pipefail
seconds=$1
shift
: "${FUZZ_CC:?}" "${FUZZ_CFLAGS:?}" "${FUZZ_BIN:?}"
out=$FUZZ_BIN/compare
mkdir -p "$out"
field() { sed -n "s/.*$1: \([0-9]*\).*/\1/p" | tail -n 1; }
printf '%-13s %-13s %10s %8s %8s %12s %12s\n' target library executions run-cov run-ft replayed-cov replayed-ft
for target in "$@"; do
    # shellcheck disable=SC2086 # FUZZ_CFLAGS holds several flags
    $FUZZ_CC $FUZZ_CFLAGS -o "$out/$target-plain" "fuzz/$target.c" -Lpython/relusv -lReluSVKit \
        -Wl,-rpath,"$PWD/python/relusv"
    for variant in plain instrumented; do
        binary=$FUZZ_BIN/$target
        [ "$variant" = plain ] && binary=$out/$target-plain
        corpus=$out/corpus-$target-$variant
        rm -rf "$corpus" && mkdir -p "$corpus"
        run=$(OPENBLAS_NUM_THREADS=1 "$binary" -max_total_time="$seconds" -rss_limit_mb=3072 -timeout=20 \
            -artifact_prefix="$out/$target-$variant-" -print_final_stats=1 "$corpus" "fuzz/seeds/$target" 2>&1)
        replay=$(OPENBLAS_NUM_THREADS=1 "$FUZZ_BIN/$target" -runs=0 -rss_limit_mb=3072 "$corpus" 2>&1 | grep INITED)
        done_line=$(grep -E "DONE" <<<"$run")
        printf '%-13s %-13s %10s %8s %8s %12s %12s\n' "$target" "$variant" \
            "$(field stat::number_of_executed_units <<<"$run")" "$(field cov <<<"$done_line")" \
            "$(field ft <<<"$done_line")" "$(field cov <<<"$replay")" "$(field ft <<<"$replay")"
    done
done
