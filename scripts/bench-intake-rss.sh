#!/usr/bin/env bash
# bench-intake-rss.sh: measure the HTTP intake's peak memory under the
# largest load it takes: the real `iys-sync serve` with IYS_INTAKE_ADDR, over
# a throwaway PostgreSQL cluster, sent 12 requests at once of the largest
# body (10,000 items, just under 16 MiB), 3 rounds of valid items (stored)
# and 3 of refused items with long recipients (held until the answer). The
# intake reads a body only once it has one of its 4 slots, so at most 4
# bodies are in memory; the others wait (503 with Retry-After after 5 s,
# which the load generator honours and sends again).
# Target: serve's peak RSS under the Deployment's limit
# (configs/kubernetes/deployment.yaml: 256 Mi), with room to spare.
#
#   scripts/bench-intake-rss.sh [--posts N] [--rounds N] [--server URL | --test-server]
#
#   --posts N      requests at once (default 12)
#   --rounds N     rounds of each kind of body (default 3)
#   --server URL   use this server (a database URL whose user may CREATE DATABASE) instead of
#                  a throwaway cluster; it gets the database iys_bench_intake_rss
#   --test-server  the same with $IYS_TEST_DATABASE_URL
#
# Peak RSS is the kernel's high-water mark of the serve process (VmHWM in
# /proc/PID/status), read once the load is over: exact, no polling. Needs Go
# and the machine's PostgreSQL binaries (initdb, postgres). Exits 1 when an
# answer is neither 200 nor 503 with Retry-After, or the target is missed.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

posts=12 rounds=3 server="" limit_mib=256
while [ $# -gt 0 ]; do
	case "$1" in
	--posts) posts=$2; shift 2 ;;
	--rounds) rounds=$2; shift 2 ;;
	*) common_arg "$@"; shift "$used" ;;
	esac
done
case "$posts$rounds" in *[!0-9]* | "") echo "bench-intake-rss.sh: --posts and --rounds take positive numbers" >&2; exit 2 ;; esac

cd "$(dirname "$0")/.."
bench_workdir

go build -o "$work/iys-sync" ./cmd/iys-sync
go build -o "$work/benchtool" ./scripts/benchtool
go build -o "$work/benchintake" ./scripts/benchintake
bt="$work/benchtool"

bench_server bench-intake-rss.sh
db=$("$bt" freshdb -url "$admin" -name iys_bench_intake_rss)

# The sandbox stands in for İYS: serve needs an API to start; the intake never calls it.
"$work/iys-sync" sandbox --addr 127.0.0.1:0 >"$work/sandbox.out" 2>&1 &
pids+=($!)
wait_for "$work/sandbox.out" "listening on" "${pids[-1]}" || { echo "bench-intake-rss.sh: the sandbox did not start" >&2; exit 1; }
api=$(sed -n 's/^listening on //p' "$work/sandbox.out" | head -1)

export IYS_DATABASE_URL=$db IYS_API_URL=$api IYS_USERNAME=sandbox IYS_PASSWORD=sandbox IYS_LOG_FORMAT=json
"$work/iys-sync" install --brand-code B --iys-code I --channels MESAJ,ARAMA,EPOSTA --skip-verify >/dev/null

token=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
hash=$(printf %s "$token" | sha256sum | cut -d' ' -f1)
IYS_INTAKE_ADDR=127.0.0.1:0 IYS_INTAKE_TOKENS="bench:$hash:B" "$work/iys-sync" serve 2>"$work/serve.log" &
serve_pid=$!
pids+=("$serve_pid")
wait_for "$work/serve.log" '"intake listening"' "$serve_pid" || { echo "bench-intake-rss.sh: serve did not start the intake" >&2; exit 1; }
addr=$(sed -n 's/.*"msg":"intake listening".*"addr":"\([^"]*\)".*/\1/p' "$work/serve.log" | head -1)
idle_kb=$(awk '/^VmRSS/ { print $2 }' "/proc/$serve_pid/status")

machine_line
echo "server:    $server_name, on the same machine"
echo "go:        $(go env GOVERSION)"
echo "peak RSS:  VmHWM of the serve process"
BENCH_TOKEN=$token "$work/benchintake" -url "http://$addr" -brand B -max-posts "$posts" -rounds "$rounds"
peak_kb=$(awk '/^VmHWM/ { print $2 }' "/proc/$serve_pid/status")

if grep -qF "$token" "$work/serve.log"; then
	echo "bench-intake-rss.sh: serve's log holds the token" >&2
	exit 1
fi
awk -v idle="$idle_kb" -v peak="$peak_kb" -v limit="$limit_mib" 'BEGIN {
	printf "serve:     %.1f MiB at rest, peak %.1f MiB (%.0f%% of the Deployment'"'"'s %d Mi limit)\n", idle/1024, peak/1024, 100*peak/1024/limit, limit
	if (peak/1024 < 0.8*limit) { print "memory: under 80% of the limit: PASS"; exit 0 }
	print "memory: over 80% of the limit: FAIL"; exit 1
}'
