# Guest-side helpers for the VM scripts (sourced; POSIX sh). Needs ROOT (the project tree).
#
# A "case" lives in /tmp/vm/NAME (guest tmpfs): ctl/ (control files the workload polls),
# img/ (criu images), out (workload stdout/stderr), dump.log, and one dir per restore run
# (work dir of the daemon and of criu restore: lazy-pages.socket, logs, result file copy).

WL=$ROOT/build/tests/workloads
VM=${VM:-/tmp/vm}
# The two lazy-pages daemons. Both are run as: $CMD -D IMG -W WORKDIR -o LOG -v4 [extra].
CRIU_LAZY=${CRIU_LAZY:-criu lazy-pages}
OURS_LAZY=${OURS_LAZY:-$ROOT/build/bin/criu-lazyd}

log() { echo "[$(date +%T)] $*"; }
now() { date +%s%N; }
ms() { echo $(( ($2 - $1) / 1000000 )); }

# daemon_cmd criu|ours: the command line of that daemon (without the common options).
daemon_cmd() {
	case $1 in
	criu) echo "$CRIU_LAZY" ;;
	ours) echo "$OURS_LAZY" ;;
	esac
}

# wait_until TIMEOUT_S CMD...: poll CMD every 20 ms (TCG: fork as little as possible); fails
# after about TIMEOUT_S seconds (counted in polls, so a bit longer under load).
wait_until() {
	_n=$(( $1 * 50 ))
	shift
	while ! "$@"; do
		_n=$((_n - 1))
		[ "$_n" -gt 0 ] || return 1
		sleep 0.02
	done
}

# Result file of case $1; has_line CASE PREFIX; line_of CASE PREFIX (first such line).
result_of() { echo "$VM/$1/result"; }
has_line() { # no fork: a shell loop over the (short) result file
	[ -f "$VM/$1/result" ] || return 1
	while IFS= read -r _l; do
		case $_l in "$2"*) return 0 ;; esac
	done <"$VM/$1/result"
	return 1
}
line_of() { grep -m1 "^$2" "$VM/$1/result" 2>/dev/null; }
# stat_of FILE KEY: a number of criu-lazyd's --stats-file, or "-".
# ratio A B: A / B with two decimals, "-" unless both are numbers and B > 0.
ratio() {
	awk -v a="$1" -v b="$2" 'BEGIN { if (a ~ /^[0-9.]+$/ && b ~ /^[0-9.]+$/ && b > 0) printf "%.2f", a / b; else print "-" }'
}
# keep_run DEST FILE...: those of the last run's files ($RUN) that exist, copied into DEST.
keep_run() {
	_kd=$1
	shift
	mkdir -p "$_kd"
	for _kf in "$@"; do
		[ -f "$RUN/$_kf" ] && cp "$RUN/$_kf" "$_kd/"
	done
	return 0
}
# kill_cases CASE...: kill each case's workload still running (a benchmark's cleanup).
kill_cases() {
	for _kc in "$@"; do
		[ -f "$VM/$_kc/pid" ] && kill_case "$_kc" >/dev/null 2>&1
	done
	return 0
}
stat_of() {
	_v=$(sed -n "s/^ *\"$2\": *\([0-9]*\).*/\1/p" "$1" 2>/dev/null | head -1)
	echo "${_v:--}"
}

# wl_start CASE WORKLOAD ARGS...: start a workload in its own session, no tty, and wait
# until it reports "ready". Sets WPID.
wl_start() {
	_c=$1 _w=$2
	shift 2
	rm -rf "${VM:?}/$_c"
	mkdir -p "$VM/$_c/ctl" "$VM/$_c/img"
	setsid "$WL/$_w" "$@" -c "$VM/$_c/ctl" -o "$VM/$_c/result" \
		</dev/null >"$VM/$_c/out" 2>&1 &
	WPID=$!
	echo "$WPID" >"$VM/$_c/pid"
	if ! wait_until 60 has_line "$_c" "ready "; then
		log "workload $_w did not get ready"
		cat "$VM/$_c/out" "$VM/$_c/result" 2>/dev/null
		return 1
	fi
	log "$_c: $_w pid $WPID ready: $(line_of "$_c" "ready ")"
}

# wl_dump CASE: criu dump the workload tree (kills it), then mark the case "restored" so the
# workload knows, when it runs again, that it has been restored.
wl_dump() {
	_c=$1
	_pid=$(cat "$VM/$_c/pid")
	# Every process of the tree (its session): all must be gone before a restore can take
	# their pids again (this host's pid 1 reaps orphans late).
	_tree=$(ps -o pid= --sid "$_pid" 2>/dev/null) || _tree=$_pid
	_t0=$(now)
	if ! timeout 300 criu dump -t "$_pid" -D "$VM/$_c/img" -o "$VM/$_c/dump.log" -v4; then
		log "$_c: criu dump failed"
		tail -n 30 "$VM/$_c/dump.log"
		return 1
	fi
	wait "$_pid" 2>/dev/null || true
	for _p in $_tree; do
		wait_until 30 pid_gone "$_p" || log "$_c: pid $_p still there after the dump"
	done
	DUMP_MS=$(ms "$_t0" "$(now)")
	touch "$VM/$_c/ctl/restored"
	log "$_c: dumped in ${DUMP_MS} ms, images $(du -sm "$VM/$_c/img" | cut -f1) MB"
}

# kill_case CASE: kill the (restored) tree — its process group — and wait until its pid is
# free again (reaped), so the same images can be restored once more.
kill_case() {
	_pid=$(cat "$VM/$1/pid")
	_tree=$(ps -o pid= --sid "$_pid" 2>/dev/null) || _tree=""
	kill -KILL -- "-$_pid" 2>/dev/null || kill -KILL "$_pid" 2>/dev/null || true
	for _p in $_pid $_tree; do
		wait_until 30 pid_gone "$_p" || log "$1: pid $_p still there after kill"
	done
}
pid_gone() { [ ! -e "/proc/$1" ]; }

# Start a daemon for a restore run in work dir $2: daemon_start WHICH RUNDIR CASE.
# Records "<rc> <end_ns>" in RUNDIR/daemon.exit when it exits. Sets DPID (a process whose
# children include the daemon). DAEMON_STYLE=detach starts it with -d --pidfile --status-fd
# instead and checks those (exit code then unknown: recorded as 0).
daemon_start() {
	_which=$1 _run=$2 _c=$3
	_cmd=$(daemon_cmd "$_which")
	_extra=""
	[ "$_which" = ours ] && _extra="--stats-file $_run/stats.json"
	rm -f "$_run/daemon.exit"
	DAEMON_PID=""
	if [ "${DAEMON_STYLE:-}" = detach ]; then
		_drc=0
		# shellcheck disable=SC2086
		timeout 30 $_cmd -D "$VM/$_c/img" -W "$_run" -o "$_run/lazy.log" "-v${DAEMON_V:-4}" \
			$_extra -d --pidfile "$_run/daemon.pid" --status-fd 3 \
			3>"$_run/status" >"$_run/daemon.out" 2>&1 </dev/null || _drc=$?
		if [ "$_drc" != 0 ]; then
			log "daemon $_which -d: exited with $_drc"
			echo "$_drc $(now)" >"$_run/daemon.exit"
			return 1
		fi
		# The detached child writes the status byte, maybe after the parent exited (so does
		# criu lazy-pages): wait for it.
		wait_until 10 file_nonempty "$_run/status" ||
			{ log "daemon $_which -d: nothing written to --status-fd within 10 s"; return 1; }
		[ -S "$_run/lazy-pages.socket" ] || { log "daemon $_which -d: no socket after it detached"; return 1; }
		DAEMON_PID=$(cat "$_run/daemon.pid" 2>/dev/null) || true
		case $DAEMON_PID in
		'' | *[!0-9]*) log "daemon $_which -d: bad --pidfile '$DAEMON_PID'"; DAEMON_PID=""; return 1 ;;
		esac
		pid_alive "$DAEMON_PID" || { log "daemon $_which -d: pid $DAEMON_PID not running"; return 1; }
		( while pid_alive "$DAEMON_PID"; do sleep 0.02; done
		  echo "0 $(now)" >"$_run/daemon.exit" ) &
		DPID=$!
		return 0
	fi
	# shellcheck disable=SC2086
	( _r=0
	  $_cmd -D "$VM/$_c/img" -W "$_run" -o "$_run/lazy.log" "-v${DAEMON_V:-4}" $_extra \
		>"$_run/daemon.out" 2>&1 || _r=$?
	  echo "$_r $(now)" >"$_run/daemon.exit" ) &
	DPID=$!
	if ! wait_until 30 sock_or_exit "$_run"; then
		log "daemon $_which: no lazy-pages.socket after 30 s"
		return 1
	fi
	if [ -f "$_run/daemon.exit" ]; then
		log "daemon $_which exited at start: $(cat "$_run/daemon.exit")"
		return 1
	fi
}
file_nonempty() { [ -s "$1" ]; }
pid_dead() { ! pid_alive "$1"; }
# pid_alive PID: running and not a zombie.
pid_alive() { [ -e "/proc/$1" ] && [ "$(cut -d' ' -f3 "/proc/$1/stat" 2>/dev/null)" != Z ]; }
sock_or_exit() { [ -S "$1/lazy-pages.socket" ] || [ -f "$1/daemon.exit" ]; }
daemon_done() { [ -f "$1/daemon.exit" ]; }

# restore_run CASE WHICH MODE: restore CASE once. WHICH: criu|ours (lazy daemon) or full
# (plain criu restore). MODE: "verify-now" triggers the workload's verification as soon as it
# resumed (e2e: faults race the daemon's background transfer); "drain-first" waits for the
# daemon to exit before verifying (benchmark: measures the daemon's own drain); "exits": the
# workload (memhog -x) exits by itself right after resuming, the daemon must then finish.
# Sets RESUME_MS, DRAIN_MS, TOUCH_MS (times from the start of criu restore until the workload
# resumed, the daemon exited, the workload had checked every byte, if it says), VERIFY (the verify line),
# RUN (the run dir). Returns non-zero on any failure, with the reason in FAIL_WHY.
# VERIFY_WAIT (s, default 60) bounds the wait for the verify line and then the daemon's exit.
restore_run() {
	_c=$1 _which=$2 _mode=${3:-verify-now}
	RUN=$VM/$_c/run-$_which
	rm -rf "$RUN"
	mkdir -p "$RUN"
	rm -f "$VM/$_c/ctl/verify" "$VM/$_c/result"
	RESUME_MS="" DRAIN_MS="" VERIFY="" FAIL_WHY="" DPID="" DAEMON_PID=""
	_lazy=--lazy-pages
	if [ "$_which" = full ]; then
		_lazy=""
	else
		if ! daemon_start "$_which" "$RUN" "$_c" >"$RUN/start.out" 2>&1; then
			FAIL_WHY="daemon did not start: $(tail -n 1 "$RUN/start.out")"
			_restore_cleanup
			return 1
		fi
	fi
	_t0=$(now)
	_mark "daemon ready; criu restore starts"
	if ! timeout 60 criu restore -D "$VM/$_c/img" -W "$RUN" $_lazy -d \
		-o "$RUN/restore.log" -v4; then
		FAIL_WHY="criu restore failed"
		_restore_cleanup
		return 1
	fi
	_mark "criu restore returned"
	if ! wait_until 60 has_line "$_c" resumed; then
		FAIL_WHY="workload did not report resumed"
		_restore_cleanup
		return 1
	fi
	_tr=$(line_of "$_c" resumed | cut -d' ' -f2)
	RESUME_MS=$(ms "$_t0" "$_tr")
	if [ "$_mode" = drain-first ] && [ "$_which" != full ]; then
		if ! wait_until 60 daemon_done "$RUN"; then
			FAIL_WHY="daemon did not finish"
			_restore_cleanup
			return 1
		fi
	fi
	_mark "resumed seen"
	if [ "$_mode" = exits ]; then
		# The workload exits by itself right after it resumed: the daemon must finish.
		if ! wait_until 60 has_line "$_c" "exiting "; then
			FAIL_WHY="workload did not report its exit"
			_restore_cleanup
			return 1
		fi
		if ! wait_until 60 daemon_done "$RUN"; then
			FAIL_WHY="daemon did not exit after the task exited with pages pending"
			_restore_cleanup
			return 1
		fi
		_mark "daemon exited"
		_drc=$(cut -d' ' -f1 "$RUN/daemon.exit")
		DRAIN_MS=$(ms "$_t0" "$(cut -d' ' -f2 "$RUN/daemon.exit")")
		VERIFY=$(line_of "$_c" "exiting ")
		cp "$VM/$_c/result" "$RUN/result"
		wait_until 10 pid_dead "$(cat "$VM/$_c/pid")" || { FAIL_WHY="workload still running"; _restore_cleanup; return 1; }
		# Reaped too (its pid free for the next restore of the same images).
		wait_until 30 pid_gone "$(cat "$VM/$_c/pid")" || log "$_c: pid $(cat "$VM/$_c/pid") not reaped after 30 s"
		wait "$DPID" 2>/dev/null || true
		[ "$VERIFY" = "exiting ok" ] || { FAIL_WHY="workload: $VERIFY"; return 1; }
		[ "$_drc" = 0 ] || { FAIL_WHY="daemon exited with $_drc"; return 1; }
		return 0
	fi
	touch "$VM/$_c/ctl/verify"
	if ! wait_until "${VERIFY_WAIT:-60}" has_line "$_c" "verify "; then
		FAIL_WHY="workload did not report its verification"
		_restore_cleanup
		return 1
	fi
	VERIFY=$(line_of "$_c" "verify ")
	_mark "verified"
	_ta=$(echo "$VERIFY" | sed -n 's/.* at=\([0-9]*\).*/\1/p')
	TOUCH_MS=""
	[ -z "$_ta" ] || TOUCH_MS=$(ms "$_t0" "$_ta")
	if [ "$_which" != full ]; then
		if ! wait_until "${VERIFY_WAIT:-60}" daemon_done "$RUN"; then
			FAIL_WHY="daemon did not exit after all pages were in"
			_restore_cleanup
			return 1
		fi
		_drc=$(cut -d' ' -f1 "$RUN/daemon.exit")
		DRAIN_MS=$(ms "$_t0" "$(cut -d' ' -f2 "$RUN/daemon.exit")")
	else
		_drc=0
	fi
	# Optionally watch it keep working: wait for its HOLD_TICKS-th tick.
	if [ -n "${HOLD_TICKS:-}" ] && ! wait_until 60 has_line "$_c" "tick $HOLD_TICKS "; then
		FAIL_WHY="workload stopped ticking"
		_restore_cleanup
		return 1
	fi
	_mark "daemon exited"
	_alive=1
	pid_alive "$(cat "$VM/$_c/pid")" || _alive=0
	cp "$VM/$_c/result" "$RUN/result"
	kill_case "$_c"
	wait "$DPID" 2>/dev/null || true
	_mark "killed"
	case $VERIFY in
	"verify ok"*) ;;
	*) FAIL_WHY="workload: $VERIFY"; return 1 ;;
	esac
	[ "$_drc" = 0 ] || { FAIL_WHY="daemon exited with $_drc"; return 1; }
	[ "$_alive" = 1 ] || { FAIL_WHY="workload died after restore"; return 1; }
	return 0
}

# _mark WHAT: note in RUN/steps when (ms since criu restore started) a step was done.
_mark() { echo "$(ms "$_t0" "$(now)") ms: $1" >>"$RUN/steps"; }

_restore_cleanup() {
	cp "$VM/$_c/result" "$RUN/result" 2>/dev/null || true
	kill_case "$_c"
	[ -z "${DPID:-}" ] || daemon_done "$RUN" || sleep 1
	if ! daemon_done "$RUN"; then
		# The daemon is a child of the subshell DPID (or, detached, DAEMON_PID).
		_kids=""
		[ -z "${DPID:-}" ] || _kids=$(cat /proc/"$DPID"/task/*/children 2>/dev/null || true)
		for _p in $_kids ${DAEMON_PID:-}; do
			kill -KILL "$_p" 2>/dev/null || true
		done
	fi
	[ -z "${DPID:-}" ] || wait "$DPID" 2>/dev/null || true
}

# excerpt RUNDIR CASE: the end of each log of a failed run.
excerpt() {
	for _f in "$1/steps" "$1/start.out" "$1/result" "$1/daemon.out" "$1/lazy.log" "$1/restore.log" "$VM/$2/out"; do
		[ -s "$_f" ] || continue
		echo "---- $_f (last 25 lines)"
		tail -n 25 "$_f"
	done
	[ -f "$1/daemon.exit" ] && echo "---- daemon exit: $(cat "$1/daemon.exit")"
	return 0
}
