#!/usr/bin/env bash
# Where libbackprop spends a training step: samples the C benchmark with perf and prints, for
# each configuration, the functions by self time and by inclusive time (demangled).
#
#   bash benchmarks/profile.sh                       all configurations, 1 thread
#   bash benchmarks/profile.sh tiny wide             some of them
#   THREADS=2 SECONDS_PER_TIMING=2 bash benchmarks/profile.sh mnist-256
#
# Needs `make bench` to have built build/bench/bench, and perf (Debian: linux-perf). It samples
# the cpu-clock software event, which works in virtual machines without hardware counters, with
# DWARF call graphs (OpenBLAS's kernels keep no frame pointers, so frame-pointer stacks break
# there). The inclusive view leaves out the C boundary's wrapper closures and frames perf cannot
# name.
# Reports go to build/bench/profile-<config>.txt. Without perf, use valgrind:
#   valgrind --tool=callgrind build/bench/bench train --layers 2,16,2 --batch 4 --threads 1 \
#       --seconds 0.2 --repeats 1
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
bench="$root/build/bench/bench"
out="$root/build/bench"
threads="${THREADS:-1}"
seconds="${SECONDS_PER_TIMING:-1}"
limit="${PERCENT_LIMIT:-1.5}"

[ -x "$bench" ] || { echo "profile: $bench is missing: run make bench first" >&2; exit 1; }
command -v perf >/dev/null || { echo "profile: perf is missing (apt-get install linux-perf)" >&2; exit 1; }
unset OPENBLAS_CORETYPE OPENBLAS_L2_SIZE
# As the benchmark runs it (run.py): an OpenBLAS started with more threads keeps idle workers
# that call sched_yield, which showed as 0.7% of a one-thread mnist-256 profile.
export OPENBLAS_NUM_THREADS="$threads" OMP_NUM_THREADS="$threads"

# Demangled Swift names, without perf's trailing padding.
demangle() {
    if command -v swift >/dev/null; then swift demangle --simplified; else cat; fi \
        | sed -E 's/[[:space:]]+(-[[:space:]]+)*$//'
}

declare -A layers=([tiny]=2,16,2 [small]=64,128,10 [mnist-64]=784,256,128,10
                   [mnist-256]=784,256,128,10 [wide]=1024,2048,2048,10)
declare -A batch=([tiny]=4 [small]=32 [mnist-64]=64 [mnist-256]=256 [wide]=128)
configs=("$@")
[ ${#configs[@]} -gt 0 ] || configs=(tiny small mnist-64 mnist-256 wide)

for config in "${configs[@]}"; do
    [ -n "${layers[$config]:-}" ] || { echo "profile: unknown configuration $config" >&2; exit 1; }
    data="$out/perf-$config.data"
    report="$out/profile-$config.txt"
    perf record -q -e cpu-clock -F 999 --call-graph dwarf,16384 -o "$data" \
        "$bench" train --layers "${layers[$config]}" --batch "${batch[$config]}" \
        --threads "$threads" --seconds "$seconds" --repeats 3 >/dev/null 2>&1
    {
        echo "== $config (${layers[$config]}, batch ${batch[$config]}, $threads thread(s))"
        echo "-- self time"
        perf report -i "$data" --no-children --sort dso,symbol -g none --percent-limit "$limit" \
            --stdio 2>/dev/null | grep -E '^ +[0-9]' | demangle
        echo "-- inclusive time"
        perf report -i "$data" --children --sort symbol -g none --percent-limit 5 \
            --stdio 2>/dev/null | grep -E '^ +[0-9]' | demangle \
            | grep -vE 'partial apply|closure #|locked|guarded|withNetwork|\] 0x0|_start|\] main$|time_steps|run_train'
    } > "$report"
    cat "$report"
    echo
done
