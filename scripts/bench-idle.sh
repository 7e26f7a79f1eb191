#!/usr/bin/env bash
# bench-idle.sh: what a connector costs a run (`iys-sync --run-now`, the real
# binary, a process of its own) against the sandbox İYS (`iys-sync sandbox
# --latency L`, another process), over many connectors, and check the
# targets:
#
#   a. idle: N connectors with nothing pending and nothing new at İYS. Each
#      costs at most its two pull requests (the changes feed, citizens' and
#      the brand's), and no other request; the login is shared (one token
#      per API user, kept in PostgreSQL), so a run logs in at most once.
#      Figures: İYS requests per connector, by endpoint; the run's wall time
#      per connector (the whole process, exec to exit, divided by N), and the
#      marginal time per connector between the smallest and the largest N.
#   b. records: N connectors with --records new pending records each (one
#      bulk request apiece, like 200 brands of 30 records): the run's wall
#      time and İYS requests (figures; no target).
#
#   scripts/bench-idle.sh [--connectors "10 1000"] [--records N] [--latency D] [--concurrencies "4 16"]
#                         [--records-concurrencies "4"] [--rounds N] [--record-rounds N] [--skip-idle] [--skip-records]
#                         [--baseline BIN] [--server URL | --test-server]
#
#   --connectors "N..."   connector counts (default "10 1000")
#   --records N           pending records per connector in case b (default 30, at most 99)
#   --latency D           the sandbox's delay on every answer (default 50ms)
#   --concurrencies "C..." IYS_CONCURRENCY of the idle runs (default "4 16")
#   --records-concurrencies "C..." IYS_CONCURRENCY of the runs with records (default "4")
#   --rounds N            timed idle runs per case; the median is reported (default 5; one
#                         more, the first, is discarded)
#   --record-rounds N     the same for case b (default 3)
#   --skip-idle           leave out case a
#   --skip-records        leave out case b
#   --baseline BIN        also run another iys-sync binary (an earlier build), alternating
#                         with this tree's every round (which goes first alternates too),
#                         and report its medians beside: before and after on the same
#                         machine in the same minutes
#   --server URL          use this server (a database URL whose user may CREATE DATABASE)
#                         instead of a throwaway cluster; it gets the database iys_bench_idle
#   --test-server         the same with $IYS_TEST_DATABASE_URL
#
# Method. For each N: a fresh database; the connectors are installed through
# the store (scripts/benchsync connectors: store.InstallConnector, what
# `install --skip-verify` does, 1,000 processes being slow) and given their
# records through the intake's merge (store.ImportItems), fresh recipients
# each round; a fresh sandbox with the latency. Each run is `iys-sync
# --run-now` with IYS_RATE_LIMIT=0 (the default 1 bulk request a second
# would make case b a measure of the limiter) and the other settings'
# defaults; every connector's run must end completed. Requests are the
# sandbox's own counts (GET /_sandbox/stats) before and after each run.
# Wall times share the machine with whatever else runs on it: read the load
# average printed beside them. Exits 1 when a target is missed.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

conns="10 1000" records=30 latency=50ms concs="4 16" rconcs="4" rounds=5 rrounds=3 skip_idle=0 skip_records=0 baseline="" server=""
while [ $# -gt 0 ]; do
	case "$1" in
	--connectors) conns=$2; shift 2 ;;
	--records) records=$2; shift 2 ;;
	--latency) latency=$2; shift 2 ;;
	--concurrencies) concs=$2; shift 2 ;;
	--records-concurrencies) rconcs=$2; shift 2 ;;
	--rounds) rounds=$2; shift 2 ;;
	--record-rounds) rrounds=$2; shift 2 ;;
	--skip-idle) skip_idle=1; shift ;;
	--skip-records) skip_records=1; shift ;;
	--baseline) baseline=$(realpath "$2"); shift 2 ;;
	*) common_arg "$@"; shift "$used" ;;
	esac
done
for v in $conns $records $concs $rconcs $rounds $rrounds; do
	case "$v" in '' | *[!0-9]*) echo "bench-idle.sh: counts take positive whole numbers" >&2; exit 2 ;; esac
	[ "$v" -ge 1 ] || { echo "bench-idle.sh: $v: want 1 or more" >&2; exit 2; }
done
[ "$records" -le 99 ] || { echo "bench-idle.sh: --records: at most 99" >&2; exit 2; }
[ -z "$baseline" ] || [ -x "$baseline" ] || { echo "bench-idle.sh: --baseline $baseline is not an executable" >&2; exit 2; }

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
builds="new"
[ -n "$baseline" ] && builds="base new"
binof() { if [ "$1" = base ]; then echo "$baseline"; else echo "$bin"; fi; }

bench_server bench-idle.sh

machine_line
echo "server:    $server_name, $("$bt" sql -url "$admin" "SELECT split_part(version(), ' ', 1) || ' ' || split_part(version(), ' ', 2)")"
echo "go:        $(go env GOVERSION); commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet 2>/dev/null || echo ' (with local changes)')"
[ -n "$baseline" ] && echo "baseline:  $baseline"
echo "sandbox:   --latency $latency; IYS_RATE_LIMIT=0; medians of $rounds idle and $rrounds record rounds, the first of each case discarded"
echo

# start_sandbox: a fresh sandbox on a free port; sets api.
start_sandbox() {
	stop_sandbox
	: >"$work/sandbox.out"
	"$bin" sandbox --addr 127.0.0.1:0 --username bench --password bench-pass --seed 1 --latency "$latency" \
		>"$work/sandbox.out" 2>"$work/sandbox.err" &
	sandbox_pid=$!
	wait_for "$work/sandbox.out" '^listening on ' "$sandbox_pid" || { cat "$work/sandbox.err" >&2; echo "bench-idle.sh: the sandbox did not start" >&2; exit 1; }
	api=$(sed -n 's/^listening on //p' "$work/sandbox.out")
}

now() { date +%s.%N; }
load() { cut -d' ' -f1 /proc/loadavg; }

# run_now BUILD CONCURRENCY N: one `iys-sync --run-now` of BUILD over the N
# connectors; sets wall_ms, and req_* (requests by kind in this run).
last_run=0
run_now() {
	local rc=0 t0 t1 k v
	"$bs" requests -api "$api" >"$work/req.before"
	t0=$(now)
	env IYS_DATABASE_URL="$db" IYS_API_URL="$api" IYS_USERNAME=bench IYS_PASSWORD=bench-pass \
		IYS_CONCURRENCY="$2" IYS_RATE_LIMIT=0 IYS_LOG_LEVEL=warn \
		"$(binof "$1")" --run-now --json >"$work/run.out" 2>"$work/run.err" || rc=$?
	t1=$(now)
	"$bs" requests -api "$api" >"$work/req.after"
	if [ "$rc" != 0 ]; then
		echo "bench-idle.sh: --run-now ($1) exited $rc:" >&2
		head -c 2000 "$work/run.out" >&2
		tail -20 "$work/run.err" >&2
		exit 1
	fi
	"$bs" runs -url "$db" -since "$last_run" >"$work/runs"
	while IFS='=' read -r k v; do printf -v "runs_$k" '%s' "$v"; done <"$work/runs"
	last_run=$runs_last
	if [ "$runs_runs" != "$3" ] || [ "$runs_completed" != "$3" ]; then
		echo "bench-idle.sh: $runs_completed of $3 connectors' runs completed ($runs_runs runs)" >&2
		exit 1
	fi
	wall_ms=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f", 1000 * (b - a) }')
	# Requests by kind: the changes feed, the bulk requests and their
	# results, logins, and anything else.
	awk -F'\t' 'NR == FNR { before[$1] = $2; next }
		{ d = $2 - before[$1]; if (d == 0) next
		  if ($1 == "logins") { logins += d; next }
		  total += d
		  if ($1 ~ /\/changes/) changes += d
		  else if ($1 ~ /^POST .*consents\/request$/) submit += d
		  else if ($1 ~ /consents\/request\//) results += d
		  else if ($1 ~ /oauth|token/) tokens += d
		  else { other += d; names = names " " $1 "=" d } }
		END { printf "req_total=%d\nreq_changes=%d\nreq_submit=%d\nreq_results=%d\nreq_token=%d\nreq_logins=%d\nreq_other=%d\nreq_other_names=%s\n",
		      total, changes, submit, results, tokens, logins, other, names }' "$work/req.before" "$work/req.after" >"$work/req"
	while IFS='=' read -r k v; do printf -v "$k" '%s' "$v"; done <"$work/req"
}

median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else printf "%.0f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
per() { awk -v a="$1" -v n="$2" 'BEGIN { printf "%.2f", a / n }'; }
failed=0

# idle_case N CONCURRENCY: rounds+1 idle runs per build, the first discarded.
declare -A idle_ms
idle_case() {
	local n=$1 c=$2 r b order ms_new="" ms_base="" loads="" reqline=""
	for r in $(seq 0 "$rounds"); do
		order=$builds
		[ $((r % 2)) = 1 ] && [ -n "$baseline" ] && order="new base"
		for b in $order; do
			run_now "$b" "$c" "$n"
			[ "$r" = 0 ] && continue
			if [ "$b" = new ]; then ms_new="$ms_new $wall_ms"; else ms_base="$ms_base $wall_ms"; fi
			loads="$loads $(load)"
			if [ "$req_other" != 0 ] || [ "$req_submit" != 0 ] || [ "$req_results" != 0 ] ||
				[ "$req_changes" -gt $((2 * n)) ] || [ "$req_logins" -gt 1 ]; then
				echo "  FAIL ($b): $n idle connectors made $req_total requests: changes $req_changes, bulk $req_submit, results $req_results, logins $req_logins, other:$req_other_names"
				[ "$b" = new ] && failed=1
			fi
			[ "$b" = new ] && reqline="changes $req_changes ($(per "$req_changes" "$n") a connector), token $req_token, logins $req_logins, other $req_other"
		done
	done
	local m mb
	m=$(echo "$ms_new" | median)
	idle_ms[$n.$c]=$m
	echo "  N=$n, IYS_CONCURRENCY=$c: requests $reqline"
	echo "      wall $m ms median ($ms_new ) = $(per "$m" "$n") ms a connector; load average$loads"
	if [ -n "$baseline" ]; then
		mb=$(echo "$ms_base" | median)
		idle_ms[$n.$c.base]=$mb
		echo "      baseline: $mb ms median ($ms_base ) = $(per "$mb" "$n") ms a connector"
	fi
}

records_case() {
	local n=$1 c=$2 r b order ms_new="" ms_base="" loads="" reqline=""
	for r in $(seq 0 "$rrounds"); do
		order=$builds
		[ $((r % 2)) = 1 ] && [ -n "$baseline" ] && order="new base"
		for b in $order; do
			round=$((round + 1))
			"$bs" connectors -url "$db" -n "$n" -records "$records" -round $((round % 100))
			"$bt" sql -url "$db" "VACUUM ANALYZE consents" >/dev/null
			run_now "$b" "$c" "$n"
			[ "$r" = 0 ] && continue
			if [ "$b" = new ]; then ms_new="$ms_new $wall_ms"; else ms_base="$ms_base $wall_ms"; fi
			loads="$loads $(load)"
			[ "$b" = new ] && reqline="$req_total (changes $req_changes, bulk $req_submit, results $req_results, token $req_token, other $req_other) = $(per "$req_total" "$n") a connector; sent $runs_sent"
		done
	done
	local m mb
	m=$(echo "$ms_new" | median)
	echo "  N=$n x $records records, IYS_CONCURRENCY=$c: requests $reqline"
	echo "      wall $m ms median ($ms_new ) = $(per "$m" "$n") ms a connector; load average$loads"
	if [ -n "$baseline" ]; then
		mb=$(echo "$ms_base" | median)
		echo "      baseline: $mb ms median ($ms_base ) = $(per "$mb" "$n") ms a connector"
	fi
}

round=0
if [ "$skip_idle" = 0 ]; then
echo "a. idle connectors: nothing pending, nothing new at İYS; target: the two pull requests each, nothing else, at most one login a run"
for n in $conns; do
	db=$("$bt" freshdb -url "$admin" -name iys_bench_idle)
	last_run=0
	"$bs" connectors -url "$db" -n "$n"
	start_sandbox
	for c in $concs; do
		idle_case "$n" "$c"
	done
done
set -- $conns
first=$1
for c in $concs; do
	for n in $conns; do last=$n; done
	if [ "$last" != "$first" ]; then
		echo "  marginal, IYS_CONCURRENCY=$c: $(awk -v a="${idle_ms[$first.$c]}" -v b="${idle_ms[$last.$c]}" -v m="$first" -v n="$last" 'BEGIN { printf "%.2f", (b - a) / (n - m) }') ms a connector from $first to $last" \
			"$( [ -n "$baseline" ] && awk -v a="${idle_ms[$first.$c.base]}" -v b="${idle_ms[$last.$c.base]}" -v m="$first" -v n="$last" 'BEGIN { printf "(baseline %.2f)", (b - a) / (n - m) }')"
	fi
done
echo
fi

if [ "$skip_records" = 0 ]; then
	echo "b. $records pending records per connector (one bulk request each): run time and requests"
	for n in $conns; do
		db=$("$bt" freshdb -url "$admin" -name iys_bench_idle)
		last_run=0
		"$bs" connectors -url "$db" -n "$n"
		start_sandbox
		for c in $rconcs; do
			records_case "$n" "$c"
		done
	done
fi
stop_sandbox
exit $failed
