#!/usr/bin/env bash
# bench-growth.sh: growth curves. One connector in one database that grows
# through the sizes given (by default 1M, 3M and 10M records); at each size:
#
#   import  `iys-sync import` of the difference (the lines that bring the
#           connector from the last size to this one, new recipients), a
#           process of its own: wall time, lines/s, its CPU and peak RSS;
#   run     one `iys-sync --run-now` that syncs every record the import
#           added, against the sandbox İYS (`iys-sync sandbox`, another
#           process, one for the whole bench, holding everything sent so far as
#           İYS would) with no rate limit and no latency, so that the run
#           measures our work, not İYS's pace: records/s (the runs table's
#           started_at to finished_at), the process's wall time, and the
#           worker's user+sys CPU seconds -> CPU seconds per million records
#           synced (beside it the sandbox's CPU, and that of the server's
#           backends serving the run, polled from /proc each second when the
#           server runs here: the three share the machine);
#   status  `iys-sync status --json`, wall time of the whole process, median
#           of --runs (one more, first, discarded);
#   report  `iys-sync report --brand-code B` (CSV, every record) to a file
#           under $TMPDIR, wall time, median of --runs; its lines are checked;
#   size    after a VACUUM ANALYZE (autovacuum's work, done now): the
#           pg_total_relation_size (heap, indexes, TOAST) of consents,
#           consent_events (the history), batch_items, changes, and the whole
#           database, each in bytes per record.
#
#   scripts/bench-growth.sh [--sizes "N..."] [--runs N] [--concurrency C] [--run-for D] [--resume N]
#                           [--server URL | --test-server]
#
#   --sizes "N..."     record counts, growing (default "1000000 3000000 10000000")
#   --runs N           timed runs of status and of report at each size (default 3)
#   --concurrency C    IYS_CONCURRENCY of the runs (default 4, the setting's default; IYS_BATCH_SIZE=1000,
#                      IYS_RATE_LIMIT=0). More is slower on a large table: each claim steps over the
#                      records the others hold (SKIP LOCKED), and at 32 the server's backends took
#                      most of the machine's 2 cores (1M records synced at 1,583/s)
#   --run-for D        stop each run after D (`--run-now --max-duration D`, such as 10m): a run
#                      that stops with records left counts those it synced, and status, report
#                      and sizes are then of a database still holding pending records (said so)
#   --resume N         keep the database iys_bench_growth as an earlier run of this script left it,
#                      holding its first N records, all synced (checked), and grow it from there;
#                      its pull cursors are forgotten (the sandbox is a new one), so the first run
#                      does not pull back what the earlier runs sent
#   --db NAME          the database's name (default iys_bench_growth)
#   --server URL       use this server (a database URL whose user may CREATE DATABASE)
#                      instead of a throwaway cluster; it gets the database iys_bench_growth (--db)
#   --test-server      the same with $IYS_TEST_DATABASE_URL
#
# The lines come from scripts/benchtool gen (-start: line i is the same in
# every file, so each size's file holds only new recipients): distinct,
# valid mobile numbers (see benchtool's gen for their order), consent times within the last day,
# two thirds ONAY, one third RET with no earlier record, which İYS refuses
# with H175: every record gets İYS's final word (synced or rejected) either
# way. A VACUUM ANALYZE follows each import (timed, shown) and each run, as
# autovacuum would between an import and the night, and a run and the
# morning. CPU and peak RSS are GNU time's (%U + %S, %M), else the shell's
# `times` for the CPU and no RSS. The generated file (about 60 bytes a line)
# and the report go under $TMPDIR and are deleted. Needs Go, and for the
# throwaway cluster the machine's PostgreSQL binaries. The database is left
# on a given server (drop iys_bench_growth when done); 10M records take some
# 10 GB there.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

sizes="1000000 3000000 10000000" runs=3 conc=4 run_for="" resume=0 dbname=iys_bench_growth server=""
while [ $# -gt 0 ]; do
	case "$1" in
	--sizes) sizes=$2; shift 2 ;;
	--runs) runs=$2; shift 2 ;;
	--concurrency) conc=$2; shift 2 ;;
	--run-for) run_for=$2; shift 2 ;;
	--resume) resume=$2; shift 2 ;;
	--db) dbname=$2; shift 2 ;;
	*) common_arg "$@"; shift "$used" ;;
	esac
done
last=$resume
for v in $sizes $runs $conc $resume; do
	case "$v" in '' | *[!0-9]*) echo "bench-growth.sh: --sizes, --runs and --concurrency take positive whole numbers" >&2; exit 2 ;; esac
	[ "$v" -ge 1 ] || [ "$v" = "$resume" ] || { echo "bench-growth.sh: $v: want 1 or more" >&2; exit 2; }
done
case "$dbname" in '' | *[!a-z0-9_]*) echo "bench-growth.sh: --db takes a name of lower-case letters, digits and _" >&2; exit 2 ;; esac
for n in $sizes; do
	[ "$n" -gt "$last" ] || { echo "bench-growth.sh: --sizes must grow, from --resume's" >&2; exit 2; }
	last=$n
done

cd "$(dirname "$0")/.."
bench_workdir

go build -o "$work/iys-sync" ./cmd/iys-sync
go build -o "$work/benchtool" ./scripts/benchtool
go build -o "$work/benchsync" ./scripts/benchsync
bin=$work/iys-sync bt=$work/benchtool bs=$work/benchsync

rss_method
gnu_time=0
[ "${rss_by#GNU}" != "$rss_by" ] && gnu_time=1

bench_server bench-growth.sh
if [ "$resume" = 0 ]; then
	db=$("$bt" freshdb -url "$admin" -name "$dbname")
else
	db=$(echo "$admin" | sed "s#^\([a-z]*://[^/]*\)/[^?]*#\1/$dbname#")
	got=$("$bt" sql -url "$db" "SELECT count(*) || ' ' || count(*) FILTER (WHERE state NOT IN ('synced', 'rejected')) FROM consents")
	[ "$got" = "$resume 0" ] || { echo "bench-growth.sh: --resume $resume: $dbname holds $got (records, not synced)" >&2; exit 1; }
	"$bt" sql -url "$db" "DELETE FROM pull_cursors" >/dev/null
fi

now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }
per_m() { awk -v c="$1" -v n="$2" 'BEGIN { printf "%.1f", c * 1e6 / n }'; }
rate_of() { awk -v n="$1" -v s="$2" 'BEGIN { printf "%.0f", n / s }'; }
mb() { awk -v k="$1" 'BEGIN { if (k == "n/a") print k; else printf "%.1f", k / 1024 }'; }
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# children_cpu: the user+sys seconds of this shell's waited-for children so far
# (bash's `times`, second line: 0m1.234s 0m0.567s).
children_cpu() {
	times | awk 'NR == 2 {
		t = 0
		for (i = 1; i <= 2; i++) { split($i, a, "m"); sub("s", "", a[2]); t += a[1] * 60 + a[2] }
		printf "%.2f", t }'
}

# pid_cpu PID: user+sys seconds of a running process, from /proc.
pid_cpu() {
	awk -v hz="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); printf "%.2f", ($12 + $13) / hz }' "/proc/$1/stat"
}

# pg_cpu_start / pg_cpu_stop: the CPU of the server's backends of the bench's
# database (the run's sessions: children of the server's postmaster, found
# as the checkpointer's parent), polled from /proc every second while a
# command runs; pg_cpu_stop sets pg_cpu (seconds: each backend's last reading,
# so a backend's last second may be missed) or n/a when the server's
# processes cannot be read (a server on another machine).
pg_cpu_start() {
	local ckpt postmaster=""
	ckpt=$("$bt" sql -url "$db" "SELECT pid FROM pg_stat_activity WHERE backend_type = 'checkpointer'" 2>/dev/null || true)
	[ -n "$ckpt" ] && postmaster=$(awk '/^PPid:/ { print $2 }' "/proc/$ckpt/status" 2>/dev/null || true)
	(
		[ -n "$postmaster" ] || exit 0
		while :; do
			for p in $(pgrep -P "$postmaster" -f "$dbname " || true); do
				awk -v p="$p" '{ sub(/^.*\) /, ""); print p, $12 + $13 }' "/proc/$p/stat" 2>/dev/null || true
			done
			sleep 1
		done
	) >"$work/pgcpu" &
	pg_cpu_pid=$!
	pids+=("$pg_cpu_pid")
}
pg_cpu_stop() {
	stop_pid "$pg_cpu_pid"
	pg_cpu=$(awk -v hz="$(getconf CLK_TCK)" '{ t[$1] = $2 } END { for (p in t) s += t[p]; if (length(t)) printf "%.2f", s / hz; else print "n/a" }' "$work/pgcpu")
}

# timed NAME CMD...: runs CMD (environment from $envs) with stdout to
# $work/NAME.out and stderr to $work/NAME.err; sets t_wall, t_cpu (user+sys)
# and t_rss (KiB, or n/a); fails the bench, showing CMD's output, if CMD fails
# (exits other than 0 or $ok_rc).
ok_rc=0
timed() {
	local name=$1 rc=0 t0 t1 c0 c1
	shift
	t0=$(now)
	if [ "$gnu_time" = 1 ]; then
		env "${envs[@]}" /usr/bin/time -f '%U %S %M' -o "$work/time.out" "$@" >"$work/$name.out" 2>"$work/$name.err" || rc=$?
		t1=$(now)
		read -r u s t_rss < <(tail -1 "$work/time.out") # after "Command exited with non-zero status N"
		t_cpu=$(awk -v u="$u" -v s="$s" 'BEGIN { printf "%.2f", u + s }')
	else
		c0=$(children_cpu)
		env "${envs[@]}" "$@" >"$work/$name.out" 2>"$work/$name.err" || rc=$?
		t1=$(now)
		c1=$(children_cpu)
		t_cpu=$(awk -v a="$c0" -v b="$c1" 'BEGIN { printf "%.2f", b - a }')
		t_rss=n/a
	fi
	if [ "$rc" != 0 ] && [ "$rc" != "$ok_rc" ]; then
		echo "bench-growth.sh: $name exited $rc:" >&2
		tail -20 "$work/$name.out" "$work/$name.err" >&2
		exit 1
	fi
	t_wall=$(secs "$t0" "$t1")
}

# wall_ms CMD...: the wall time of CMD in ms (stdout to $work/wall.out).
wall_ms() {
	local s e
	s=$(date +%s%N)
	env "${envs[@]}" "$@" >"$work/wall.out"
	e=$(date +%s%N)
	echo $(((e - s) / 1000000))
}

machine_line
echo "server:    $server_name, $("$bt" sql -url "$admin" "SELECT split_part(version(), ' ', 1) || ' ' || split_part(version(), ' ', 2)"), shared_buffers $("$bt" sql -url "$admin" "SHOW shared_buffers")"
echo "go:        $(go env GOVERSION)"
echo "CPU, RSS:  $([ "$gnu_time" = 1 ] && echo "GNU time %U+%S, %M" || echo "the shell's times (no RSS)")"
echo "disk:      $(df -h "$work" | awk 'NR == 2 { print $4 " free under " $6 }') (\$TMPDIR: $work)"
echo "load:      $(cut -d' ' -f1-3 /proc/loadavg) (1, 5, 15 min) at the start"
echo

"$bin" sandbox --addr 127.0.0.1:0 --username bench --password bench-pass --seed 1 >"$work/sandbox.out" 2>"$work/sandbox.err" &
sandbox_pid=$!
pids+=("$sandbox_pid")
wait_for "$work/sandbox.out" '^listening on ' "$sandbox_pid" || { echo "bench-growth.sh: the sandbox did not start" >&2; exit 1; }
api=$(sed -n 's/^listening on //p' "$work/sandbox.out" | head -1)

envs=(IYS_DATABASE_URL="$db" IYS_API_URL="$api" IYS_USERNAME=bench IYS_PASSWORD=bench-pass
	IYS_BATCH_SIZE=1000 IYS_CONCURRENCY="$conc" IYS_RATE_LIMIT=0 IYS_LOG_LEVEL=warn)
[ "$resume" != 0 ] || env "${envs[@]}" "$bin" install --brand-code B --iys-code 700001 --channels MESAJ --skip-verify >/dev/null
run_args=(--run-now)
[ -z "$run_for" ] || run_args+=(--max-duration "$run_for")

size_q="SELECT concat_ws(' ',
	pg_total_relation_size('consents'), pg_total_relation_size('consent_events'),
	pg_total_relation_size('batch_items'), pg_total_relation_size('changes'), pg_database_size(current_database()),
	pg_indexes_size('consents'), pg_indexes_size('consent_events'), (SELECT count(*) FROM consent_events))"
kinds_q="SELECT string_agg(kind || ' ' || n, ', ' ORDER BY kind) FROM (SELECT kind, count(*) AS n FROM consent_events GROUP BY kind) k"

rows=()
have=$resume
for n in $sizes; do
	add=$((n - have))
	echo "== $n records: $add new lines on $have (load $(cut -d' ' -f1-3 /proc/loadavg))"

	t=$(now)
	"$bt" gen -start "$have" -rows "$add" -upload "$work/sms.txt"
	echo "  generated $add lines, $(du -m "$work/sms.txt" | cut -f1) MB, in $(secs "$t" "$(now)") s"
	"$bt" sql -url "$db" CHECKPOINT >/dev/null 2>&1 || true # a superuser's; best effort

	timed import "$bin" import --brand-code B --channel sms "$work/sms.txt"
	grep -q " $add imported\$" "$work/import.out" || { cat "$work/import.out" >&2; echo "bench-growth.sh: the import did not store $add lines" >&2; exit 1; }
	rm -f "$work/sms.txt"
	imp_s=$t_wall imp_cpu=$t_cpu
	echo "  import:  $imp_s s -> $(rate_of "$add" "$imp_s") lines/s; CPU $imp_cpu s ($(per_m "$imp_cpu" "$add") s a million); peak RSS $(mb "$t_rss") MB"
	t=$(now)
	"$bt" sql -url "$db" "VACUUM ANALYZE consents" "VACUUM ANALYZE consent_events" >/dev/null
	echo "  vacuum:  $(secs "$t" "$(now)") s (VACUUM ANALYZE consents, consent_events; not counted)"

	sb0=$(pid_cpu "$sandbox_pid")
	pg_cpu_start
	[ -z "$run_for" ] || ok_rc=3 # --max-duration reached: work remains
	timed run "$bin" "${run_args[@]}"
	ok_rc=0
	pg_cpu_stop
	sb1=$(pid_cpu "$sandbox_pid")
	run_wall=$t_wall run_cpu=$t_cpu run_rss=$t_rss
	"$bs" figures -url "$db" -api "$api" >"$work/figures"
	while IFS='=' read -r k v; do printf -v "fig_$k" '%s' "$v"; done <"$work/figures"
	synced=$((fig_done - have))
	if [ "$fig_run_status" = running ]; then
		echo "  (the run's end was not recorded: its row is still 'running'; its time is taken to its last batch's end)"
	fi
	if [ "$fig_records" != "$n" ] || [ $((fig_done + fig_left)) != "$n" ] || { [ -z "$run_for" ] && [ "$fig_left" != 0 ]; }; then
		echo "bench-growth.sh: after the run: $fig_records records, $fig_done with İYS's word, $fig_left left; want $n, $n, 0" >&2
		exit 1
	fi
	if [ "$fig_left" != 0 ]; then
		echo "  (the run stopped after --run-for $run_for: $synced of the $add new records synced, $fig_left left pending)"
	fi
	sb_cpu=$(awk -v a="$sb0" -v b="$sb1" 'BEGIN { printf "%.2f", b - a }')
	cpu_m=$(per_m "$run_cpu" "$synced")
	pull_s=$("$bt" sql -url "$db" "SELECT round(extract(epoch FROM (SELECT min(created_at) FROM batches WHERE run_id = r.id) - r.started_at)::numeric, 1)
		FROM runs r ORDER BY id DESC LIMIT 1")
	pg_m=n/a
	[ "$pg_cpu" = n/a ] || pg_m=$(per_m "$pg_cpu" "$synced")
	echo "  run:     $synced records in ${fig_run_s} s -> $(rate_of "$synced" "$fig_run_s") records/s ($fig_batches bulk requests; process $run_wall s; $pull_s s before the first claim: the pull of İYS's changes, which hold what the last run sent);" \
		"worker CPU $run_cpu s = $cpu_m s a million; peak RSS $(mb "$run_rss") MB; sandbox CPU $sb_cpu s ($(per_m "$sb_cpu" "$synced") s a million);" \
		"PostgreSQL's backends of the run ≈ $pg_cpu s CPU ($pg_m s a million)"
	"$bt" sql -url "$db" "VACUUM ANALYZE consents" "VACUUM ANALYZE consent_events" "VACUUM ANALYZE batch_items" "VACUUM ANALYZE changes" >/dev/null

	st=()
	for i in $(seq 0 "$runs"); do
		v=$(wall_ms "$bin" status --json)
		[ "$i" -gt 0 ] && st+=("$v")
	done
	st_ms=$(median "${st[@]}")
	echo "  status:  $st_ms ms median (${st[*]} ms; the first run, discarded, not shown)"

	rp=()
	for i in $(seq "$runs"); do
		v=$(wall_ms "$bin" report --brand-code B)
		lines=$(wc -l <"$work/wall.out")
		[ "$lines" = $((n + 1)) ] || { echo "bench-growth.sh: the report has $lines lines, want $((n + 1))" >&2; exit 1; }
		rp_mb=$(du -m "$work/wall.out" | cut -f1)
		rm -f "$work/wall.out"
		rp+=("$(awk -v m="$v" 'BEGIN { printf "%.2f", m / 1000 }')")
	done
	rp_s=$(median "${rp[@]}")
	echo "  report:  $rp_s s median (${rp[*]} s) for $((n + 1)) lines, $rp_mb MB of CSV -> $(rate_of "$n" "$rp_s") records/s"

	read -r c_b e_b bi_b ch_b db_b ci_b ei_b events <<<"$("$bt" sql -url "$db" "$size_q")"
	bpr() { awk -v b="$1" -v n="$n" 'BEGIN { printf "%.0f", b / n }'; }
	echo "  events:  $("$bt" sql -url "$db" "$kinds_q")"
	echo "  size:    consents $(bpr "$c_b") B/record (indexes $(bpr "$ci_b")), consent_events $(bpr "$e_b") B/record" \
		"(indexes $(bpr "$ei_b"); $events events, $(awk -v e="$events" -v n="$n" 'BEGIN { printf "%.2f", e / n }') a record)," \
		"batch_items $(bpr "$bi_b"), changes $(bpr "$ch_b"); database $(bpr "$db_b") B/record, $(awk -v b="$db_b" 'BEGIN { printf "%.2f", b / 2^30 }') GiB" \
		"-> $(awk -v b="$db_b" -v n="$n" 'BEGIN { printf "%.0f", n / (b / 2^30) }') records per GiB"
	echo
	rows+=("| $n | $add: $imp_s s, $(rate_of "$add" "$imp_s")/s | $synced: $fig_run_s s, $(rate_of "$synced" "$fig_run_s")/s | $cpu_m (PostgreSQL ≈ $pg_m) | $st_ms | $rp_s | $(bpr "$c_b") + $(bpr "$e_b") + $(bpr "$bi_b") + $(bpr "$ch_b"); db $(bpr "$db_b") |")
	have=$n
done

echo "load:      $(cut -d' ' -f1-3 /proc/loadavg) (1, 5, 15 min) at the end"
echo
echo "| records | import: lines, s, lines/s | run: records, s, records/s | worker CPU s a million synced (PostgreSQL's backends) | status ms | report s | bytes a record: consents + events + batch_items + changes; database |"
echo "|---|---|---|---|---|---|---|"
printf '%s\n' "${rows[@]}"
