# lib.sh: what the benchmark scripts share. Source it, then set $work (a
# temporary directory), $bt (the built scripts/benchtool) and $server (a
# database URL, or empty for a throwaway cluster) before calling these.

# bench_server NAME starts, unless $server is given, a throwaway cluster in
# the background, and sets admin (a URL whose user may CREATE DATABASE),
# server_name and cluster_pid (empty for a given server). NAME is the
# calling script's, for its messages.
bench_server() {
	cluster_pid=""
	if [ -n "$server" ]; then
		admin=$server
		server_name="the given server"
		return
	fi
	"$bt" cluster -url-file "$work/url" 2>"$work/cluster.err" &
	cluster_pid=$!
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
