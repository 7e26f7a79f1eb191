#!/usr/bin/env bash
# bench-status.sh: how long `iys-sync status --json` and a /metrics scrape
# take as the records grow. Records are written straight into a fresh
# database by SQL (through the triggers that keep the counts, as every
# writer's are), for one connector: by default 90% synced, 8% pending
# (consents of the last 10 days), 2% rejected.
#
#   scripts/bench-status.sh [--records N[,N...]] [--pending PCT] [--runs N] [--server URL | --test-server]
#
#   --records N,...  record counts to measure at, growing (default 1000000,3000000)
#   --pending PCT    share of pending records, in percent (default 8)
#   --runs N         timed runs at each size; the median is reported (default 5; one more, first, is discarded)
#   --server URL     use this server (a database URL whose user may CREATE DATABASE) instead of
#                    a throwaway cluster; it gets the database iys_bench_status
#   --test-server    the same with $IYS_TEST_DATABASE_URL
#
# Targets at 3,000,000 records: status under 0.5 s, /metrics under 0.2 s.
# Needs Go, curl and the machine's PostgreSQL binaries. Exits 1 when a
# target is missed.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

sizes=1000000,3000000 pending=8 runs=5 server=""
while [ $# -gt 0 ]; do
	case "$1" in
	--records) sizes=$2; shift 2 ;;
	--pending) pending=$2; shift 2 ;;
	--runs) runs=$2; shift 2 ;;
	*) common_arg "$@"; shift "$used" ;;
	esac
done
case "$sizes$pending$runs" in *[!0-9,]*) echo "bench-status.sh: --records, --pending and --runs take positive numbers" >&2; exit 2 ;; esac

cd "$(dirname "$0")/.."
bench_workdir
go build -o "$work/iys-sync" ./cmd/iys-sync
go build -o "$work/benchtool" ./scripts/benchtool
bt="$work/benchtool"
bench_server bench-status.sh
db=$("$bt" freshdb -url "$admin" -name iys_bench_status)

"$work/iys-sync" sandbox --addr 127.0.0.1:0 >"$work/sandbox.out" 2>&1 &
pids+=($!)
wait_for "$work/sandbox.out" "listening on" "${pids[-1]}" || { echo "bench-status.sh: the sandbox did not start" >&2; exit 1; }
api=$(sed -n 's/^listening on //p' "$work/sandbox.out" | head -1)
export IYS_DATABASE_URL=$db IYS_API_URL=$api IYS_USERNAME=sandbox IYS_PASSWORD=sandbox IYS_LOG_FORMAT=json
"$work/iys-sync" install --brand-code B --iys-code I --channels MESAJ --skip-verify >/dev/null

# The schedule never fires during the bench (1 January, 03:00).
IYS_METRICS_ADDR=127.0.0.1:0 IYS_SCHEDULE="0 3 1 1 *" "$work/iys-sync" serve 2>"$work/serve.log" &
pids+=($!)
wait_for "$work/serve.log" '"metrics listening"' "${pids[-1]}" || { echo "bench-status.sh: serve did not start /metrics" >&2; exit 1; }
maddr=$(sed -n 's/.*"msg":"metrics listening".*"addr":"\([^"]*\)".*/\1/p' "$work/serve.log" | head -1)

# median_ms CMD...: runs CMD runs+1 times, discards the first, prints the median wall time in ms.
median_ms() {
	local times=() i s e
	for i in $(seq 0 "$runs"); do
		s=$(date +%s%N)
		"$@" >/dev/null
		e=$(date +%s%N)
		[ "$i" -gt 0 ] && times+=($(((e - s) / 1000000)))
	done
	printf '%s\n' "${times[@]}" | sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

machine_line
echo "server:    $server_name, $("$bt" sql -url "$admin" "SELECT split_part(version(), ' ', 1) || ' ' || split_part(version(), ' ', 2)")"
echo "records    status --json (ms)    /metrics (ms)    (median of $runs, pending $pending%)"
have=0 fail=0
for n in ${sizes//,/ }; do
	if [ "$n" -gt "$have" ]; then
		"$bt" sql -url "$db" "INSERT INTO consents (connector_id, recipient, recipient_type, type, status, consent_date, source,
			state, outcome, synced_at)
			SELECT c.id, '+905' || lpad(g::text, 9, '0'), 'BIREYSEL', 'MESAJ', CASE WHEN g % 7 = 0 THEN 'RET' ELSE 'ONAY' END,
			       now() - (g % 864000) * interval '1 second', 'HS_WEB', s.state,
			       CASE s.state WHEN 'synced' THEN 'accepted' WHEN 'rejected' THEN 'invalid' END,
			       CASE s.state WHEN 'synced' THEN now() END
			FROM generate_series($((have + 1)), $n) g
			CROSS JOIN (SELECT id FROM connectors WHERE brand_code = 'B') c
			CROSS JOIN LATERAL (SELECT CASE WHEN g % 100 < $pending THEN 'pending' WHEN g % 100 < $pending + 2 THEN 'rejected'
			                               ELSE 'synced' END AS state) s" \
			"VACUUM ANALYZE consents" >/dev/null
		have=$n
	fi
	st=$(median_ms "$work/iys-sync" status --json)
	mt=$(median_ms curl -sf "http://$maddr/metrics")
	printf '%-10s %-21s %s\n' "$n" "$st" "$mt"
	if [ "$n" -ge 3000000 ]; then
		awk -v s="$st" -v m="$mt" 'BEGIN { exit !(s < 500 && m < 200) }' || fail=1
	fi
done
if [ "$fail" = 1 ]; then
	echo "bench-status.sh: at 3,000,000 records or more, status must answer under 500 ms and /metrics under 200 ms: FAIL"
	exit 1
fi
