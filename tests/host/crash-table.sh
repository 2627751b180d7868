#!/bin/sh
# The fault-injection table of docs/reliability.md, on the host: restore-sim's crash-*
# scenarios (criu-lazyd's worker SIGKILLed at a protocol point and at random moments, the
# keeper killed, a worker that keeps dying), each run RUNS times with seeds SEED..SEED+RUNS-1.
#
#   sh tests/host/crash-table.sh [-n RUNS] [-s SEED] [BUILD_DIR]
#
# Per scenario: runs, runs that passed (every byte every task saw was right, or, where the
# daemon must kill the tasks, every task killed), pages wrong in tasks that ran on, tasks the
# daemon killed, workers killed, restarts the daemon reported, and the time from a worker's
# death to its successor's resume (median and max, from the daemon's log). Prints the table
# (markdown) and writes it to BUILD_DIR/crash-host/table.md; exits 1 if a run failed.
set -u
RUNS=5 SEED=1
while getopts n:s: o; do
	case $o in
	n) RUNS=$OPTARG ;;
	s) SEED=$OPTARG ;;
	*) echo "usage: $0 [-n RUNS] [-s SEED] [BUILD_DIR]" >&2; exit 2 ;;
	esac
done
shift $((OPTIND - 1))
B=${1:-build}
SIM=$B/tests/host/restore-sim
LAZYD=$B/bin/criu-lazyd
[ -x "$SIM" ] && [ -x "$LAZYD" ] || { echo "crash-table: build first (make)" >&2; exit 2; }
OUT=$B/crash-host
mkdir -p "$OUT"
names=$("$SIM" --list | awk '$1 ~ /^crash-/ {print $1}')
fails=0
{
	echo "| scenario | runs | passed | wrong pages seen | of which by tasks that ran on | tasks killed | workers killed | restarts | recovery median / max (ms) |"
	echo "|---|---|---|---|---|---|---|---|---|"
} >"$OUT/table.md"
for name in $names; do
	ok=0 seen=0 wrong=0 killed=0 kills=0 restarts=0
	: >"$OUT/rec.txt"
	i=0
	while [ $i -lt "$RUNS" ]; do
		seed=$((SEED + i))
		d=$(mktemp -d /tmp/lazyd-crash.XXXXXX)
		if timeout -k 10 400 "$SIM" --scenario "$name" --daemon "$LAZYD" --dir "$d" \
			--seed "$seed" >"$d/sim.out" 2>&1; then
			ok=$((ok + 1))
			passed=1
		else
			passed=0
			fails=$((fails + 1))
			echo "FAIL $name seed $seed (kept $d)" >&2
		fi
		# A wrong page a task saw: it ran on with it, unless the daemon killed it (a run that
		# passed in a scenario where the daemon must kill the tasks).
		w=$(grep -c MISMATCH "$d/sim.out")
		seen=$((seen + w))
		case "$passed $name" in
		"1 crash-keeper" | "1 crash-loop") ;;
		*) wrong=$((wrong + w)) ;;
		esac
		killed=$((killed + $(grep -c "killing the task\|killing it" "$d/lazyd.log" 2>/dev/null)))
		g=$(sed -n 's/.*keeper: .*: killing the \([0-9]*\) restored tasks.*/\1/p' "$d/lazyd.log" 2>/dev/null | tail -n 1)
		killed=$((killed + ${g:-0}))
		k=$(sed -n 's/.*workers killed: \([0-9]*\),.*/\1/p' "$d/sim.out" | tail -n 1)
		kills=$((kills + ${k:-0}))
		r=$(sed -n 's/.*summary: keeper pid [0-9]*: \([0-9]*\) worker restarts.*/\1/p' "$d/lazyd.log" 2>/dev/null | tail -n 1)
		restarts=$((restarts + ${r:-0}))
		# "(SS.ssssss) ... died ..." then "(SS.ssssss) ... resumed after worker restart": ms between.
		awk '/keeper: worker pid .* died/ { gsub(/[()]/, "", $1); t = $1 }
		     /resumed after worker restart/ && t != "" { gsub(/[()]/, "", $1); printf "%.1f\n", ($1 - t) * 1000; t = "" }' \
			"$d/lazyd.log" >>"$OUT/rec.txt" 2>/dev/null
		[ "$passed" = 1 ] && rm -rf "$d"
		i=$((i + 1))
	done
	rec=$(sort -n "$OUT/rec.txt" | awk '{v[NR] = $1} END {if (NR) printf "%s / %s", v[int((NR + 1) / 2)], v[NR]; else printf "-"}')
	echo "| $name | $RUNS | $ok | $seen | $wrong | $killed | $kills | $restarts | $rec |" >>"$OUT/table.md"
done
rm -f "$OUT/rec.txt"
cat "$OUT/table.md"
[ "$fails" -eq 0 ]
