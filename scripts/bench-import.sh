#!/usr/bin/env bash
# bench-import.sh: time the store's import path (store.ImportFile fed by
# generated SMS rows) against a bare COPY of the same rows into a table with
# the same columns and indexes, in the same run, and check the target:
# ImportFile takes at most 2x the bare COPY, and the importing process peaks
# under 100 MB of memory.
#
#   scripts/bench-import.sh [--rows N] [--rounds N] [--extra]
#
#   --rows N    rows to import (default 1000000)
#   --rounds N  measurements of each, alternating; the best of each counts (default 3)
#   --extra     also time the same file again (all unchanged) and an all-newer file (all updated)
#
# The server is IYS_TEST_DATABASE_URL when set, else a throwaway cluster
# started from the machine's PostgreSQL binaries. Exits 1 when the target is missed.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

rows=1000000 rounds=3 extra=0
while [ $# -gt 0 ]; do
	case "$1" in
	--rows) rows=$2; shift 2 ;;
	--rounds) rounds=$2; shift 2 ;;
	--extra) extra=1; shift ;;
	-h | --help) usage; exit 0 ;;
	*) echo "bench-import.sh: unknown argument $1 (try --help)" >&2; exit 2 ;;
	esac
done

cd "$(dirname "$0")/.."
bench_workdir

go test -c -o "$work/store.test" ./internal/store

export IYS_BENCH_ROWS=$rows IYS_BENCH_ROUNDS=$rounds IYS_BENCH_EXTRA=$extra
run=("$work/store.test" -test.run '^$' -test.bench '^BenchmarkImport1M$' -test.benchtime 1x -test.timeout 2h)
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -sr)"
echo "server: ${IYS_TEST_DATABASE_URL:+IYS_TEST_DATABASE_URL}${IYS_TEST_DATABASE_URL:-throwaway cluster ($(command -v postgres || ls -d /usr/lib/postgresql/*/bin | tail -1))}"
(cd internal/store && "${run[@]}") | tee "$work/out"

# metric UNIT: the number before UNIT on the benchmark's result line.
metric() { awk -v unit="$1" '/^BenchmarkImport1M/ { for (i = 2; i <= NF; i++) if ($i == unit) print $(i-1) }' "$work/out"; }
copy_s=$(metric copy-s) import_s=$(metric import-s) ratio=$(metric ratio)
cpu_ratio=$(metric cpu-ratio) rss_mb=$(metric peak-rss-MB)
if [ -z "$ratio" ] || [ -z "$rss_mb" ]; then
	echo "bench-import.sh: no result line from the benchmark" >&2
	exit 1
fi

echo
echo "rows:                 $rows (best of $rounds rounds)"
echo "bare COPY:            ${copy_s}s"
echo "ImportFile:           ${import_s}s"
echo "ratio:                $ratio (target <= 2)${cpu_ratio:+; CPU ratio $cpu_ratio}"
# VmHWM of the benchmark process itself: /usr/bin/time would also count the
# throwaway server, a child of that process.
echo "peak RSS (VmHWM):     ${rss_mb} MB (target < 100)"
if awk -v r="$ratio" -v m="$rss_mb" 'BEGIN { exit !(r <= 2 && m < 100) }'; then
	echo "target met"
else
	echo "target MISSED"
	exit 1
fi
