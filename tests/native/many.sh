# Many concurrent restores of one image through one criu-imgd (sourced by tests/native/
# many-test.sh and bench.sh's setup "many"; POSIX sh). Needs tests/vm/lib.sh (now, ms,
# wait_until, file_nonempty) and tests/native/shaped.sh (imgd_up_in, imgd_down: IMGD, KEY,
# LOGV) sourced, a suite's criu on PATH (native_env), ROOT and LAZYD.
#
# many_restores CASE_DIR N PORT: N restores of the image CASE_DIR/img at once, each by its
# own criu-lazyd (--image-server 127.0.0.1:PORT --image img, an empty images dir of its own
# that it fills with the metadata) and its own `criu restore --lazy-pages`, each in a pid and
# mount namespace of its own (tests/native/many-ns.sh), each verifying all its memory as
# soon as it runs. Run dirs: CASE_DIR/many/1..N. Sets MANY_WALL_MS (the first restore
# launched -> the last "verify ok"), MANY_TOTALS and MANY_RESUMES (each restore's criu
# restore start -> its "verify ok" / its "resumed", ms, one a line). 0 if every restore
# verified every byte and every criu-lazyd exited 0; else FAIL_WHY says which did not.
MANY_TIMEOUT=${MANY_TIMEOUT:-300} # seconds one restore may take, all in all
MANY_CRIU_V=${MANY_CRIU_V:-4}

many_restores() {
	_mc=$1 _mn=$2 _mp=$3
	rm -rf "$_mc/many"
	_i=1
	while [ "$_i" -le "$_mn" ]; do
		mkdir -p "$_mc/many/$_i/ctl" "$_mc/many/$_i/img"
		touch "$_mc/many/$_i/ctl/restored" "$_mc/many/$_i/ctl/verify"
		: >"$_mc/many/$_i/result"
		_i=$((_i + 1))
	done
	_pids=""
	_t0=$(now)
	_i=1
	while [ "$_i" -le "$_mn" ]; do
		timeout -s KILL "$MANY_TIMEOUT" unshare --kill-child -p -f -m --mount-proc \
			sh "$ROOT/tests/native/many-ns.sh" "$_mc" "$_mc/many/$_i" "$MANY_CRIU_V" \
			"$LAZYD" --image-server "127.0.0.1:$_mp" --image img --auth-key "$KEY" \
			"-v$LOGV" >"$_mc/many/$_i/ns.out" 2>&1 &
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
		_d=$1/many/$_i
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
# POSIX_FADV_DONTNEED), and checked: nonzero if any page of them stays resident (fincore).
# A few tries: the kernel drains only this CPU's batch of pages on their way to the LRU
# lists before it drops, and a page still in another CPU's batch stays (CI saw one).
evict() {
	for _try in 1 2 3 4 5; do
		python3 -c '
import os, sys
for f in sys.argv[1:]:
    fd = os.open(f, os.O_RDONLY)
    os.fsync(fd)
    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    os.close(fd)' "$@" || return 1
		[ "$(fincore -n -b -o RES "$@" | awk '{ n += $1 } END { print n + 0 }')" = 0 ] && return 0
		sleep 0.2
	done
	return 1
}

# pct LIST P: the P-th percentile (nearest rank) of a list of numbers, one a line.
pct() { echo "$1" | grep -v '^$' | sort -n | awk -v p="$2" '{ a[NR] = $1 }
	END { if (!NR) { print "-"; exit } i = int((NR * p + 99) / 100); if (i < 1) i = 1; print a[i] }'; }
