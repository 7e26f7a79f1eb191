#!/usr/bin/env bash
# bench-sync.sh: measure the sync (`iys-sync --run-now`, the real binary, a
# process of its own) against the sandbox İYS (`iys-sync sandbox`, another
# process), and check the targets:
#
#   a. throttled: with the sandbox accepting N bulk requests a second
#      (--bulk-rate N) and answering after 100 ms, a run of --rows records
#      reaches at least 90% of the N x 1000 records/s bound (IYS_RATE_LIMIT=N,
#      IYS_BATCH_SIZE=1000, IYS_CONCURRENCY=2N: at 100 ms latency a batch takes
#      about 0.5 s from its request to its results, so 2N keeps the limiter busy
#      without claiming many batches ahead of it);
#   b. unthrottled: the records per second of a run with no limit and no
#      latency, at a few concurrencies (a figure; no target);
#   c. memory: the worker's peak RSS over a run of --rss-rows records stays
#      under 150 MB (the sandbox's memory is its own process's, not counted).
#
#   scripts/bench-sync.sh [--rows N] [--rss-rows N] [--rates "5 10"] [--concurrencies "4 32"]
#                         [--rss-concurrency N] [--skip-rss] [--what-if] [--server URL | --test-server]
#
#   --rows N             records of the throttled and unthrottled runs (default 100000)
#   --rss-rows N         records of the memory run (default 1000000)
#   --rates "N..."       sandbox bulk rates of the throttled runs (default "5 10")
#   --concurrencies "C..." IYS_CONCURRENCY of the unthrottled runs (default "4 32")
#   --rss-concurrency C  IYS_CONCURRENCY of the memory run (default 32)
#   --skip-rss           leave out the memory run
#   --what-if            also run the engine in-process (scripts/benchsync) with a
#                        2 s and a 200 ms first poll, for each throttled rate: what the
#                        poll interval changes (the binary polls first after 250 ms)
#   --server URL         use this server (a database URL whose user may CREATE DATABASE)
#                        instead of a throwaway cluster; it gets the database iys_bench_sync
#   --test-server        the same with $IYS_TEST_DATABASE_URL
#
# Each run gets a fresh database with one connector and the records imported
# by `iys-sync import` from a generated SMS upload file (scripts/benchtool
# gen: distinct numbers, two thirds ONAY, one third RET with no earlier record,
# which İYS refuses with H175: every record gets İYS's final word either way),
# and a fresh sandbox. records/s is the run's records over its duration as
# the runs table has it (started_at to finished_at: pull, push, every result
# recorded); the process's wall time (exec to exit, connecting and checking
# the schema included) and the sending rate (first to last bulk request) are
# shown beside it. Peak RSS is GNU time's %M of the iys-sync process, else
# VmHWM polled from /proc. Exits 1 when a target is missed.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

rows=100000 rss_rows=1000000 rates="5 10" concs="4 32" rss_conc=32 skip_rss=0 what_if=0 server=""
while [ $# -gt 0 ]; do
	case "$1" in
	--rows) rows=$2; shift 2 ;;
	--rss-rows) rss_rows=$2; shift 2 ;;
	--rates) rates=$2; shift 2 ;;
	--concurrencies) concs=$2; shift 2 ;;
	--rss-concurrency) rss_conc=$2; shift 2 ;;
	--skip-rss) skip_rss=1; shift ;;
	--what-if) what_if=1; shift ;;
	*) common_arg "$@"; shift "$used" ;;
	esac
done
for v in $rows $rss_rows $rates $concs $rss_conc; do
	case "$v" in '' | *[!0-9]*) echo "bench-sync.sh: --rows, --rss-rows, --rates and the concurrencies take positive whole numbers" >&2; exit 2 ;; esac
	[ "$v" -ge 1 ] || { echo "bench-sync.sh: $v: want 1 or more" >&2; exit 2; }
done

cd "$(dirname "$0")/.."
bench_workdir
sandbox_pid=""
stop_sandbox() {
	if [ -n "$sandbox_pid" ]; then
		stop_pid "$sandbox_pid"
		sandbox_pid=""
	fi
}
trap 'stop_sandbox; bench_cleanup' EXIT

go build -o "$work/iys-sync" ./cmd/iys-sync
go build -o "$work/benchtool" ./scripts/benchtool
go build -o "$work/benchsync" ./scripts/benchsync
bin=$work/iys-sync bt=$work/benchtool bs=$work/benchsync

rss_method

bench_server bench-sync.sh

machine_line
echo "server:    $server_name, $("$bt" sql -url "$admin" "SELECT split_part(version(), ' ', 1) || ' ' || split_part(version(), ' ', 2)")"
echo "go:        $(go env GOVERSION)"
echo "peak RSS:  $rss_by"
echo

# The upload files: benchtool gen writes the COPY input beside; not needed here.
gen() {
	"$bt" gen -rows "$1" -upload "$2" -copy "$work/unused.tsv"
	rm -f "$work/unused.tsv"
}
gen "$rows" "$work/sms.txt"
[ "$skip_rss" = 1 ] || [ "$rss_rows" = "$rows" ] || gen "$rss_rows" "$work/sms-rss.txt"
[ "$rss_rows" = "$rows" ] && cp "$work/sms.txt" "$work/sms-rss.txt"

# start_sandbox FLAGS...: a fresh sandbox on a free port; sets api.
start_sandbox() {
	stop_sandbox
	: >"$work/sandbox.out"
	"$bin" sandbox --addr 127.0.0.1:0 --username bench --password bench-pass --seed 1 "$@" >"$work/sandbox.out" 2>"$work/sandbox.err" &
	sandbox_pid=$!
	for _ in $(seq 300); do
		grep -q '^listening on ' "$work/sandbox.out" && break
		kill -0 "$sandbox_pid" 2>/dev/null || { cat "$work/sandbox.err" >&2; echo "bench-sync.sh: the sandbox did not start" >&2; exit 1; }
		sleep 0.05
	done
	api=$(sed -n 's/^listening on //p' "$work/sandbox.out")
	[ -n "$api" ] || { echo "bench-sync.sh: the sandbox did not start in 15 s" >&2; exit 1; }
}

# prepare FILE: a fresh database with connector B and FILE imported; sets db.
prepare() {
	db=$("$bt" freshdb -url "$admin" -name iys_bench_sync)
	IYS_DATABASE_URL=$db "$bin" install --brand-code B --iys-code 700001 --skip-verify >/dev/null
	if ! IYS_DATABASE_URL=$db "$bin" import --brand-code B --channel sms "$1" >"$work/import.out" 2>"$work/import.err"; then
		cat "$work/import.out" "$work/import.err" >&2
		echo "bench-sync.sh: the import failed" >&2
		exit 1
	fi
	"$bt" sql -url "$db" "VACUUM ANALYZE consents" >/dev/null
}

now() { date +%s.%N; }

# run_now CONCURRENCY RATE: `iys-sync --run-now` against db and api; sets
# wall_s and rss_kb, and loads the run's figures (benchsync figures) as fig_*.
run_now() {
	local rc=0 t0 t1 pid v hwm=0
	local envs=(IYS_DATABASE_URL="$db" IYS_API_URL="$api" IYS_USERNAME=bench IYS_PASSWORD=bench-pass
		IYS_BATCH_SIZE=1000 IYS_CONCURRENCY="$1" IYS_RATE_LIMIT="$2" IYS_LOG_LEVEL=warn)
	t0=$(now)
	if [ "${rss_by#GNU}" != "$rss_by" ]; then
		env "${envs[@]}" /usr/bin/time -f '%M' -o "$work/time.out" "$bin" --run-now >"$work/run.out" 2>"$work/run.err" || rc=$?
		t1=$(now)
		hwm=$(tail -1 "$work/time.out")
	else
		env "${envs[@]}" "$bin" --run-now >"$work/run.out" 2>"$work/run.err" &
		pid=$!
		while kill -0 "$pid" 2>/dev/null; do
			v=$(awk '/^VmHWM:/ { print $2 }' "/proc/$pid/status" 2>/dev/null || true)
			[ -n "$v" ] && hwm=$v
			sleep 0.02
		done
		wait "$pid" || rc=$?
		t1=$(now)
	fi
	if [ "$rc" != 0 ]; then
		echo "bench-sync.sh: --run-now exited $rc:" >&2
		cat "$work/run.out" >&2
		tail -20 "$work/run.err" >&2
		exit 1
	fi
	wall_s=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
	rss_kb=$hwm
	load_figures
}

load_figures() {
	local k v
	"$bs" figures -url "$db" -api "$api" >"$work/figures"
	while IFS='=' read -r k v; do
		printf -v "fig_$k" '%s' "$v"
	done <"$work/figures"
	if [ "$fig_left" != 0 ] || [ "$fig_done" != "$fig_records" ]; then
		echo "bench-sync.sh: the run left $fig_left of $fig_records records without İYS's word" >&2
		exit 1
	fi
}

rate_of() { awk -v n="$1" -v s="$2" 'BEGIN { printf "%.0f", n / s }'; }
pct() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", 100 * a / b }'; }
verdict() { if awk "BEGIN { exit !($1) }"; then echo PASS; else echo FAIL; fi; }
failed=0

echo "a. throttled: sandbox --bulk-rate N --latency 100ms; IYS_RATE_LIMIT=N, IYS_BATCH_SIZE=1000, IYS_CONCURRENCY=2N; $rows records"
for n in $rates; do
	conc=$((2 * n))
	[ "$conc" -gt 64 ] && conc=64
	bound=$((n * 1000))
	start_sandbox --bulk-rate "$n" --latency 100ms
	prepare "$work/sms.txt"
	run_now "$conc" "$n"
	r=$(rate_of "$fig_records" "$fig_run_s")
	ok=$(verdict "$r >= 0.9 * $bound")
	[ "$ok" = PASS ] || failed=1
	send_rate=$(awk -v b="$fig_batches" -v s="$fig_send_span_s" 'BEGIN { if (s > 0) printf "%.0f", (b - 1) * 1000 / s; else print "n/a" }')
	echo "  N=$n (bound $bound records/s, concurrency $conc): run ${fig_run_s} s -> $r records/s = $(pct "$r" "$bound")% of the bound: $ok"
	echo "      process ${wall_s} s -> $(rate_of "$fig_records" "$wall_s") records/s ($(pct "$(rate_of "$fig_records" "$wall_s")" "$bound")%);" \
		"sending $fig_batches bulk requests took ${fig_send_span_s} s -> $send_rate records/s ($(pct "$send_rate" "$bound")%);" \
		"the last result came ${fig_finish_span_s} s after the first request; 429s: $fig_throttled; peak RSS $(awk -v k="$rss_kb" 'BEGIN { printf "%.1f", k / 1024 }') MB"
	echo "      a batch, on average: ${fig_claim_to_saved_ms} ms from its claim to its requestId saved (rate limiter, bulk request)," \
		"${fig_saved_to_done_ms} ms from there to its results written (poll waits, polls, one UPDATE)"
	if [ "$what_if" = 1 ]; then
		for p in 2s 200ms; do
			start_sandbox --bulk-rate "$n" --latency 100ms
			prepare "$work/sms.txt"
			"$bs" run -url "$db" -api "$api" -user bench -password bench-pass -batch 1000 -concurrency "$conc" -rate "$n" \
				-poll-initial "$p" -poll-max 30s >"$work/whatif.out"
			ws=$(sed -n 's/^seconds=//p' "$work/whatif.out")
			wr=$(rate_of "$rows" "$ws")
			echo "      what if (engine in-process, no pull, first poll after $p): $ws s -> $wr records/s = $(pct "$wr" "$bound")%"
		done
	fi
done
echo

echo "b. unthrottled: sandbox with no limit and no latency; IYS_RATE_LIMIT=0, IYS_BATCH_SIZE=1000; $rows records"
for c in $concs; do
	start_sandbox
	prepare "$work/sms.txt"
	run_now "$c" 0
	echo "  IYS_CONCURRENCY=$c: run ${fig_run_s} s -> $(rate_of "$fig_records" "$fig_run_s") records/s" \
		"(process ${wall_s} s -> $(rate_of "$fig_records" "$wall_s") records/s; peak RSS $(awk -v k="$rss_kb" 'BEGIN { printf "%.1f", k / 1024 }') MB;" \
		"a batch: ${fig_claim_to_saved_ms} ms claim to saved, ${fig_saved_to_done_ms} ms saved to done)"
done
echo

if [ "$skip_rss" = 0 ]; then
	echo "c. memory: $rss_rows records, sandbox in its own process, no limit; IYS_CONCURRENCY=$rss_conc, IYS_BATCH_SIZE=1000"
	start_sandbox
	prepare "$work/sms-rss.txt"
	run_now "$rss_conc" 0
	mb=$(awk -v k="$rss_kb" 'BEGIN { printf "%.1f", k / 1024 }')
	ok=$(verdict "$mb < 150")
	[ "$ok" = PASS ] || failed=1
	echo "  peak RSS of iys-sync --run-now: $mb MB (target < 150): $ok"
	echo "  run ${fig_run_s} s -> $(rate_of "$fig_records" "$fig_run_s") records/s (process ${wall_s} s)"
fi
stop_sandbox
exit $failed
