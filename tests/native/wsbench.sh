#!/bin/sh
# Working-set replay benchmark (issue 13), native CRIU 4.2.1 on the host's kernel, as root:
#   sh tests/native/wsbench.sh [ROUNDS]            (default 2 rounds)
# A NATIVE_WS_MB (1024) MB memhog -w NATIVE_WS_PERMILLE (60): after restore it reads a fixed
# random 6% of its pages (the same pages, in the same order, every run) and reports when it has
# ("ws ... at="), then checks every byte. It is dumped once; per round and setup the record
# beside the images is removed, then the image is restored three times in a row with
# criu-lazyd --working-set auto --working-set-hold NATIVE_WS_HOLD (5000; 0: records faults
# only): first (no record: it records one), second (replays it),
# third (replays the merged record); and once with --working-set off (the control).
# Setups (NATIVE_WS_SETUPS, default "local link"):
#   local  criu-lazyd with the local images
#   link   criu-lazyd --image-server to criu-imgd across a veth pair shaped to
#          NATIVE_BENCH_RATE (1gbit, tbf; criu-imgd in a network namespace of its own)
# Per restore: time to working set (t0 = right before `criu restore`, to the task's "ws at="),
# the task's stalls while it read its working set (first touches of 100 us or more: a page
# that was not there), criu-lazyd's faults and replayed pages (--stats-file), total (every byte
# checked). Figures, as ratios measured in the same round: second / first restore for faults
# and time to working set (targets: faults -80% or more, time <= 0.5x); on the link, time to
# working set / a plain TCP transfer of the working set's bytes on the same link (target
# <= 1.5x). Output: build/native/wsbench.md (table), wsbench.json, wsbench-raw.txt; each run's
# logs under build/native/wsbench-runs/.
# Env: NATIVE_WS_MB, NATIVE_WS_PERMILLE, NATIVE_WS_SETUPS, NATIVE_WS_HOLD, NATIVE_BENCH_DIR (default
# /dev/shm/criu-lazy-wsbench), NATIVE_BENCH_RATE, NATIVE_BENCH_V (daemons' log level, 2).
set -eu
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
ROUNDS=${1:-2}
MB=${NATIVE_WS_MB:-1024}
PERMILLE=${NATIVE_WS_PERMILLE:-60}
SETUPS=${NATIVE_WS_SETUPS:-local link}
HOLD=${NATIVE_WS_HOLD:-5000}
BDIR=${NATIVE_BENCH_DIR:-/dev/shm/criu-lazy-wsbench}
LOGV=${NATIVE_BENCH_V:-2}
OUT=$ROOT/build/native
IMGD=$ROOT/build/bin/criu-imgd
LAZYD=$ROOT/build/bin/criu-lazyd

case $ROUNDS in '' | *[!0-9]* | 0) echo "wsbench.sh: ROUNDS must be a positive number" >&2; exit 2 ;; esac
[ "$(id -u)" = 0 ] || { echo "wsbench.sh: run as root (criu dump/restore)" >&2; exit 2; }
for b in "$IMGD" "$LAZYD" "$ROOT/build/tests/workloads/memhog"; do
	[ -x "$b" ] || { echo "wsbench.sh: $b is not built (make)" >&2; exit 2; }
done

. "$ROOT/tests/native/env.sh"
native_bench_env "$BDIR"
rm -rf "${BDIR:?}" "$OUT/wsbench-runs"
mkdir -p "$BDIR" "$OUT/wsbench-runs"
KEY=$BDIR/imgd.key
( umask 077; od -An -tx1 -N32 /dev/urandom | tr -d ' \n' >"$KEY" )
RAW=$OUT/wsbench-raw.txt
# setup round run ws_ms ws_stalls faults replayed late missed total_ms tcp_ms
DATA=$OUT/wsbench-data.txt
: >"$RAW"
: >"$DATA"
IPID=""
say() { echo "$*" | tee -a "$RAW" >&2; }

RATE=${NATIVE_BENCH_RATE:-1gbit}
LNS=lzws$$ LHOST=lzwh$$ LSRV=lzwsv$$ HOST_IP=10.251.81.1 SRV_IP=10.251.81.2
. "$ROOT/tests/native/shaped.sh"
cleanup() {
	[ -z "$IPID" ] || imgd_down
	link_down
	[ -f "$BDIR/ws/pid" ] && kill_case ws >/dev/null 2>&1
	return 0
}
trap cleanup EXIT
trap 'exit 143' TERM INT
case " $SETUPS " in *" link "*)
	link_up || { echo "wsbench: cannot set up the shaped veth link" >&2; exit 1; } ;;
esac

field() { echo "$1" | sed -n "s/.* $2=\([0-9]*\).*/\1/p"; }

# ws_restore SETUP MODE: one restore of case ws with criu-lazyd --working-set MODE.
ws_restore() {
	_extra="--working-set $2 --working-set-hold $HOLD"
	if [ "$1" = link ]; then
		imgd_up_in "$BDIR/ws" "$LNS" || { FAIL_WHY="criu-imgd did not start"; return 1; }
		_extra="$_extra --image-server $SRV_IP:$PORT --image img --auth-key $KEY"
	fi
	OURS_LAZY="$LAZYD $_extra"
	_or=0
	restore_run ws ours verify-now || _or=$?
	[ "$1" != link ] || { imgd_down; cp "$BDIR/ws/imgd.log" "$RUN/" 2>/dev/null || true; }
	return $_or
}

wl_start ws memhog -m "$MB" -s 7 -w "$PERMILLE" >>"$RAW" 2>&1 || { say "memhog did not start"; exit 1; }
wl_dump ws >>"$RAW" 2>&1 || { say "criu dump failed (see $BDIR/ws/dump.log)"; exit 1; }
WS_PAGES=$(( MB * 256 * PERMILLE / 1000 ))
say "ws: ${MB} MB memhog -w $PERMILLE dumped in ${DUMP_MS} ms; working set $WS_PAGES pages"

i=1
while [ "$i" -le "$ROUNDS" ]; do
	for s in $SETUPS; do
		tcp=-
		[ "$s" != link ] || tcp=$(link_tcp_ms $((WS_PAGES * 4096)) "$BDIR/tcp.port")
		rm -f "$BDIR/ws/img/lazy-workset.img"
		for run in off first second third; do
			mode=auto
			[ "$run" != off ] || mode=off
			if ! ws_restore "$s" "$mode" >>"$RAW" 2>&1; then
				say "FAIL round $i $s $run: $FAIL_WHY"
				cp -r "$RUN" "$OUT/wsbench-runs/FAIL-$s-$run-$i" 2>/dev/null || true
				exit 1
			fi
			wsl=$(grep -m1 '^ws ' "$RUN/result" || true)
			case $wsl in "ws ok"*) ;; *) say "FAIL round $i $s $run: working set: $wsl"; exit 1 ;; esac
			wsms=$(ms "$_t0" "$(field "$wsl" at)")
			st=$RUN/stats.json
			echo "$s $i $run $wsms $(field "$wsl" stall_n) $(stat_of "$st" faults) $(stat_of "$st" ws_replayed) $(stat_of "$st" ws_late) $(stat_of "$st" ws_missed) $TOUCH_MS $tcp $RESUME_MS" >>"$DATA"
			say "round $i $s $run: working set in $wsms ms ($(field "$wsl" stall_n) stalls), criu-lazyd $(stat_of "$st" faults) faults, $(stat_of "$st" ws_replayed) pages replayed ($(stat_of "$st" ws_late) late, $(stat_of "$st" ws_missed) missed), resumed at $RESUME_MS ms, total $TOUCH_MS ms${tcp:+, TCP of the working set $tcp ms}"
			keep_run "$OUT/wsbench-runs/$s-$run-$i" stats.json lazy.log result steps imgd.log
		done
	done
	i=$((i + 1))
done

# ---- the table: per setup and round, second/first ratios ----
{
	echo "Working-set replay: ${MB} MB memhog reading a fixed random ${PERMILLE}/1000 of its pages ($WS_PAGES), CRIU $CRIU_VERSION, kernel $(uname -r), $(nproc) CPUs; link: veth + tbf $RATE"
	echo
	echo "| setup | round | restore | time to working set (ms) | task stalls | criu-lazyd faults | pages replayed (late / missed faults) | total (ms) |"
	echo "| --- | --- | --- | --- | --- | --- | --- | --- |"
	awk '{ printf "| %s | %s | %s | %s | %s | %s | %s (%s / %s) | %s |\n", $1, $2, $3, $4, $5, $6, $7, $8, $9, $10 }' "$DATA"
	echo
	echo "| setup | round | faults 2nd / 1st | stalls 2nd / 1st | time to WS 2nd / 1st | 3rd / 1st | TCP of the WS (ms) | time to WS 2nd / TCP |"
	echo "| --- | --- | --- | --- | --- | --- | --- | --- |"
	for s in $SETUPS; do
		i=1
		while [ "$i" -le "$ROUNDS" ]; do
			g() { awk -v s="$s" -v i="$i" -v r="$1" -v c="$2" '$1 == s && $2 == i && $3 == r { print $c }' "$DATA"; }
			echo "| $s | $i | $(ratio "$(g second 6)" "$(g first 6)") | $(ratio "$(g second 5)" "$(g first 5)") | $(ratio "$(g second 4)" "$(g first 4)") | $(ratio "$(g third 4)" "$(g first 4)") | $(g first 11) | $(ratio "$(g second 4)" "$(g first 11)") |"
			i=$((i + 1))
		done
	done
} >"$OUT/wsbench.md"
awk 'BEGIN { printf "[" } { printf "%s{\"setup\": \"%s\", \"round\": %s, \"restore\": \"%s\", \"ws_ms\": %s, \"stalls\": %s, \"faults\": %s, \"replayed\": %s, \"late\": %s, \"missed\": %s, \"total_ms\": %s, \"tcp_ws_ms\": \"%s\"}", (NR > 1 ? ", " : ""), $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11 } END { print "]" }' "$DATA" >"$OUT/wsbench.json"
cat "$OUT/wsbench.md"
