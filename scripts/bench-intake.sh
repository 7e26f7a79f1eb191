#!/usr/bin/env bash
# bench-intake.sh: measure the HTTP intake's throughput end to end: the real
# `iys-sync serve` with IYS_INTAKE_ADDR, over a throwaway PostgreSQL cluster,
# loaded by scripts/benchintake with batches of 5,000 consents from several
# clients at once. Target: at least 20,000 consents/s for new consents.
#
#   scripts/bench-intake.sh [--items N] [--batch N] [--clients N] [--server URL | --test-server]
#
#   --items N      consents a pass (default 200000)
#   --batch N      consents a request (default 5000)
#   --clients N    requests in flight at once (default 4; the intake merges 4 at a time)
#   --server URL   use this server (a database URL whose user may CREATE DATABASE) instead of
#                  a throwaway cluster; it gets the database iys_bench_intake
#   --test-server  the same with $IYS_TEST_DATABASE_URL
#
# Three passes: new consents (all accepted), the same bodies again (all
# unchanged: nothing is written), newer consents for the same records (all
# accepted, as updates); the figure that counts is the first. serve is given
# the sandbox (`iys-sync sandbox`) as İYS, which the intake never calls; its
# nightly schedule does not fire during the run. Needs Go and
# the machine's PostgreSQL binaries (initdb, postgres). Exits 1 when the
# target is missed or any verdict is not the expected one.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

items=200000 batch=5000 clients=4 server=""
while [ $# -gt 0 ]; do
	case "$1" in
	--items) items=$2; shift 2 ;;
	--batch) batch=$2; shift 2 ;;
	--clients) clients=$2; shift 2 ;;
	*) common_arg "$@"; shift "$used" ;;
	esac
done
case "$items$batch$clients" in *[!0-9]*) echo "bench-intake.sh: --items, --batch and --clients take positive numbers" >&2; exit 2 ;; esac

cd "$(dirname "$0")/.."
bench_workdir

go build -o "$work/iys-sync" ./cmd/iys-sync
go build -o "$work/benchtool" ./scripts/benchtool
go build -o "$work/benchintake" ./scripts/benchintake
bt="$work/benchtool"

bench_server bench-intake.sh
db=$("$bt" freshdb -url "$admin" -name iys_bench_intake)

# The sandbox stands in for İYS: serve needs an API to start; the intake never calls it.
"$work/iys-sync" sandbox --addr 127.0.0.1:0 >"$work/sandbox.out" 2>&1 &
pids+=($!)
wait_for "$work/sandbox.out" "listening on" "${pids[-1]}" || { echo "bench-intake.sh: the sandbox did not start" >&2; exit 1; }
api=$(sed -n 's/^listening on //p' "$work/sandbox.out" | head -1)

export IYS_DATABASE_URL=$db IYS_API_URL=$api IYS_USERNAME=sandbox IYS_PASSWORD=sandbox IYS_LOG_FORMAT=json
"$work/iys-sync" install --brand-code B --iys-code I --channels MESAJ,ARAMA,EPOSTA --skip-verify >/dev/null

token=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
hash=$(printf %s "$token" | sha256sum | cut -d' ' -f1)
IYS_INTAKE_ADDR=127.0.0.1:0 IYS_INTAKE_TOKENS="bench:$hash:B" "$work/iys-sync" serve 2>"$work/serve.log" &
pids+=($!)
wait_for "$work/serve.log" '"intake listening"' "${pids[-1]}" || { echo "bench-intake.sh: serve did not start the intake" >&2; exit 1; }
addr=$(sed -n 's/.*"msg":"intake listening".*"addr":"\([^"]*\)".*/\1/p' "$work/serve.log" | head -1)

machine_line
echo "server:    $server_name, $("$bt" sql -url "$admin" "SELECT split_part(version(), ' ', 1) || ' ' || split_part(version(), ' ', 2)"), on the same machine"
echo "go:        $(go env GOVERSION)"
BENCH_TOKEN=$token "$work/benchintake" -url "http://$addr" -brand B -items "$items" -batch "$batch" -clients "$clients" -db "$db" | tee "$work/bench.out"

if grep -qF "$token" "$work/serve.log"; then
	echo "bench-intake.sh: serve's log holds the token" >&2
	exit 1
fi
rate=$(sed -n 's/^RESULT //p' "$work/bench.out")
if awk -v r="$rate" 'BEGIN { exit !(r >= 20000) }'; then
	echo "throughput: $rate consents/s for new consents (target >= 20000): PASS"
else
	echo "throughput: $rate consents/s for new consents (target >= 20000): FAIL"
	exit 1
fi
