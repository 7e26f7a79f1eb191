#!/usr/bin/env bash
# bench-import-cli.sh: time the whole import path, `iys-sync import` of an SMS
# upload file run end to end as a process, against two bare COPYs of the same
# rows (already parsed: COPY input generated alongside the file), in the same
# run: into a table with consents' columns, checks and indexes (not its
# triggers: the counts, the changes feed), and into a table that holds only
# the key's unique index, the physical bound. It checks the targets: the
# import takes at most 2x the first, and the iys-sync process peaks under
# 100 MB of memory.
#
#   scripts/bench-import-cli.sh [--rows N] [--rounds N] [--shuffle] [--merge] [--baseline BIN] [--server URL | --test-server]
#
#   --rows N       lines of the generated file (default 1000000)
#   --rounds N     rounds of the three, in a rotating order; the first is discarded (a warm-up)
#                  and the medians of the others count (default 6: medians of 5)
#   --shuffle      the same lines in a random order (see below)
#   --merge        the connector already holds a record (another recipient's), so the file is not
#                  its first: it goes through the temporary table and the merge, as every later file
#   --baseline BIN an earlier build of iys-sync: each round also imports the file with it, just
#                  before or after this build's import (the order alternates), for a before/after
#                  figure from the same minutes
#   --server URL   use this server (a database URL whose user may CREATE DATABASE)
#                  instead of a throwaway cluster; it gets databases iys_bench_bare and iys_bench_import
#   --test-server  the same with $IYS_TEST_DATABASE_URL
#
# The file: distinct, valid Türkiye mobile numbers, consent times within the
# last day (Türkiye time), four platforms, ONAY and RET, external ids. In the
# generated order, the phones rise in 8 interleaved runs and the times fall
# in runs of 2,324 lines: the bare COPY's index inserts each land next to the
# one before, which a file exported in no particular order does not give it.
# --shuffle puts the same lines in a random order (a fixed seed); the import
# sorts by key either way. Each import goes into a fresh database with an installed
# connector. The bare COPY is timed from BEGIN to the end of COMMIT by a small
# Go program (scripts/benchtool) that streams that input untouched through
# lib/pq, in COPY's text format as the importer's own COPY (CSV is ~4% slower);
# the import is timed from exec to exit. Peak RSS is that of the iys-sync
# process alone (GNU time's %M, else VmHWM polled from /proc), never the
# server's. Needs Go and the machine's PostgreSQL binaries (initdb, postgres)
# for the throwaway cluster; generated files go under $TMPDIR (about 140 bytes
# a line). Exits 1 when a target is missed.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

rows=1000000 rounds=6 server="" baseline="" shuffle="" merge=""
while [ $# -gt 0 ]; do
	case "$1" in
	--rows) rows=$2; shift 2 ;;
	--rounds) rounds=$2; shift 2 ;;
	--shuffle) shuffle=-shuffle; shift ;;
	--merge) merge=1; shift ;;
	--baseline) baseline=$(realpath "$2"); shift 2 ;;
	*) common_arg "$@"; shift "$used" ;;
	esac
done
case "$rows$rounds" in *[!0-9]*) echo "bench-import-cli.sh: --rows and --rounds take positive numbers" >&2; exit 2 ;; esac
if [ "$rows" -lt 1 ] || [ "$rounds" -lt 2 ]; then
	echo "bench-import-cli.sh: --rows takes a positive number, --rounds 2 or more (the first is discarded)" >&2
	exit 2
fi

cd "$(dirname "$0")/.."
bench_workdir

go build -o "$work/iys-sync" ./cmd/iys-sync
go build -o "$work/benchtool" ./scripts/benchtool
bt="$work/benchtool"

rss_method

bench_server bench-import-cli.sh

now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }

machine_line
echo "server:    $server_name, $("$bt" sql -url "$admin" "SELECT split_part(version(), ' ', 1) || ' ' || split_part(version(), ' ', 2)")"
echo "go:        $(go env GOVERSION)"
echo "peak RSS:  $rss_by"

t=$(now)
"$bt" gen -rows "$rows" $shuffle -upload "$work/sms.txt" -copy "$work/bare.tsv"
echo "generated: $rows lines${shuffle:+ in a random order}, $(du -m "$work/sms.txt" | cut -f1) MB upload file and $(du -m "$work/bare.tsv" | cut -f1) MB COPY input in $(secs "$t" "$(now)") s"
# --merge: one line of a recipient the file does not hold, imported before the file.
if [ -n "$merge" ]; then
	TZ=Europe/Istanbul date -d '-1 hour' +'905999999999; SMS; ONAY; %d.%m.%Y %H:%M:%S; bench-seed' >"$work/seed.txt"
fi

# The bare COPY's database: the schema comes from install, as the import's.
bare_db=$("$bt" freshdb -url "$admin" -name iys_bench_bare)
IYS_DATABASE_URL=$bare_db "$work/iys-sync" install --brand-code B --iys-code I --skip-verify >/dev/null

bare_s=() key_s=() import_s=() import_cpu=() rss_kb=() base_s=()

run_bare() {
	local s
	s=$("$bt" copy -url "$bare_db" -copy "$work/bare.tsv")
	bare_s+=("$s")
}

run_key() {
	local s
	s=$("$bt" copy -url "$bare_db" -copy "$work/bare.tsv" -key-only)
	key_s+=("$s")
}

# import_ok RC WHAT: the import exited 0 and imported every line, or the script fails showing its output.
import_ok() {
	if [ "$1" != 0 ] || ! grep -q " $rows imported\$" "$work/import.out"; then
		echo "bench-import-cli.sh: $2 failed (exit $1):" >&2
		cat "$work/import.out" "$work/import.err" >&2
		exit 1
	fi
}

# run_import [BIN]: this build's import, or with BIN the baseline's (its time alone is kept).
run_import() {
	local db t0 t1 rc=0 hwm=0 v pid exe=${1:-$work/iys-sync}
	db=$("$bt" freshdb -url "$admin" -name iys_bench_import)
	IYS_DATABASE_URL=$db "$exe" install --brand-code B --iys-code I --skip-verify >/dev/null
	if [ -n "$merge" ]; then
		IYS_DATABASE_URL=$db "$exe" import --brand-code B --channel sms "$work/seed.txt" >/dev/null
	fi
	"$bt" sql -url "$db" CHECKPOINT >/dev/null 2>&1 || true # a superuser's; best effort
	if [ -n "${1:-}" ]; then
		t0=$(now)
		IYS_DATABASE_URL=$db "$exe" import --brand-code B --channel sms "$work/sms.txt" >"$work/import.out" 2>"$work/import.err" || rc=$?
		t1=$(now)
		import_ok "$rc" "the baseline's import"
		base_s+=("$(secs "$t0" "$t1")")
		return
	fi
	import_db=$db
	if [ "${rss_by#GNU}" != "$rss_by" ]; then
		t0=$(now)
		IYS_DATABASE_URL=$db /usr/bin/time -f '%M %U %S' -o "$work/time.out" \
			"$work/iys-sync" import --brand-code B --channel sms "$work/sms.txt" >"$work/import.out" 2>"$work/import.err" || rc=$?
		t1=$(now)
		read -r hwm user sys <"$work/time.out"
		import_cpu+=("$(awk -v u="$user" -v s="$sys" 'BEGIN { printf "%.2f", u + s }')")
	else
		t0=$(now)
		IYS_DATABASE_URL=$db "$work/iys-sync" import --brand-code B --channel sms "$work/sms.txt" >"$work/import.out" 2>"$work/import.err" &
		pid=$!
		while kill -0 "$pid" 2>/dev/null; do
			v=$(awk '/^VmHWM:/ { print $2 }' "/proc/$pid/status" 2>/dev/null || true)
			[ -n "$v" ] && hwm=$v
			sleep 0.02
		done
		wait "$pid" || rc=$?
		t1=$(now)
		import_cpu+=("n/a")
	fi
	import_ok "$rc" "the import"
	import_s+=("$(secs "$t0" "$t1")")
	rss_kb+=("$hwm")
}

# The bare table of the same schema is made last in each round, so that the
# check below compares it with the import.
for ((r = 1; r <= rounds; r++)); do
	# The baseline goes first in even rounds, last in odd ones.
	if [ -n "$baseline" ] && ((r % 2 == 0)); then run_import "$baseline"; fi
	case $((r % 3)) in
	1) run_key; run_bare; run_import ;;
	2) run_import; run_key; run_bare ;;
	0) run_key; run_import; run_bare ;;
	esac
	if [ -n "$baseline" ] && ((r % 2 == 1)); then run_import "$baseline"; fi
	echo "round $r:   bare COPY ${bare_s[r - 1]} s, key-only COPY ${key_s[r - 1]} s, import ${import_s[r - 1]} s (CPU of iys-sync: ${import_cpu[r - 1]} s), peak RSS $(awk -v k="${rss_kb[r - 1]}" 'BEGIN { printf "%.1f", k / 1024 }') MB$([ -n "$baseline" ] && echo ", baseline's import ${base_s[r - 1]} s")$([ "$r" = 1 ] && echo ' (discarded)')"
done

# The yardstick must hold what the import stored, or the comparison is moot.
same_q="SELECT md5(string_agg(concat_ws(',', recipient, recipient_type, type, status, extract(epoch FROM consent_date)::bigint, source, external_id), '|' ORDER BY recipient, type)) FROM (SELECT * FROM %s WHERE external_id <> 'bench-seed') t"
# shellcheck disable=SC2059 # same_q is the format
if [ "$("$bt" sql -url "$bare_db" "$(printf "$same_q" bare)")" != "$("$bt" sql -url "$import_db" "$(printf "$same_q" consents)")" ]; then
	echo "bench-import-cli.sh: the bare table and the imported consents differ: the COPY input does not match the upload file" >&2
	exit 1
fi

# median of the rounds after the first.
median() { shift; printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
worst() { printf '%s\n' "$@" | sort -g | tail -1; }
b=$(median "${bare_s[@]}") k=$(median "${key_s[@]}") i=$(median "${import_s[@]}")
ratio=$(awk -v i="$i" -v b="$b" 'BEGIN { printf "%.2f", i / b }')
key_ratio=$(awk -v i="$i" -v k="$k" 'BEGIN { printf "%.2f", i / k }')
rss_mb=$(awk -v k="$(worst "${rss_kb[@]}")" 'BEGIN { printf "%.1f", k / 1024 }')
verdict() { if awk "BEGIN { exit !($1) }"; then echo PASS; else echo FAIL; fi; }
ratio_ok=$(verdict "$ratio <= 2.0") rss_ok=$(verdict "$rss_mb < 100")

echo
echo "rows:            $rows (medians of rounds 2 to $rounds; the bare table and consents hold the same rows)$([ -n "$merge" ] && echo '; merged into a connector that held a record')"
echo "bare COPY:       $b s (same schema); key-only COPY: $k s"
echo "iys-sync import: $i s"
echo "ratio:           $ratio against the same schema (target <= 2.0): $ratio_ok (<= 1.5: $(verdict "$ratio <= 1.5")); $key_ratio against the key only"
echo "peak RSS:        $rss_mb MB, the highest of the rounds (target < 100): $rss_ok"
if [ -n "$baseline" ]; then
	bl=$(median "${base_s[@]}")
	echo "baseline:        $baseline: import $bl s, $(awk -v i="$bl" -v b="$b" 'BEGIN { printf "%.2f", i / b }') against the same schema"
fi
[ "$ratio_ok" = PASS ] && [ "$rss_ok" = PASS ]
