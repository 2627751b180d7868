#!/bin/sh
# Parallel fill benchmark (issue 13), native CRIU 4.2.1 on the host's kernel, as root:
#   sh tests/native/fillbench.sh [ROUNDS]            (default 1 round)
# A memhog of each size in NATIVE_FILL_MB ("1024 4096") is dumped once (images on tmpfs) and
# restored lazily with local images while it does not touch its memory: the daemon drains
# every page in the background, then the task checks every byte (restore_run drain-first).
# Setups (NATIVE_FILL_SETUPS, default "criu 1 2"): criu = `criu lazy-pages`; a number N =
# criu-lazyd --fill-threads N. They alternate within each round.
# Per restore: drain time (from `criu restore` to the daemon's exit), the daemon's CPU
# seconds (user + system, /usr/bin/time: the keeper and its worker, all threads), the data
# drained; figures: throughput (MB/s) and CPU s per GB, and as ratios in the same round,
# N threads / 1 thread (targets: throughput >= 1.7x at CPU <= 2.2x on 2 CPUs) and
# criu-lazyd / criu lazy-pages. Output: build/native/fillbench.md, fillbench.json,
# fillbench-raw.txt; each run's logs under build/native/fillbench-runs/.
# Env: NATIVE_FILL_MB, NATIVE_FILL_SETUPS, NATIVE_BENCH_DIR (default
# /dev/shm/criu-lazy-fillbench), NATIVE_BENCH_V (daemons' log level, 2).
set -eu
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
ROUNDS=${1:-1}
SIZES=${NATIVE_FILL_MB:-1024 4096}
SETUPS=${NATIVE_FILL_SETUPS:-criu 1 2}
BDIR=${NATIVE_BENCH_DIR:-/dev/shm/criu-lazy-fillbench}
LOGV=${NATIVE_BENCH_V:-2}
OUT=$ROOT/build/native
LAZYD=$ROOT/build/bin/criu-lazyd

case $ROUNDS in '' | *[!0-9]* | 0) echo "fillbench.sh: ROUNDS must be a positive number" >&2; exit 2 ;; esac
[ "$(id -u)" = 0 ] || { echo "fillbench.sh: run as root (criu dump/restore)" >&2; exit 2; }
for b in "$LAZYD" "$ROOT/build/tests/workloads/memhog" /usr/bin/time; do
	[ -x "$b" ] || { echo "fillbench.sh: $b is missing (make; make deps)" >&2; exit 2; }
done

. "$ROOT/tests/native/env.sh"
native_bench_env "$BDIR"
rm -rf "${BDIR:?}" "$OUT/fillbench-runs"
mkdir -p "$BDIR" "$OUT/fillbench-runs"
RAW=$OUT/fillbench-raw.txt
# mb round setup drain_ms cpu_s data_mb daemon_drain_ms
DATA=$OUT/fillbench-data.txt
: >"$RAW"
: >"$DATA"
say() { echo "$*" | tee -a "$RAW" >&2; }
CASES=""
cleanup() { kill_cases $CASES; }
trap cleanup EXIT
trap 'exit 143' TERM INT

TIMES=$BDIR/time.out
for mb in $SIZES; do
	c=fill$mb
	CASES="$CASES $c"
	wl_start "$c" memhog -m "$mb" -s 3 >>"$RAW" 2>&1 || { say "memhog $mb MB did not start"; exit 1; }
	wl_dump "$c" >>"$RAW" 2>&1 || { say "criu dump failed (see $BDIR/$c/dump.log)"; exit 1; }
	say "$c: ${mb} MB memhog dumped in ${DUMP_MS} ms"
done

i=1
while [ "$i" -le "$ROUNDS" ]; do
	for mb in $SIZES; do
		for s in $SETUPS; do
			c=fill$mb
			rm -f "$TIMES"
			if [ "$s" = criu ]; then
				which=criu
				CRIU_LAZY="/usr/bin/time -o $TIMES -f %U+%S criu lazy-pages"
			else
				which=ours
				OURS_LAZY="/usr/bin/time -o $TIMES -f %U+%S $LAZYD --fill-threads $s --working-set off ${NATIVE_FILL_EXTRA:-}"
			fi
			if ! restore_run "$c" "$which" drain-first >>"$RAW" 2>&1; then
				say "FAIL round $i $mb MB $s: $FAIL_WHY"
				cp -r "$RUN" "$OUT/fillbench-runs/FAIL-$mb-$s-$i" 2>/dev/null || true
				exit 1
			fi
			case $VERIFY in "verify ok"*) ;; *) say "FAIL round $i $mb MB $s: $VERIFY"; exit 1 ;; esac
			wait_until 10 file_nonempty "$TIMES" || { say "FAIL: no CPU time from /usr/bin/time"; exit 1; }
			cpu=$(tail -n 1 "$TIMES" | awk -F+ '{ printf "%.2f", $1 + $2 }')
			data=- dd=-
			if [ "$which" = ours ]; then
				data=$(( $(stat_of "$RUN/stats.json" bytes_copied) / 1048576 ))
				dd=$(sed -n 's/^ *"drain_after_restore_s": *\([0-9.]*\).*/\1/p' "$RUN/stats.json" |
					awk '{ printf "%d", $1 * 1000 }')
			fi
			echo "$mb $i $s $DRAIN_MS $cpu $data $dd" >>"$DATA"
			say "round $i $mb MB $s: drained in $DRAIN_MS ms (daemon's own drain $dd ms), CPU $cpu s, $data MB copied"
			keep_run "$OUT/fillbench-runs/$mb-$s-$i" stats.json lazy.log result
		done
	done
	i=$((i + 1))
done

# ---- the tables: per size and round, ratios within the round ----
g() { awk -v m="$1" -v i="$2" -v s="$3" -v c="$4" '$1 == m && $2 == i && $3 == s { print $c }' "$DATA"; }
{
	echo "Parallel fill: memhog of $SIZES MB, local images on tmpfs, drained while the task waits, CRIU $CRIU_VERSION, kernel $(uname -r), $(nproc) CPUs"
	echo
	echo "| size (MB) | round | setup | restore start to daemon exit (ms) | daemon's drain after restore (ms) | CPU (s) | data (MB) | drain MB/s | CPU s per GB |"
	echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"
	awk '{ mbs = ($7 > 0 && $6 != "-") ? sprintf("%.0f", $6 / ($7 / 1000)) : "-";
	       cpg = ($6 != "-") ? sprintf("%.2f", $5 / ($6 / 1024)) : "-";
	       printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", $1, $2, ($3 == "criu" ? "`criu lazy-pages`" : "criu-lazyd, " $3 " thread(s)"), $4, $7, $5, $6, mbs, cpg }' "$DATA"
	echo
	echo "| size (MB) | round | threads | drain throughput vs 1 thread | CPU vs 1 thread | restore-to-exit vs \`criu lazy-pages\` |"
	echo "| --- | --- | --- | --- | --- | --- |"
	for mb in $SIZES; do
		i=1
		while [ "$i" -le "$ROUNDS" ]; do
			for s in $SETUPS; do
				[ "$s" != criu ] || continue
				echo "| $mb | $i | $s | $(ratio "$(g "$mb" "$i" 1 7)" "$(g "$mb" "$i" "$s" 7)") | $(ratio "$(g "$mb" "$i" "$s" 5)" "$(g "$mb" "$i" 1 5)") | $(ratio "$(g "$mb" "$i" "$s" 4)" "$(g "$mb" "$i" criu 4)") |"
			done
			i=$((i + 1))
		done
	done
} >"$OUT/fillbench.md"
awk 'BEGIN { printf "[" } { printf "%s{\"mb\": %s, \"round\": %s, \"setup\": \"%s\", \"drain_ms\": %s, \"cpu_s\": %s, \"data_mb\": \"%s\", \"daemon_drain_ms\": \"%s\"}", (NR > 1 ? ", " : ""), $1, $2, $3, $4, $5, $6, $7 } END { print "]" }' "$DATA" >"$OUT/fillbench.json"
cat "$OUT/fillbench.md"
