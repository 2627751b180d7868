# Many concurrent restores of one image through one criu-imgd (sourced by tests/native/
# many-test.sh and bench.sh's setup "many"; POSIX sh). Needs tests/vm/lib.sh (now, ms,
# wait_until, file_nonempty) and tests/native/shaped.sh (imgd_up_in, imgd_down: IMGD, KEY,
# LOGV) sourced, a suite's criu on PATH (native_env), ROOT and LAZYD.
#
# many_restores CASE_DIR N PORT: N restores of the image CASE_DIR/img at once, each by its
# own criu-lazyd (--image-server 127.0.0.1:PORT --image img, an empty images dir of its own
# that it fills with the metadata) and its own `criu restore --lazy-pages`, each in a pid and
# mount namespace of its own (tests/native/many-ns.sh), each verifying all its memory as
# soon as it runs. Run dirs: RUNS/1..N, RUNS being MANY_RUNS if set (bench.sh: on tmpfs, as
# every other setup's run dirs), else CASE_DIR/many. Sets MANY_WALL_MS (the first restore
# launched -> the last "verify ok"), MANY_TOTALS and MANY_RESUMES (each restore's criu
# restore start -> its "verify ok" / its "resumed", ms, one a line). 0 if every restore
# verified every byte and every criu-lazyd exited 0; else FAIL_WHY says which did not.
MANY_TIMEOUT=${MANY_TIMEOUT:-300} # seconds one restore may take, all in all
MANY_CRIU_V=${MANY_CRIU_V:-4}

# many_server I PORT: restore I's --image-server: 127.0.0.1:PORT, or with MANY_SERVERS (words,
# each a server list) the ((I - 1) mod count)-th of them (tests/store: instances of one store).
many_server() {
	[ -n "${MANY_SERVERS:-}" ] || { echo "127.0.0.1:$2"; return; }
	# shellcheck disable=SC2086
	set -- "$1" $MANY_SERVERS
	_ms_k=$(($1 % ($# - 1)))
	[ "$_ms_k" = 0 ] && _ms_k=$(($# - 1))
	shift "$_ms_k"
	echo "$1"
}

# many_runs CASE_DIR: where the run dirs of many_restores are.
many_runs() { echo "${MANY_RUNS:-$1/many}"; }

many_restores() {
	_mc=$1 _mn=$2 _mp=$3 _mrd=$(many_runs "$1")
	rm -rf "${_mrd:?}"
	_i=1
	while [ "$_i" -le "$_mn" ]; do
		mkdir -p "$_mrd/$_i/ctl" "$_mrd/$_i/img"
		touch "$_mrd/$_i/ctl/restored" "$_mrd/$_i/ctl/verify"
		: >"$_mrd/$_i/result"
		_i=$((_i + 1))
	done
	_pids=""
	_t0=$(now)
	_i=1
	while [ "$_i" -le "$_mn" ]; do
		timeout -s KILL "$MANY_TIMEOUT" unshare --kill-child -p -f -m --mount-proc \
			sh "$ROOT/tests/native/many-ns.sh" "$_mc" "$_mrd/$_i" "$MANY_CRIU_V" \
			"$LAZYD" --image-server "$(many_server "$_i" "$_mp")" --image "${MANY_IMAGE:-img}" \
			--auth-key "$KEY" \
			"-v$LOGV" >"$_mrd/$_i/ns.out" 2>&1 &
		_pids="$_pids $!"
		_i=$((_i + 1))
	done
	for _p in $_pids; do
		wait "$_p" || true
	done
	many_collect "$_mc" "$_mn" "$_t0"
}

# many_collect CASE_DIR N T0: check and time the N runs of many_restores (see there).
many_collect() {
	FAIL_WHY="" MANY_TOTALS="" MANY_RESUMES="" _last=0
	_i=1
	while [ "$_i" -le "$2" ]; do
		_d=$(many_runs "$1")/$_i
		_why=""
		_v=$(grep -m1 '^verify ' "$_d/result" 2>/dev/null) || _v="no verify line"
		_rc=$(cat "$_d/ns.rc" 2>/dev/null) || _rc="killed after ${MANY_TIMEOUT} s (or never ran)"
		_drc=$(cut -d' ' -f1 "$_d/daemon.exit" 2>/dev/null) || _drc="none"
		case $_v in "verify ok"*) ;; *) _why="workload: $_v" ;; esac
		[ "$_rc" = 0 ] || _why="${_why:+$_why; }$_rc"
		[ "$_drc" = 0 ] || _why="${_why:+$_why; }criu-lazyd exit: $_drc"
		if [ -n "$_why" ]; then
			FAIL_WHY="${FAIL_WHY:+$FAIL_WHY / }restore $_i: $_why"
		else
			_ts=$(sed -n 's/^restore //p' "$_d/times")
			_ta=$(echo "$_v" | sed -n 's/.* at=\([0-9]*\).*/\1/p')
			_tr=$(sed -n 's/^resumed //p' "$_d/result")
			MANY_TOTALS="$MANY_TOTALS$(ms "$_ts" "$_ta")
"
			MANY_RESUMES="$MANY_RESUMES$(ms "$_ts" "$_tr")
"
			[ "$_ta" -le "$_last" ] || _last=$_ta
		fi
		_i=$((_i + 1))
	done
	[ -z "$FAIL_WHY" ] || return 1
	MANY_WALL_MS=$(ms "$3" "$_last")
}

# many_served CASE_DIR: the pages criu-imgd sent (its session lines in CASE_DIR/imgd.log).
many_served() {
	grep -o '[0-9]* pages served' "$1/imgd.log" 2>/dev/null | awk '{ n += $1 } END { print n + 0 }'
}

# proc_kb PID FIELD: a number of /proc/PID/status (kB), e.g. VmHWM; proc_io PID FIELD: one
# of /proc/PID/io (bytes), e.g. read_bytes. Empty if the process is gone.
proc_kb() { sed -n "s/^$2:[[:space:]]*\([0-9]*\) kB/\1/p" "/proc/$1/status" 2>/dev/null; }
# proc_cpu_ms PID: the CPU time (user + system) the process used so far, in ms.
proc_cpu_ms() { awk -v hz="$(getconf CLK_TCK)" '{ print int(($14 + $15) * 1000 / hz) }' "/proc/$1/stat" 2>/dev/null; }
proc_io() { sed -n "s/^$2: *\([0-9]*\)/\1/p" "/proc/$1/io" 2>/dev/null; }

# evict FILE...: the files' pages out of the page cache (written back first, then
# POSIX_FADV_DONTNEED, from every CPU in turn: the kernel drains only the calling CPU's batch
# of pages on their way to the LRU lists first), a few times. EVICT_LEFT: the bytes of them
# still resident after (fincore): the kernel sometimes keeps a few hundred pages of a file
# just written, for reasons this test cannot see (not mapped, not open). Nonzero if more
# than half of the bytes stay.
evict() {
	EVICT_LEFT=0
	_all=$(du -cb "$@" | tail -n 1 | cut -f1)
	for _try in 1 2 3; do
		for _cpu in $(seq 0 $(($(nproc) - 1))); do
			taskset -c "$_cpu" python3 -c '
import os, sys
for f in sys.argv[1:]:
    fd = os.open(f, os.O_RDONLY)
    os.fsync(fd)
    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    os.close(fd)' "$@" || return 1
		done
		EVICT_LEFT=$(fincore -n -b -o RES "$@" | awk '{ n += $1 } END { print n + 0 }')
		[ "$EVICT_LEFT" = 0 ] && return 0
		sleep 0.2
	done
	echo "evict: $EVICT_LEFT of $_all bytes still resident" >&2
	[ "$EVICT_LEFT" -le $((_all / 2)) ]
}

# pct LIST P: the P-th percentile (nearest rank) of a list of numbers, one a line.
pct() { echo "$1" | grep -v '^$' | sort -n | awk -v p="$2" '{ a[NR] = $1 }
	END { if (!NR) { print "-"; exit } i = int((NR * p + 99) / 100); if (i < 1) i = 1; print a[i] }'; }
