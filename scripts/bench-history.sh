#!/usr/bin/env bash
# bench-history.sh: how fast `iys-sync history` answers for one recipient
# when consent_events holds many events: 1,000,000 records of one connector
# with 10 events each (10,000,000 events) by default, written straight by SQL.
#
#   scripts/bench-history.sh [--records N] [--events-per-record N] [--asks N] [--server URL | --test-server]
#
#   --records N            records of the connector (default 1000000)
#   --events-per-record N  events of each (default 10)
#   --asks N               recipients asked, at random (default 20)
#   --server URL           use this server (a database URL whose user may CREATE DATABASE)
#                          instead of a throwaway cluster; it gets a database iys_bench_history
#   --test-server          the same with $IYS_TEST_DATABASE_URL
#
# It prints the query's own time (EXPLAIN ANALYZE's execution time of the
# statement history runs, median and worst over the asks) and the whole
# command's (`iys-sync history --json` as a process: connecting and checking
# the migrations included). The events' hashes are not chained (a fixed
# value): verify is not what is measured.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

records=1000000 per=10 asks=20 server=""
while [ $# -gt 0 ]; do
	case "$1" in
	--records) records=$2; shift 2 ;;
	--events-per-record) per=$2; shift 2 ;;
	--asks) asks=$2; shift 2 ;;
	*) common_arg "$@"; shift "$used" ;;
	esac
done
case "$records$per$asks" in *[!0-9]*) echo "bench-history.sh: the counts take positive numbers" >&2; exit 2 ;; esac

cd "$(dirname "$0")/.."
bench_workdir
go build -o "$work/iys-sync" ./cmd/iys-sync
go build -o "$work/benchtool" ./scripts/benchtool
bt="$work/benchtool"
bench_server bench-history.sh
machine_line
echo "server:    $server_name, $("$bt" sql -url "$admin" "SELECT split_part(version(), ' ', 1) || ' ' || split_part(version(), ' ', 2)")"

now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }

db=$("$bt" freshdb -url "$admin" -name iys_bench_history)
IYS_DATABASE_URL=$db "$work/iys-sync" install --brand-code B --iys-code I --skip-verify >/dev/null
t=$(now)
"$bt" sql -url "$db" \
	"INSERT INTO consents (connector_id, recipient, recipient_type, type, status, consent_date, source, external_id,
	                       event_seq, event_hash, origin)
	 SELECT c.id, '+90533' || lpad(g::text, 7, '0'), 'BIREYSEL', 'MESAJ', 'ONAY', now() - g * interval '1 second',
	        'HS_WEB', 'ext-' || g, $per, '\\x00', 'file:sms.txt:' || g
	 FROM connectors c, generate_series(1, $records) g" \
	"INSERT INTO consent_events (consent_id, seq, at, kind, origin, status, consent_date, source, recipient_type,
	                             external_id, version, state, import_id, request_id, hash)
	 SELECT c.id, s, now() - (($per - s) * interval '1 day'), CASE WHEN s % 2 = 1 THEN 'file' ELSE 'verdict' END,
	        c.origin, c.status, c.consent_date, c.source, c.recipient_type, c.external_id, (s + 1) / 2, 'synced', s,
	        'req-' || s, '\\x00'
	 FROM generate_series(1, $per) s, consents c ORDER BY s, c.id" \
	"ANALYZE consents" "ANALYZE consent_events" >/dev/null
echo "written:   $records records, $("$bt" sql -url "$db" "SELECT count(*) FROM consent_events") events in $(secs "$t" "$(now)") s"

# The statement of store.History, as the server logs it is hard to get: the
# same text, from the store's SQL file.
query=$(awk '/^-- name: EventsOfRecipient/ { on = 1; next } on && /^-- name:/ { exit } on && !/^--/ { print }' \
	internal/store/sql/consent_events.sql | sed 's/;$//')
cols=$(awk '/^type Event struct/ { on = 1; next } on && /^}/ { exit } on { if (match($0, /db:"[a-z_]+"/)) { c = substr($0, RSTART + 4, RLENGTH - 5); s = s (s ? ", " : "") "e." c } } END { print s }' internal/store/events.go)
query=${query//'{{columns "consent_events" "e"}}'/$cols}

q_ms=() cmd_s=()
for ((i = 1; i <= asks; i++)); do
	n=$((RANDOM * 32768 % records + RANDOM % records))
	n=$((n % records + 1))
	r="+90533$(printf '%07d' "$n")"
	conn="(SELECT id FROM connectors WHERE brand_code = 'B')" rq="'$r'" none="''"
	sql=${query//\$1/$conn}
	sql=${sql//\$2/$rq}
	sql=${sql//\$3/$none}
	ms=$("$bt" sql -url "$db" "EXPLAIN (ANALYZE, FORMAT JSON) $sql" | tr -d '\n' | sed -E 's/.*"Execution Time": ([0-9.]+).*/\1/')
	q_ms+=("$ms")
	t=$(now)
	out=$(IYS_DATABASE_URL=$db "$work/iys-sync" history --brand-code B --recipient "$r" --json)
	cmd_s+=("$(secs "$t" "$(now)")")
	got=$(printf '%s' "$out" | grep -o '"kind"' | wc -l)
	if [ "$got" != "$per" ]; then
		echo "bench-history.sh: history of $r told $got events, want $per" >&2
		exit 1
	fi
done
median() { printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
worst() { printf '%s\n' "$@" | sort -g | tail -1; }
echo
echo "asks:             $asks recipients at random, $per events each"
echo "query:            median $(median "${q_ms[@]}") ms, worst $(worst "${q_ms[@]}") ms (EXPLAIN ANALYZE's execution time)"
echo "iys-sync history: median $(median "${cmd_s[@]}") s, worst $(worst "${cmd_s[@]}") s (the whole process)"
