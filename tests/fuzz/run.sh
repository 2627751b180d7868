#!/bin/sh
# Run the libFuzzer harnesses built by tests/fuzz/build.sh, each for SECONDS (default 60).
#
#   tests/fuzz/run.sh [SECONDS] [HARNESS...]     e.g. tests/fuzz/run.sh 3600 fuzz_images
#
# Each harness works on build/fuzz/corpus-HARNESS, which starts as a copy of the seeds in
# tests/fuzz/corpus/HARNESS/ and keeps what it grows from one run to the next (FRESH=1 starts
# over; the tree is never written). Findings go to build/fuzz/artifacts-HARNESS/ (crash-*,
# leak-*, timeout-*, oom-*): reproduce one with `build/fuzz/HARNESS FILE`. A harness passes
# if it ran its time with no crash, leak, timeout or out-of-memory. Extra libFuzzer options:
# FUZZ_ARGS (e.g. FUZZ_ARGS=-runs=10000000 for a count instead of a time). Last line:
# "N passed, N failed"; the exit status is 1 if any failed.
set -u
cd "$(dirname "$0")/../.."

SECS=${1:-60}
[ $# -gt 0 ] && shift
ALL="fuzz_images fuzz_wire_client fuzz_wire_server fuzz_lrconf fuzz_zpages fuzz_workset fuzz_store"
HARNESSES=${*:-$ALL}
B=build/fuzz
FUZZ_ARGS=${FUZZ_ARGS:-}

max_len() {
	case $1 in
	fuzz_images) echo 16384 ;;
	fuzz_wire_client) echo 32768 ;;
	fuzz_wire_server) echo 16384 ;;
	fuzz_lrconf) echo 4096 ;;
	fuzz_zpages) echo 65536 ;;
	fuzz_workset) echo 65536 ;;
	*) echo 4096 ;;
	esac
}

passed=0
failed=0
for h in $HARNESSES; do
	if [ ! -x "$B/$h" ]; then
		echo "$h: FAIL: $B/$h not built (tests/fuzz/build.sh)"
		failed=$((failed + 1))
		continue
	fi
	corpus=$B/corpus-$h
	art=$B/artifacts-$h
	log=$B/$h.log
	[ "${FRESH:-0}" = 1 ] && rm -rf "$corpus"
	mkdir -p "$corpus" "$art"
	[ -d "tests/fuzz/corpus/$h" ] && cp -n "tests/fuzz/corpus/$h"/* "$corpus"/ 2>/dev/null
	before=$(ls "$art" | wc -l)
	start=$(date +%s)
	# shellcheck disable=SC2086
	"$B/$h" -max_total_time="$SECS" -max_len="$(max_len "$h")" -timeout=10 \
		-rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$art/" \
		$FUZZ_ARGS "$corpus" >"$log" 2>&1
	rc=$?
	secs=$(($(date +%s) - start))
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
	rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
	cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
	new=$(ls "$art" | wc -l)
	found=$((new - before))
	units=$(ls "$corpus" | wc -l)
	info="${execs:-0} executions in ${secs} s (${rate:-0}/s), cov ${cov:-?}, $units corpus files"
	if [ $rc -eq 0 ] && [ "$found" -eq 0 ]; then
		echo "$h: PASS: $info, 0 crashes"
		passed=$((passed + 1))
	else
		echo "$h: FAIL (exit $rc): $info, $found new finding(s) in $art/ (log $log):"
		grep -E '^(==[0-9]+==ERROR|SUMMARY|fuzz harness:)|runtime error|Test unit written' "$log" |
			head -8 | sed 's/^/    /'
		failed=$((failed + 1))
	fi
done
echo "$passed passed, $failed failed"
[ $failed -eq 0 ]
