# lib.sh: what the benchmark scripts share. Source it, call bench_workdir,
# then set $bt (the built scripts/benchtool) and $server (a database URL, or
# empty for a throwaway cluster) before calling the others.

# usage prints the calling script's header comment: its help.
usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }

# common_arg "$@": the options every benchmark that needs a server takes,
# for the last arm of its argument loop: --server URL, --test-server (the
# URL in $IYS_TEST_DATABASE_URL), -h/--help; anything else is refused. Sets
# $server, and $used to the number of arguments it took:
#
#	*) common_arg "$@"; shift "$used" ;;
common_arg() {
	case "$1" in
	--server) server=${2:?--server takes a database URL}; used=2 ;;
	--test-server)
		server=${IYS_TEST_DATABASE_URL:?--test-server: IYS_TEST_DATABASE_URL is not set}
		used=1 ;;
	-h | --help) usage; exit 0 ;;
	*) echo "$(basename "$0"): unknown argument $1 (try --help)" >&2; exit 2 ;;
	esac
}

# bench_workdir makes $work, a temporary directory, and an empty $pids; on
# exit (or INT/TERM) every process in $pids is stopped and $work removed.
bench_workdir() {
	work=$(mktemp -d)
	pids=()
	trap bench_cleanup EXIT
	trap 'exit 130' INT TERM
}

bench_cleanup() {
	local p
	for p in "${pids[@]}"; do
		stop_pid "$p"
	done
	rm -rf "$work"
}

# stop_pid PID: TERM, then wait for it.
stop_pid() {
	kill -TERM "$1" 2>/dev/null || true
	wait "$1" 2>/dev/null || true
}

# wait_for FILE PATTERN PID: wait up to 60 s until FILE has a line matching
# PATTERN; fail (showing FILE) if PID ends first.
wait_for() {
	for _ in $(seq 600); do
		grep -q "$2" "$1" 2>/dev/null && return 0
		kill -0 "$3" 2>/dev/null || { cat "$1" >&2; return 1; }
		sleep 0.1
	done
	return 1
}

# bench_server NAME starts, unless $server is given, a throwaway cluster in
# the background (stopped on exit with $pids), and sets admin (a URL whose
# user may CREATE DATABASE), server_name and cluster_pid (empty for a given
# server). NAME is the calling script's, for its messages; any further
# arguments go to the cluster (-set NAME=VALUE: a server setting).
bench_server() {
	cluster_pid=""
	if [ -n "$server" ]; then
		admin=$server
		server_name="the given server"
		return
	fi
	"$bt" cluster -url-file "$work/url" "${@:2}" 2>"$work/cluster.err" &
	cluster_pid=$!
	pids+=("$cluster_pid")
	for _ in $(seq 600); do
		[ -s "$work/url" ] && break
		if ! kill -0 "$cluster_pid" 2>/dev/null; then
			cat "$work/cluster.err" >&2
			echo "$1: the throwaway cluster did not start" >&2
			exit 1
		fi
		sleep 0.1
	done
	[ -s "$work/url" ] || { echo "$1: the throwaway cluster did not start in 60 s" >&2; exit 1; }
	admin=$(cat "$work/url")
	server_name="throwaway cluster (fsync off)"
}

# rss_method sets rss_by: GNU time's %M (installed now when root can), or
# VmHWM polled from /proc, which the calling script then does itself.
rss_method() {
	if /usr/bin/time -f %M true >/dev/null 2>&1; then
		rss_by="GNU time %M"
	elif [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 &&
		{ DEBIAN_FRONTEND=noninteractive apt-get install -y -qq time >/dev/null 2>&1 ||
			{ apt-get update -qq >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq time >/dev/null 2>&1; }; } &&
		/usr/bin/time -f %M true >/dev/null 2>&1; then
		rss_by="GNU time %M (installed now)"
	else
		rss_by="VmHWM polled from /proc every 20 ms"
	fi
}

# machine_line prints the machine the figures were measured on.
machine_line() {
	echo "machine:   $(nproc) cores ($(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)), $(awk '/MemTotal/ { printf "%.1f GiB", $2/1048576 }' /proc/meminfo) memory, $(uname -sr)"
}
