#!/bin/sh
# Fault injection (issue 12, "a daemon crash never costs a page"; make crashtest): real CRIU
# 4.x natively (the suite's root, as tests/native/run.sh finds it), a workload dumped with
# `criu dump`, restored with `criu restore --lazy-pages -d` served by criu-lazyd, and
# criu-lazyd's worker SIGKILLed at a random point of the restore. Then the workload checks
# every byte of its memory (CTL/verify). A task must never run on with a page it did not have
# at the dump: either every check passes, or the daemon killed the task and logged why.
#   sh tests/native/crash.sh [-n RUNS] [-s SIZE_MB] [-w WORKLOADS] [-p POINTS] [-S SEED]
#                            [-D MAX_DELAY_MS] [-t TIMEOUT_S] [-b LAZYD] [-a 'DAEMON ARGS']
# Defaults (CI, well under 3 minutes): 20 runs, 256 MB, workloads "memhog tree chaos", all
# points, a random seed (printed; -S SEED replays the same choices), delays up to 80 ms,
# waits bounded by 60 s, build/bin/criu-lazyd. By hand: -n 200. Env: CRASH_SUITE (sid).
#
# Which process is killed: criu-lazyd with a keeper is a keeper process (the pid in
# --pidfile, holding the uffds) and one worker (its only child, `pgrep -P KEEPER`) that the
# keeper restarts; the worker is killed. A daemon without a child (a single-process
# criu-lazyd, or --keeper off) is killed itself: its uffds close and the tasks then read
# zero-filled pages, which this test must catch (wrong pages > 0, exit 1).
#
# Kill points (each run takes the next one of a seeded shuffle of -p, so that every point
# is hit as often as the others; D is -D):
#   listen   the daemon is ready (its --status-fd byte), criu restore not started yet
#   restore  0..D ms after `criu restore` started (tasks being sent, before the first fault)
#   drain    0..D ms after `criu restore -d` returned (background drain; verify after)
#   verify   0..D/2 ms after CTL/verify was created (faults race the drain)
#   twice    as drain, then the new worker again 0..5 ms after it appears (in its replay)
#   storm    right after restore, every new worker again, up to 8 times (more than
#            --worker-restarts allows by default: the keeper must kill the tasks, and say why)
# A kill that finds the daemon already gone is "late" (not delivered).
#
# Outcome of a run:
#   ok              verify ok
#   killed          tasks died (or a check failed on a dead task), the daemon's log says
#                   "killing" (its reason is recorded)
#   restore-failed  `criu restore` failed: no restored task ran
#   WRONG           a check found a wrong page (bad_pages > 0), or a check failed with no
#                   task killed: a task ran on with a wrong page             -> exit 1
#   DIED            tasks died and the daemon's log says nothing of it       -> exit 1
#   HANG            the workload or the daemon did not finish within -t s    -> exit 1
#   SETUP           the workload did not start or criu dump failed           -> exit 1
# Per run: build/native/crash-latest/runs.tsv (point, workload, delays, what was killed,
# outcome, the verify line, wrong pages, the daemon's reason for killing, its exit code,
# worker restarts, recovery: ms from the keeper noticing the death to the new worker
# resuming, from the daemon's log) and run-NNN/ (logs; restore and dump logs only for runs
# that were not ok). At the end a markdown table per kill point on stdout, also appended to
# build/native/crash-latest/table.md.
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
export ROOT
# shellcheck disable=SC1091
. "$ROOT/tests/native/env.sh"

RUNS=20 SIZE=256 WORKLOADS="memhog tree chaos" POINTS="listen restore drain verify twice storm"
SEED="" MAXD=80 TMO=60 LAZYD=$ROOT/build/bin/criu-lazyd EXTRA=""
SUITE=${CRASH_SUITE:-sid}
usage() {
	sed -n '8,9p' "$0" | sed 's/^# *//' >&2
	exit 2
}
while getopts n:s:w:p:S:D:t:b:a:h opt; do
	case $opt in
	n) RUNS=$OPTARG ;;
	s) SIZE=$OPTARG ;;
	w) WORKLOADS=$(echo "$OPTARG" | tr , ' ') ;;
	p) POINTS=$(echo "$OPTARG" | tr , ' ') ;;
	S) SEED=$OPTARG ;;
	D) MAXD=$OPTARG ;;
	t) TMO=$OPTARG ;;
	b) LAZYD=$OPTARG ;;
	a) EXTRA=$OPTARG ;;
	*) usage ;;
	esac
done
shift $((OPTIND - 1))
[ $# = 0 ] || usage
for v in "$RUNS" "$SIZE" "$MAXD" "$TMO" ${SEED:+"$SEED"}; do
	case $v in '' | *[!0-9]*) echo "crash.sh: '$v' is not a number" >&2; usage ;; esac
done
for w in $WORKLOADS; do
	case $w in memhog | tree | chaos) ;; *) echo "crash.sh: unknown workload $w" >&2; usage ;; esac
	[ -x "$ROOT/build/tests/workloads/$w" ] ||
		{ echo "crash.sh: build/tests/workloads/$w missing: run make first" >&2; exit 2; }
done
for p in $POINTS; do
	case $p in listen | restore | drain | verify | twice | storm) ;;
	*) echo "crash.sh: unknown kill point $p" >&2; usage ;; esac
done
[ -x "$LAZYD" ] || { echo "crash.sh: $LAZYD missing: run make first" >&2; exit 2; }
command -v pgrep >/dev/null || { echo "crash.sh: pgrep (procps) is needed" >&2; exit 2; }
native_env "$SUITE" || exit 2
[ -n "$SEED" ] || SEED=$(( $(od -An -N4 -tu4 /dev/urandom | tr -d ' ') % 2147483648 ))

export VM=/tmp/criu-lazy-crash-$$
# shellcheck disable=SC1091
. "$ROOT/tests/vm/lib.sh"
C=crash # the case (tests/vm/lib.sh): $VM/crash/{ctl,img,result,pid,out}
W=$VM/$C/work

R=$ROOT/build/native/crash-$(date +%Y%m%d-%H%M%S)-$$
mkdir -p "$R"
ln -sfn "$(basename "$R")" "$ROOT/build/native/crash-latest"
for old in "$ROOT/build/native/crash"-2*-*; do # the 3 newest stay
	[ -d "$old" ] && echo "$old"
done | sort | head -n -3 | while read -r old; do
	rm -rf "$old"
done
TSV=$R/runs.tsv
printf 'run\tpoint\tworkload\tdelay_ms\tkills\toutcome\tverify\twrong_pages\treason\tdaemon_rc\trestarts\trecovery_ms\n' >"$TSV"

# Seeded randomness (an LCG; the state never leaves 31 bits, so no overflow in sh).
RNG=$SEED
rand() { # rand N: R_ = 0..N-1
	RNG=$(( (RNG * 1103515245 + 12345) % 2147483648 ))
	R_=$(( (RNG / 65536) % $1 ))
}
BAG=""
next_point() { # POINT = the next point of a shuffled bag of $POINTS
	[ -n "$BAG" ] || BAG=$POINTS
	# shellcheck disable=SC2086
	set -- $BAG
	rand $#
	_k=$R_ BAG="" POINT=""
	for _p; do
		if [ "$_k" = 0 ]; then POINT=$_p; else BAG="$BAG $_p"; fi
		_k=$((_k - 1))
	done
}
msleep() { sleep "$(( $1 / 1000 )).$(printf %03d $(( $1 % 1000 )))"; }
step() { echo "$(ms "$T0" "$(now)") ms: $*" >>"$W/steps"; }

# The workload's command line for SIZE MB in all.
wl_cmd() {
	rand 1000
	case $1 in
	memhog) echo "memhog -m $SIZE -s $((R_ + 1))" ;;
	tree) _m=$((SIZE / 9)); [ "$_m" -ge 1 ] || _m=1; echo "tree -n 3 -t 4 -m $_m" ;;
	chaos)
		_k=$((SIZE * 256 / 8 / 4 * 4))
		[ "$_k" -ge 64 ] || _k=64
		echo "chaos -k $_k -s $((R_ + 1))"
		;;
	esac
}

# kill_one [PID]: SIGKILL the worker (a child of the keeper other than PID, waited for up
# to 2 s: it may be restarting), or the daemon itself if it runs without a worker. Appends
# what it killed (worker:PID, daemon:PID, late, noworker) to KILLS; LASTKILL = the pid.
kill_one() {
	_not=${1:-0} LASTKILL=0
	if ! pid_alive "$KPID"; then KILLS="$KILLS late"; step "kill: daemon already gone"; return 1; fi
	if [ "$MODE" = single ]; then
		kill -KILL "$KPID" 2>/dev/null
		LASTKILL=$KPID KILLS="$KILLS daemon:$KPID"
		step "SIGKILL daemon $KPID"
		wait_until 2 pid_dead "$KPID"
		return 0
	fi
	_n=0
	while :; do
		for _w in $(pgrep -P "$KPID"); do
			[ "$_w" != "$_not" ] && pid_alive "$_w" && break 2
		done
		pid_alive "$KPID" || { KILLS="$KILLS late"; step "kill: daemon gone"; return 1; }
		_n=$((_n + 1))
		[ "$_n" -lt 1000 ] || { KILLS="$KILLS noworker"; step "kill: no worker in 2 s"; return 1; }
		sleep 0.002
	done
	kill -KILL "$_w" 2>/dev/null
	LASTKILL=$_w KILLS="$KILLS worker:$_w"
	step "SIGKILL worker $_w"
	wait_until 2 pid_dead "$_w"
	return 0
}

daemon_ready() { [ -s "$W/status" ] || [ -f "$W/daemon.exit" ]; }
restore_done() { [ -f "$W/restore.rc" ]; }
resumed_or_dead() { has_line "$C" resumed || pid_dead "$WPID"; }
verified_or_dead() { has_line "$C" "verify " || pid_dead "$WPID"; }

# Start the restore (in the background: its exit code lands in $W/restore.rc).
restore_bg() {
	step "criu restore starts"
	( _r=0
	  timeout -k 5 "$((TMO + 10))" criu restore -D "$VM/$C/img" -W "$W" --lazy-pages -d \
		-o "$W/restore.log" -v4 >"$W/restore.out" 2>&1 || _r=$?
	  echo "$_r" >"$W/restore.rc" ) &
	RPID=$!
}
restore_wait() {
	wait_until "$((TMO + 20))" restore_done || { HANG="criu restore did not return"; return 1; }
	wait "$RPID" 2>/dev/null
	step "criu restore returned $(cat "$W/restore.rc")"
	[ "$(cat "$W/restore.rc")" = 0 ] || RFAIL=1
}

# Kill the daemon (keeper and worker) if it still runs, and wait for its subshell.
daemon_cleanup() {
	if ! daemon_done "$W" && [ -n "${KPID:-}" ]; then
		for _p in $(pgrep -P "$KPID") "$KPID"; do kill -KILL "$_p" 2>/dev/null; done
		wait_until 10 daemon_done "$W" || log "daemon $KPID: its subshell did not finish"
	fi
	[ -z "${DPID:-}" ] || wait "$DPID" 2>/dev/null
	DPID=""
}

# one_run I: one restore with kills; appends a row to $TSV.
one_run() {
	i=$1
	next_point
	# shellcheck disable=SC2086
	set -- $WORKLOADS
	rand $#
	shift "$R_"
	WLN=$1
	CMD=$(wl_cmd "$WLN")
	rand 1000 # wl_cmd's draw ran in a subshell: draw here too, so runs stay replayable
	RD=$R/run-$(printf %03d "$i")
	mkdir -p "$RD"
	KILLS="" DELAYS="" HANG="" RFAIL=0 OUT="" DPID="" KPID="" RPID="" T0=$(now)
	# shellcheck disable=SC2086
	if ! wl_start "$C" $CMD >"$RD/harness.log" 2>&1 || ! wl_dump "$C" >>"$RD/harness.log" 2>&1; then
		cp "$VM/$C/dump.log" "$VM/$C/out" "$VM/$C/result" "$RD/" 2>/dev/null
		kill_case "$C" >>"$RD/harness.log" 2>&1
		printf '%s\t%s\t%s\t-\t-\tSETUP\t%s\t0\t-\t-\t0\t-\n' "$i" "$POINT" "$WLN" \
			"$(tail -n 1 "$RD/harness.log")" >>"$TSV"
		return
	fi
	WPID=$(cat "$VM/$C/pid")
	mkdir -p "$W"
	T0=$(now)
	echo "$CMD; point $POINT" >"$W/steps"
	# The e2e scenarios' daemon options (tests/vm/lib.sh), not detached so that its exit
	# code is known, plus --pidfile (the keeper) and --status-fd (ready).
	# shellcheck disable=SC2086
	( _r=0
	  "$LAZYD" -D "$VM/$C/img" -W "$W" -o "$W/lazy.log" -v4 --stats-file "$W/stats.json" \
		--pidfile "$W/daemon.pid" --status-fd 3 $EXTRA 3>"$W/status" >"$W/daemon.out" 2>&1 \
		</dev/null || _r=$?
	  echo "$_r $(now)" >"$W/daemon.exit" ) &
	DPID=$!
	if ! wait_until "$TMO" daemon_ready "$W" || daemon_done "$W"; then
		OUT=SETUP HANG=""
		[ -f "$W/daemon.exit" ] || HANG="daemon not ready"
	fi
	KPID=$(cat "$W/daemon.pid" 2>/dev/null)
	MODE=single
	[ -z "$KPID" ] || [ -z "$(pgrep -P "$KPID")" ] || MODE=keeper
	step "daemon ready: pid $KPID ($MODE)"

	if [ -z "$OUT" ]; then
		case $POINT in
		listen)
			kill_one
			restore_bg
			restore_wait
			;;
		restore)
			rand $((MAXD + 1)); DELAYS=$R_
			restore_bg
			msleep "$R_"
			kill_one
			restore_wait
			;;
		drain | twice | storm)
			restore_bg
			restore_wait
			if [ "$POINT" != storm ]; then rand $((MAXD + 1)); DELAYS=$R_; msleep "$R_"; fi
			kill_one
			if [ "$POINT" = twice ]; then
				rand 6; DELAYS="$DELAYS+$R_"
				[ "$R_" = 0 ] || msleep "$R_"
				kill_one "$LASTKILL"
			elif [ "$POINT" = storm ]; then
				_k=1
				while [ "$_k" -lt 8 ] && kill_one "$LASTKILL"; do _k=$((_k + 1)); done
			fi
			;;
		verify)
			restore_bg
			restore_wait
			;;
		esac
	fi

	# A failed restore normally leaves no task running; one that does is verified all the same.
	if [ -z "$OUT" ] && [ -z "$HANG" ] && { [ "$RFAIL" = 0 ] || pid_alive "$WPID"; }; then
		wait_until "$TMO" resumed_or_dead || HANG="workload did not report resumed"
	fi
	if [ -z "$OUT" ] && [ -z "$HANG" ] && { [ "$RFAIL" = 0 ] || pid_alive "$WPID"; }; then
		touch "$VM/$C/ctl/verify"
		step "CTL/verify created"
		if [ "$POINT" = verify ]; then
			rand $((MAXD / 2 + 1)); DELAYS=$R_
			msleep "$R_"
			kill_one
		fi
		wait_until "$TMO" verified_or_dead || HANG="workload did not verify within $TMO s"
		step "verify: $(line_of "$C" "verify ")"
	fi
	if [ -z "$HANG" ] && [ -n "$KPID" ]; then
		wait_until "$TMO" daemon_done "$W" || HANG="daemon did not exit within $TMO s"
	fi
	step "daemon exit: $(cat "$W/daemon.exit" 2>/dev/null)"
	ALIVE=0
	pid_alive "$WPID" && ALIVE=1
	cp "$VM/$C/result" "$W/result" 2>/dev/null
	kill_case "$C" >>"$RD/harness.log" 2>&1
	[ -z "$RPID" ] || { restore_done || wait_until 15 restore_done; wait "$RPID" 2>/dev/null; }
	daemon_cleanup
	step "cleaned up"

	VLINE=$(grep -m1 '^verify ' "$W/result" 2>/dev/null)
	WRONG=$(grep -o 'bad_pages=[0-9]*' "$W/result" 2>/dev/null | cut -d= -f2 |
		awk '{ s += $1 } END { print s + 0 }')
	REASON=$(grep -m1 'killing' "$W/lazy.log" 2>/dev/null |
		sed 's/^([0-9.]*) *//; s/^Error: //; s/^lazy-pages: //' | tr '\t' ' ' | cut -c1-160)
	DRC=$(cut -d' ' -f1 "$W/daemon.exit" 2>/dev/null)
	RESTARTS=$(sed -n 's/.*"worker_restarts": *\([0-9]*\).*/\1/p' "$W/stats.json" 2>/dev/null)
	[ -n "$RESTARTS" ] || RESTARTS=$(grep -c 'worker pid [0-9]* died' "$W/lazy.log" 2>/dev/null)
	# Recovery: from each "worker ... died" line to the next "resumed after worker restart".
	RECOV=$(awk '{ t = $1; gsub(/[()]/, "", t) }
		/worker pid [0-9]+ died/ { d = t; n = 1 }
		/resumed after worker restart/ && n { v = (t - d) * 1000; if (v > m) m = v; n = 0; s = 1 }
		END { if (s) printf "%.1f", m; else print "-" }' "$W/lazy.log" 2>/dev/null)

	if [ -z "$OUT" ]; then
		if [ -n "$HANG" ]; then OUT=HANG
		elif [ "${WRONG:-0}" -gt 0 ]; then OUT=WRONG
		elif [ "$RFAIL" = 1 ]; then OUT=restore-failed
		else
			case $VLINE in
			"verify ok"*) OUT=ok ;;
			*)
				if [ -n "$REASON" ]; then OUT=killed
				elif [ -n "$VLINE" ] && [ "$ALIVE" = 1 ]; then OUT=WRONG
				else OUT=DIED; fi
				;;
			esac
		fi
	fi
	[ -z "$HANG" ] || VLINE="$HANG; $VLINE"
	cp -r "$W/." "$RD/"
	case $OUT in
	ok | killed) rm -f "$RD/restore.log" ;;
	*) cp "$VM/$C/dump.log" "$VM/$C/out" "$RD/" 2>/dev/null ;;
	esac
	# shellcheck disable=SC2086
	set -- $KILLS
	KILLS=$*
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$i" "$POINT" "$WLN" "${DELAYS:--}" \
		"${KILLS:--}" "$OUT" "$(echo "${VLINE:--}" | tr '\t' ' ' | cut -c1-160)" "${WRONG:-0}" \
		"${REASON:--}" "${DRC:--}" "${RESTARTS:-0}" "$RECOV" >>"$TSV"
	printf '%3s %-7s %-6s delay %-7s %-30s %-14s wrong %-6s rc %-3s restarts %s%s\n' "$i" "$POINT" \
		"$WLN" "${DELAYS:--}" "${KILLS:--}" "$OUT" "${WRONG:-0}" "${DRC:--}" "${RESTARTS:-0}" \
		"${REASON:+; $REASON}"
}

interrupted() {
	kill_case "$C" >/dev/null 2>&1
	daemon_cleanup
	rm -rf "$VM"
	exit 130
}
trap interrupted INT TERM

echo "== crash: criu-lazyd $LAZYD${EXTRA:+ $EXTRA}; CRIU $CRIU_VERSION ($SUITE), kernel $(uname -r)"
echo "   $RUNS runs, $SIZE MB, workloads: $WORKLOADS; points: $POINTS; max delay $MAXD ms"
echo "   seed $SEED (replay: sh tests/native/crash.sh -S $SEED -n $RUNS -s $SIZE" \
	"-w '$WORKLOADS' -p '$POINTS' -D $MAXD); logs: build/native/crash-latest/"
rm -rf "$VM"
mkdir -p "$VM"
T_ALL=$(date +%s)
i=1
while [ "$i" -le "$RUNS" ]; do
	one_run "$i"
	i=$((i + 1))
done
rm -rf "$VM"

# The table: one row per kill point, in the order of -p, and the total.
TABLE=$R/table.md
{
	echo
	echo "### crash.sh $(date '+%F %T'): seed $SEED, $RUNS runs, $SIZE MB, $(( $(date +%s) - T_ALL )) s"
	echo
	# The tree the binary was built in (build/bin/criu-lazyd of a checkout), if it is one.
	_tree=$(git -C "$(dirname "$LAZYD")/../.." describe --always --dirty 2>/dev/null || echo '?')
	echo "criu-lazyd: \`$LAZYD${EXTRA:+ $EXTRA}\` (tree $_tree);" \
		"CRIU $CRIU_VERSION; workloads: $WORKLOADS"
	echo
	awk -F '\t' -v order="$POINTS" '
	NR == 1 { next }
	{
		p = $2; runs[p]++; all["runs"]++
		nk = split($5, k, " ")
		for (j = 1; j <= nk; j++) {
			if (k[j] ~ /^(worker|daemon):/) { kills[p]++; all["kills"]++ }
			else if (k[j] == "late" || k[j] == "noworker") { late[p]++; all["late"]++ }
		}
		if ($6 == "ok") { ok[p]++; all["ok"]++ }
		if ($6 == "killed") { killed[p]++; all["killed"]++ }
		if ($6 == "restore-failed") { rf[p]++; all["rf"]++ }
		if ($6 == "WRONG") { wr[p]++; all["wr"]++ }
		if ($6 == "DIED") { died[p]++; all["died"]++ }
		if ($6 == "HANG") { hang[p]++; all["hang"]++ }
		if ($6 == "SETUP") { setup[p]++; all["setup"]++ }
		wp[p] += $8; all["wp"] += $8
		rs[p] += $11; all["rs"] += $11
		if ($12 != "-" && $12 + 0 > rec[p]) rec[p] = $12 + 0
		if ($12 != "-" && $12 + 0 > all["rec"]) all["rec"] = $12 + 0
	}
	function row(name, r, k, l, o, w, wpp, ki, f, d, h, s, x, rc) {
		printf "| %s | %d | %d | %d | %d | %d | %d | %d | %d | %d | %d | %d | %d | %s |\n",
			name, r, k, l, o, wpp, w, ki, f, d, h, s, x, rc == "" || rc == 0 ? "-" : rc
	}
	END {
		print "| kill point | runs | kills | late | verified ok | wrong pages | runs with wrong pages | tasks killed | restore failed | died, no reason | hung | setup failed | worker restarts | max recovery ms |"
		print "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
		n = split(order, ps, " ")
		for (j = 1; j <= n; j++) {
			p = ps[j]
			if (!(p in runs)) continue
			row(p, runs[p], kills[p], late[p], ok[p], wr[p], wp[p], killed[p], rf[p], died[p],
			    hang[p], setup[p], rs[p], rec[p])
		}
		row("**all**", all["runs"], all["kills"], all["late"], all["ok"], all["wr"], all["wp"],
		    all["killed"], all["rf"], all["died"], all["hang"], all["setup"], all["rs"], all["rec"])
	}' "$TSV"
} >"$R/table.new"
cat "$R/table.new"
cat "$R/table.new" >>"$TABLE"
rm -f "$R/table.new"

bad=$(awk -F '\t' 'NR > 1 && ($6 == "WRONG" || $6 == "DIED" || $6 == "HANG" || $6 == "SETUP")' "$TSV" | wc -l)
echo
if [ "$bad" -gt 0 ]; then
	echo "crash: $bad of $RUNS runs FAILED (WRONG: a task ran on with a wrong page; DIED: tasks" \
		"died, no reason logged; HANG; SETUP): see build/native/crash-latest/runs.tsv"
	exit 1
fi
echo "crash: all $RUNS runs kept every page (ok, or killed with a reason, or no task ran)"
