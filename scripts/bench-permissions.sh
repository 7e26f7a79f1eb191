#!/usr/bin/env bash
# bench-permissions.sh: measure the permission check end to end: the real
# `iys-sync serve` with IYS_INTAKE_ADDR, over 10,000,000 records of one
# connector, asked by scripts/benchpermissions one recipient a request and
# in batches of 10,000. Targets: a single check under 5 ms at p99, and at
# least 50,000 recipients/s in batches.
#
#   scripts/bench-permissions.sh [--records N] [--runs N] [--singles N] [--single-clients N]
#                                [--batches N] [--batch-clients N] [--shared-buffers SIZE]
#                                [--server URL | --test-server]
#
#   --records N         records loaded (default 10000000)
#   --runs N            runs of both measures over the same load (default 5); figures are their medians
#   --singles N         single checks a run (default 20000)
#   --single-clients N  single checks in flight at once (default 1)
#   --batches N         batch checks of 10,000 recipients a run (default 50)
#   --batch-clients N   batch checks in flight at once (default 2)
#   --shared-buffers S  the throwaway cluster's shared_buffers (default 3GB: the 10,000,000 records and
#                       their key index, 2.5 GB, fit, as they would on a server sized for them)
#   --server URL        use this server (a database URL whose user may CREATE DATABASE) instead of
#                       a throwaway cluster; it gets the database iys_bench_permissions, dropped at the end
#   --test-server       the same with $IYS_TEST_DATABASE_URL
#
# The records are loaded once, straight into consents by INSERT ... SELECT
# FROM generate_series (not through the importer), then vacuumed and
# analysed, and read into shared buffers (pg_prewarm, when the server has
# it): recipient i is +905 and i in 9 digits, MESAJ; one in ten a RET
# pulled from İYS, one in ten an ONAY still pending, the rest ONAYs synced.
# The connector is paused, so that serve never sends the pending ones to
# the sandbox (`iys-sync sandbox`) it is given as İYS. Every answer is
# checked against the records; a tenth of the recipients asked are not held.
# About 3 GB of disk for 10,000,000 records. Needs Go and the machine's
# PostgreSQL binaries (initdb, postgres). Exits 1 when a target is missed or
# an answer is wrong.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

records=10000000 runs=5 singles=20000 single_clients=1 batches=50 batch_clients=2 shared_buffers=3GB server=""
while [ $# -gt 0 ]; do
	case "$1" in
	--records) records=$2; shift 2 ;;
	--runs) runs=$2; shift 2 ;;
	--singles) singles=$2; shift 2 ;;
	--single-clients) single_clients=$2; shift 2 ;;
	--batches) batches=$2; shift 2 ;;
	--batch-clients) batch_clients=$2; shift 2 ;;
	--shared-buffers) shared_buffers=$2; shift 2 ;;
	*) common_arg "$@"; shift "$used" ;;
	esac
done
case "$records$runs$singles$single_clients$batches$batch_clients" in
*[!0-9]*) echo "bench-permissions.sh: the counts take positive numbers" >&2; exit 2 ;;
esac

cd "$(dirname "$0")/.."
bench_workdir

go build -o "$work/iys-sync" ./cmd/iys-sync
go build -o "$work/benchtool" ./scripts/benchtool
go build -o "$work/benchpermissions" ./scripts/benchpermissions
bt="$work/benchtool"

bench_server bench-permissions.sh -set "shared_buffers=$shared_buffers"
[ -n "$server" ] || server_name="$server_name, shared_buffers $shared_buffers"
db=$("$bt" freshdb -url "$admin" -name iys_bench_permissions)
if [ -n "$server" ]; then
	# A given server keeps what it is given: drop the 10,000,000 records at the end.
	drop_db() { "$bt" sql -url "$admin" "DROP DATABASE IF EXISTS iys_bench_permissions WITH (FORCE)" || true; }
	trap 'drop_db; bench_cleanup' EXIT
fi

# The sandbox stands in for İYS: serve needs an API to start; the check never calls it.
"$work/iys-sync" sandbox --addr 127.0.0.1:0 >"$work/sandbox.out" 2>&1 &
pids+=($!)
wait_for "$work/sandbox.out" "listening on" "${pids[-1]}" || { echo "bench-permissions.sh: the sandbox did not start" >&2; exit 1; }
api=$(sed -n 's/^listening on //p' "$work/sandbox.out" | head -1)

export IYS_DATABASE_URL=$db IYS_API_URL=$api IYS_USERNAME=sandbox IYS_PASSWORD=sandbox IYS_LOG_FORMAT=json
"$work/iys-sync" install --brand-code B --iys-code I --channels MESAJ --skip-verify >/dev/null

echo "loading:   $records records..." >&2
load_start=$(date +%s)
"$bt" sql -url "$db" "UPDATE connectors SET state = 'paused' WHERE brand_code = 'B'" \
	"INSERT INTO consents (connector_id, recipient, recipient_type, type, status, consent_date, source,
	                       state, outcome, synced_at)
	 SELECT k.id, '+905' || lpad(i::text, 9, '0'), 'BIREYSEL', 'MESAJ',
	        CASE WHEN i % 10 = 0 THEN 'RET' ELSE 'ONAY' END,
	        timestamptz '2025-01-01 00:00:00+03' + (i % 86400) * interval '1 second',
	        CASE WHEN i % 10 = 0 THEN 'IYS_MOBIL' ELSE 'HS_WEB' END,
	        CASE WHEN i % 10 = 1 THEN 'pending' ELSE 'synced' END,
	        CASE WHEN i % 10 = 0 THEN 'from_iys' WHEN i % 10 = 1 THEN NULL ELSE 'accepted' END,
	        CASE WHEN i % 10 = 1 THEN NULL ELSE now() END
	 FROM connectors k, generate_series(0, $records - 1) AS i
	 WHERE k.brand_code = 'B'" \
	"VACUUM (ANALYZE) consents"
if "$bt" sql -url "$db" "CREATE EXTENSION IF NOT EXISTS pg_prewarm" 2>/dev/null; then
	"$bt" sql -url "$db" "SELECT pg_prewarm('consents')" "SELECT pg_prewarm('consents_key')" >/dev/null
	prewarmed="read into shared buffers"
else
	prewarmed="not prewarmed (no pg_prewarm)"
fi
echo "loaded:    $records records in $(($(date +%s) - load_start)) s, $("$bt" sql -url "$db" "SELECT pg_size_pretty(pg_total_relation_size('consents'))") with indexes, $prewarmed" >&2

token=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
hash=$(printf %s "$token" | sha256sum | cut -d' ' -f1)
IYS_INTAKE_ADDR=127.0.0.1:0 IYS_INTAKE_TOKENS="bench:$hash:B" "$work/iys-sync" serve 2>"$work/serve.log" &
pids+=($!)
wait_for "$work/serve.log" '"intake listening"' "${pids[-1]}" || { echo "bench-permissions.sh: serve did not start the intake" >&2; exit 1; }
addr=$(sed -n 's/.*"msg":"intake listening".*"addr":"\([^"]*\)".*/\1/p' "$work/serve.log" | head -1)

machine_line
echo "server:    $server_name, $("$bt" sql -url "$admin" "SELECT split_part(version(), ' ', 1) || ' ' || split_part(version(), ' ', 2)"), on the same machine"
echo "go:        $(go env GOVERSION)"
BENCH_TOKEN=$token "$work/benchpermissions" -url "http://$addr" -brand B -records "$records" -runs "$runs" \
	-singles "$singles" -single-clients "$single_clients" -batches "$batches" -batch-clients "$batch_clients" | tee "$work/bench.out"

if grep -qF "$token" "$work/serve.log"; then
	echo "bench-permissions.sh: serve's log holds the token" >&2
	exit 1
fi
read -r p50 p99 rate <<<"$(sed -n 's/^RESULT //p' "$work/bench.out")"
fail=0
if awk -v v="$p99" 'BEGIN { exit !(v < 5) }'; then
	echo "single check: p99 $p99 ms, p50 $p50 ms (target p99 < 5 ms): PASS"
else
	echo "single check: p99 $p99 ms, p50 $p50 ms (target p99 < 5 ms): FAIL"
	fail=1
fi
if awk -v r="$rate" 'BEGIN { exit !(r >= 50000) }'; then
	echo "batch check: $rate recipients/s (target >= 50000): PASS"
else
	echo "batch check: $rate recipients/s (target >= 50000): FAIL"
	fail=1
fi
exit $fail
