#!/usr/bin/env bash
# Runs each libFuzzer harness for a bounded time and prints one summary line per harness: how
# many inputs it executed, the coverage reached, the corpus size, and whether it found a crash.
#
#   Tests/fuzz/run_fuzz.sh --seconds N FUZZ_DIR NAME...
#
# FUZZ_DIR holds the harnesses (fuzz_NAME, built by `make fuzz-build`) and the seeds
# (seeds/NAME, written by Tests/fuzz/make_seeds.py). Each harness starts from its seeds and from
# FUZZ_DIR/corpus/NAME, which keeps growing from run to run; a crashing input is saved as
# FUZZ_DIR/artifacts/NAME-crash-<sha1> (reproduce: FUZZ_DIR/fuzz_NAME <that file>). The full
# log is FUZZ_DIR/logs/NAME.log, and the summary lines are appended to FUZZ_DIR/results.txt.
# Exits non-zero when any harness found a crash or failed to run.
set -uo pipefail

seconds=20
if [ "${1:-}" = "--seconds" ]; then
    seconds="$2"
    shift 2
fi
if [ "$#" -lt 2 ]; then
    echo "usage: $0 --seconds N FUZZ_DIR NAME..." >&2
    exit 2
fi
fuzz_dir="$1"
shift
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

# ASan's default is to abort on an allocation it cannot serve; the library reports those as
# BP_ERR_OUT_OF_MEMORY, which is the behaviour under test.
export ASAN_OPTIONS="${ASAN_OPTIONS:-allocator_may_return_null=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1}"

failed=()
for name in "$@"; do
    binary="$fuzz_dir/fuzz_$name"
    corpus="$fuzz_dir/corpus/$name"
    seeds="$fuzz_dir/seeds/$name"
    log="$fuzz_dir/logs/$name.log"
    mkdir -p "$corpus" "$fuzz_dir/artifacts" "$fuzz_dir/logs"
    dictionary=()
    [ -f "$here/$name.dict" ] && dictionary=("-dict=$here/$name.dict")

    # -malloc_limit_mb: no single allocation above 256 MB. The loaders promise to allocate no
    # more than an input of at most a few KB justifies, so a larger one is a finding.
    # -timeout: an input that takes more than 10 s is a hang.
    "$binary" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=256 \
        -print_final_stats=1 -artifact_prefix="$fuzz_dir/artifacts/$name-" \
        "${dictionary[@]}" "$corpus" "$seeds" >"$log" 2>&1
    status=$?

    executions="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)"
    coverage="$(grep -oE 'cov: [0-9]+' "$log" | tail -1 | cut -d' ' -f2)"
    corpus_size="$(find "$corpus" -type f | wc -l)"
    crashes="$(grep -cE '^(==[0-9]+==ERROR|broken promise|SUMMARY: )' "$log")"
    line="fuzz_$name: ${executions:-?} executions in ${seconds} s, coverage ${coverage:-?} edges,"
    line="$line corpus $corpus_size inputs, $([ "$status" -eq 0 ] && echo "no crash" || echo "FAILED (exit $status)")"
    echo "$line"
    echo "$(date -u +%Y-%m-%dT%H:%M:%SZ) $line" >>"$fuzz_dir/results.txt"
    if [ "$status" -ne 0 ]; then
        # What libFuzzer said about the crash, and where it saved the input.
        grep -E -A25 '^(==[0-9]+==ERROR|broken promise)' "$log" | head -40
        grep -E '^(artifact_prefix|Test unit written to)' "$log"
        echo "(full log: $log; $crashes error report(s))"
        failed+=("fuzz_$name")
    fi
done

if [ "${#failed[@]}" -gt 0 ]; then
    echo "fuzzing failed: ${failed[*]}"
    exit 1
fi
