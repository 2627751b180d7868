# Guest side of the VM tests of lazy_restore.so (run by vmrun.sh): guest-plugin.sh ROOT [SCENARIO...]
# Real CRIU, and no lazy-pages daemon started by hand: `criu restore --lazy-pages --lib
# build/lib/criu` with only the plugin's config file must restore, and the workload must read
# back all its memory. Also: the lazy-pages option from a CRIU config file and from an RPC
# (swrk) client's config file, as runc gives it; a daemon already listening is used; a broken
# config, a missing or failing daemon, an unsupported source fail the restore with the
# plugin's message; a failed restore stops the daemon; a non-lazy restore is unaffected; restore
# by image id from criu-imgd into an empty images dir; a dump with `publish` uploads the image
# to criu-imgd, and it restores from there by id.
# Appends "PASS|FAIL plugin-SCENARIO (lazy_restore.so) ..." to $VMRUN_RESULTS/summary (the
# format of guest-e2e.sh), a log excerpt per failure to $VMRUN_RESULTS/fail-plugin-*.txt.
set -eu
ROOT=$1
shift
. "$ROOT/tests/vm/lib.sh"
R=$VMRUN_RESULTS
LIB=$ROOT/build/lib/criu
ETC=$VM/plugin-etc
SUMMARY=$R/summary
touch "$SUMMARY"
# Private copies of the workloads: a rebuild in the shared tree during the run must not change
# the binaries between dump and restore (CRIU checks their size).
mkdir -p "$VM/wl"
cp "$WL"/memhog "$WL"/tree "$VM/wl/"
WL=$VM/wl
ALL="local defaults workdir-default tree criu-conf rpc rpc-flag rpc-unseen imgd existing nonlazy \
always bad-config no-daemon daemon-fails unsupported failed-restore publish"
[ $# -gt 0 ] || set -- $ALL

# CRIU 4.x reads inventory.img (to learn which plugins the image needs) before it loads any
# plugin, so the plugin cannot fill an empty images dir there: a restore by id then fetches
# the metadata with `criu-lazyd --fetch-only` first, and the plugin does the rest.
PREFETCH=0
case $(criu --version 2>/dev/null | sed -n 's/^Version: *//p') in
[4-9].* | [1-9][0-9].*) PREFETCH=1 ;;
esac

# prefetch IMGS SERVER IMAGE KEY: criu-lazyd --fetch-only into IMGS; its output in
# $RUN/fetch.out.
prefetch() {
	"$ROOT/build/bin/criu-lazyd" --fetch-only --image-server "$2" --image "$3" --auth-key "$4" \
		-D "$1" -v4 >"$RUN/fetch.out" 2>&1
}

record() { # record PASS|FAIL scenario detail
	echo "$1 plugin-$2 (lazy_restore.so)${3:+ $3}" | tee -a "$SUMMARY"
}

# conf NAME LINES...: write $ETC/NAME.conf, one argument a line; prints its path.
conf() {
	_f=$ETC/$1.conf
	shift
	mkdir -p "$ETC"
	: >"$_f"
	for _l in "$@"; do echo "$_l" >>"$_f"; done
	echo "$_f"
}

# new_run CASE NAME: a fresh run (work) dir; sets RUN.
new_run() {
	RUN=$VM/$1/run-$2
	rm -rf "$RUN"
	mkdir -p "$RUN"
	rm -f "$VM/$1/ctl/verify" "$VM/$1/result"
}

# crestore CASE [ARGS...]: criu restore CASE's images into $RUN, detached, logging to
# $RUN/restore.log. The plugin's config comes from $PCONF (unset: its default path).
crestore() {
	_c=$1
	shift
	if [ -n "${PCONF:-}" ]; then
		CRIU_LAZY_RESTORE_CONF=$PCONF timeout 300 criu restore -D "${IMGS:-$VM/$_c/img}" -W "$RUN" -d \
			-o "$RUN/restore.log" -v4 "$@"
	else
		env -u CRIU_LAZY_RESTORE_CONF timeout 300 criu restore -D "${IMGS:-$VM/$_c/img}" -W "$RUN" -d \
			-o "$RUN/restore.log" -v4 "$@"
	fi
}

# The pid of the daemon the plugin started, from CRIU's log ("" if none).
plugin_daemon_pid() {
	sed -n 's/.*lazy_restore: .* (pid \([0-9]*\)) listens on lazy-pages.socket.*/\1/p' \
		"$RUN/restore.log" 2>/dev/null | tail -n 1
}

# verify CASE DAEMON_LOG: the restored workload resumed and reads back all its memory; the
# daemon (pid $DPID) then exits having served one restore and killed nothing.
verify() {
	if ! wait_until 300 has_line "$1" resumed; then
		FAIL_WHY="workload did not report resumed"
		return 1
	fi
	touch "$VM/$1/ctl/verify"
	if ! wait_until 300 has_line "$1" "verify "; then
		FAIL_WHY="workload did not report its verification"
		return 1
	fi
	VERIFY=$(line_of "$1" "verify ")
	case $VERIFY in
	"verify ok"*) ;;
	*) FAIL_WHY="workload: $VERIFY"; return 1 ;;
	esac
	[ -n "${DPID:-}" ] || return 0
	if ! wait_until 300 pid_gone "$DPID"; then
		FAIL_WHY="daemon pid $DPID did not exit after all pages were in"
		return 1
	fi
	if ! grep -q "summary: .* 0 killed" "$2" 2>/dev/null; then
		FAIL_WHY="no clean summary in the daemon's log $2"
		return 1
	fi
}

# A lazy restore through the plugin, verified: lazy_ok CASE DAEMON_LOG [CRIU ARGS...]
lazy_ok() {
	_c=$1 _dlog=$2
	shift 2
	DPID=""
	if ! crestore "$_c" "$@"; then
		FAIL_WHY="criu restore failed"
		return 1
	fi
	DPID=$(plugin_daemon_pid)
	if [ -z "$DPID" ]; then
		FAIL_WHY="the plugin did not start a daemon (restore.log)"
		return 1
	fi
	# Detached: another session than ours (and CRIU's), no controlling terminal.
	_st=$(sed 's/.*) //' /proc/"$DPID"/stat 2>/dev/null || true)
	_me=$(sed 's/.*) //' /proc/$$/stat | cut -d' ' -f4)
	if [ -n "$_st" ]; then
		_sid=$(echo "$_st" | cut -d' ' -f4) _tty=$(echo "$_st" | cut -d' ' -f5)
		if [ "$_sid" = "$_me" ] || [ "$_tty" != 0 ]; then
			FAIL_WHY="daemon $DPID is not detached (session $_sid, tty $_tty)"
			return 1
		fi
	fi
	verify "$_c" "$_dlog" || return 1
	grep -q "summary: [1-9][0-9]* tasks" "$_dlog" ||
		{ FAIL_WHY="daemon log: it served no task"; return 1; }
}

# must_fail CASE PATTERN [CRIU ARGS...]: the restore fails and CRIU's log has PATTERN (grep -F)
# in a line of the plugin's; no daemon is left and the workload is not running.
must_fail() {
	_c=$1 _pat=$2
	shift 2
	if crestore "$_c" "$@"; then
		FAIL_WHY="criu restore succeeded"
		kill_case "$_c"
		return 1
	fi
	if ! grep "lazy_restore: Error: " "$RUN/restore.log" | grep -qF -- "$_pat"; then
		FAIL_WHY="restore.log lacks the plugin's message: $_pat"
		return 1
	fi
	MSG=$(grep -m1 "lazy_restore: Error: " "$RUN/restore.log" | sed 's/.*lazy_restore: Error: //')
	if pgrep -f "criu-lazyd -D $VM/$_c/img" >/dev/null; then
		FAIL_WHY="a criu-lazyd is left running"
		return 1
	fi
	if ! pid_gone "$(cat "$VM/$_c/pid")"; then
		FAIL_WHY="the workload runs after a failed restore"
		return 1
	fi
}

# The workload shared by most scenarios, dumped once.
MAIN=pmem
main_case() {
	[ -f "$VM/$MAIN/dumped" ] && return 0
	wl_start "$MAIN" memhog -m 16 -s 21 && wl_dump "$MAIN" && touch "$VM/$MAIN/dumped"
}

s_local() {
	main_case || { FAIL_WHY="workload start or criu dump failed"; return 1; }
	new_run "$MAIN" local
	PCONF=$(conf local "# every key a local restore uses" "source local" \
		"log $RUN/lazyd.log" "verbosity 4" "fill uffd" "timeout 60")
	lazy_ok "$MAIN" "$RUN/lazyd.log" --lazy-pages --lib "$LIB" || return 1
	grep -q "lazy restore (lazy-pages on the command line)" "$RUN/restore.log" ||
		{ FAIL_WHY="restore.log: no detection line"; return 1; }
	DETAIL="$(grep -m1 'summary: 1 tasks' "$RUN/lazyd.log" | sed 's/.*summary: //' | cut -c1-90)"
	kill_case "$MAIN"
}

s_defaults() {
	# No config file at all: local images, criu-lazyd found beside the plugin, criu-lazyd.log
	# in the work dir.
	main_case || { FAIL_WHY="workload start or criu dump failed"; return 1; }
	[ ! -e /etc/criu/lazy-restore.conf ] || { FAIL_WHY="/etc/criu/lazy-restore.conf exists"; return 1; }
	new_run "$MAIN" defaults
	PCONF=""
	lazy_ok "$MAIN" "$RUN/criu-lazyd.log" --lazy-pages --lib "$LIB" || return 1
	kill_case "$MAIN"
}

s_workdir_default() {
	# The quick start's command line: no -W, so the work dir (socket, daemon log) is the
	# images dir.
	main_case || { FAIL_WHY="workload start or criu dump failed"; return 1; }
	new_run "$MAIN" workdir-default
	rm -f "$VM/$MAIN/img/criu-lazyd.log"
	DPID=""
	if ! env -u CRIU_LAZY_RESTORE_CONF timeout 300 criu restore -D "$VM/$MAIN/img" -d \
		-o "$RUN/restore.log" -v4 --lazy-pages --lib "$LIB"; then
		FAIL_WHY="criu restore failed"
		return 1
	fi
	DPID=$(plugin_daemon_pid)
	[ -n "$DPID" ] || { FAIL_WHY="the plugin did not start a daemon (restore.log)"; return 1; }
	verify "$MAIN" "$VM/$MAIN/img/criu-lazyd.log" || return 1
	grep -q "work dir $VM/$MAIN/img\$" "$RUN/restore.log" ||
		{ FAIL_WHY="restore.log: the work dir is not the images dir"; return 1; }
	rm -f "$VM/$MAIN/img/criu-lazyd.log"
	kill_case "$MAIN"
}

s_tree() {
	# A process tree with threads: one uffd per task over the socket the plugin set up.
	wl_start ptree tree -n 3 -m 2 -t 4 && wl_dump ptree ||
		{ FAIL_WHY="workload start or criu dump failed"; return 1; }
	new_run ptree tree
	PCONF=$(conf tree "log lazyd.log" "verbosity 3")
	lazy_ok ptree "$RUN/lazyd.log" --lazy-pages --lib "$LIB" || return 1
	DETAIL="$(grep -m1 'summary: ' "$RUN/lazyd.log" | sed 's/.*summary: //' | cut -c1-60)"
	kill_case ptree
}

s_criu_conf() {
	# What criu.conf.example tells users: lazy-pages and lib in a CRIU config file, a plain
	# `criu restore` command line.
	main_case || { FAIL_WHY="workload start or criu dump failed"; return 1; }
	new_run "$MAIN" criu-conf
	_cc=$(conf criu "# CRIU options" "lazy-pages" "lib $LIB")
	PCONF=$(conf criu-conf "log $RUN/lazyd.log" "verbosity 3")
	export CRIU_CONFIG_FILE="$_cc"
	lazy_ok "$MAIN" "$RUN/lazyd.log"
	_rc=$?
	unset CRIU_CONFIG_FILE
	[ "$_rc" = 0 ] || return 1
	grep -q "lazy restore (lazy-pages in $_cc:2)" "$RUN/restore.log" ||
		{ FAIL_WHY="restore.log: not detected from $_cc"; return 1; }
	kill_case "$MAIN"
}

# rpc_restore CONFIG_FILE|- LAZY(0|1) [WORDS...]: restore $MAIN into $RUN through CRIU's RPC
# (criu swrk), as runc does. WORDS end up on the client's command line (runc's flags).
rpc_restore() {
	CRIU_LAZY_RESTORE_CONF=$PCONF /usr/bin/python3 - "$VM/$MAIN/img" "$RUN" "$@" \
		>"$RUN/rpc.out" 2>&1 <<'EOF'
import os, shutil, sys
import pycriu
img, run, cfg, lazy = sys.argv[1:5]
c = pycriu.criu()
c.use_binary(shutil.which('criu'))  # the CRIU under test, as runc finds it
c.opts.images_dir_fd = os.open(img, os.O_RDONLY | os.O_DIRECTORY)
c.opts.work_dir_fd = os.open(run, os.O_RDONLY | os.O_DIRECTORY)
c.opts.log_file = 'restore.log'
c.opts.log_level = 4
c.opts.lazy_pages = lazy == '1'
if cfg != '-':
    c.opts.config_file = cfg
try:
    r = c.restore()
except Exception as e:
    print('RPC restore failed:', e)
    sys.exit(1)
print('restored, pid', r.pid)
EOF
}

s_rpc() {
	# As runc with /etc/criu/runc.conf: options by RPC, lazy-pages and lib in the request's
	# config file.
	main_case || { FAIL_WHY="workload start or criu dump failed"; return 1; }
	new_run "$MAIN" rpc
	_rc=$(conf runc "lazy-pages" "lib $LIB")
	PCONF=$(conf rpc "log $RUN/lazyd.log" "verbosity 3")
	DPID=""
	rpc_restore "$_rc" 0 || { FAIL_WHY="RPC restore failed: $(tail -n 1 "$RUN/rpc.out")"; return 1; }
	DPID=$(plugin_daemon_pid)
	[ -n "$DPID" ] || { FAIL_WHY="the plugin did not start a daemon (restore.log)"; return 1; }
	verify "$MAIN" "$RUN/lazyd.log" || return 1
	grep -q "lazy restore (lazy-pages in $_rc:1)" "$RUN/restore.log" ||
		{ FAIL_WHY="restore.log: not detected from the RPC config file"; return 1; }
	kill_case "$MAIN"
}

s_rpc_flag() {
	# As `runc restore --lazy-pages`: lazy_pages set in the RPC request itself (invisible to
	# plugins), the flag on the client's command line; the plugin dir from a CRIU config.
	main_case || { FAIL_WHY="workload start or criu dump failed"; return 1; }
	new_run "$MAIN" rpc-flag
	_rc=$(conf rpc-lib "lib $LIB")
	PCONF=$(conf rpc-flag "log $RUN/lazyd.log" "verbosity 3")
	DPID=""
	rpc_restore "$_rc" 1 restore --lazy-pages ctr ||
		{ FAIL_WHY="RPC restore failed: $(tail -n 1 "$RUN/rpc.out")"; return 1; }
	DPID=$(plugin_daemon_pid)
	[ -n "$DPID" ] || { FAIL_WHY="the plugin did not start a daemon (restore.log)"; return 1; }
	verify "$MAIN" "$RUN/lazyd.log" || return 1
	grep -q "lazy restore (lazy-pages on the command line of the RPC client" "$RUN/restore.log" ||
		{ FAIL_WHY="restore.log: not detected from the client's command line"; return 1; }
	kill_case "$MAIN"
}

s_rpc_unseen() {
	# The documented limit: lazy_pages in the RPC request only, nothing visible. CRIU cannot
	# connect and fails; the plugin's log says why and what to do.
	main_case || { FAIL_WHY="workload start or criu dump failed"; return 1; }
	new_run "$MAIN" rpc-unseen
	_rc=$(conf rpc-lib "lib $LIB")
	PCONF=$(conf rpc-unseen "log $RUN/lazyd.log")
	DPID=""
	if rpc_restore "$_rc" 1; then
		FAIL_WHY="the RPC restore succeeded"
		kill_case "$MAIN"
		return 1
	fi
	grep -q "lazy_restore: .*If it was meant to be lazy (lazy_pages in the RPC request), the plugin could not see that" \
		"$RUN/restore.log" || { FAIL_WHY="restore.log: no hint from the plugin"; return 1; }
	pid_gone "$(cat "$VM/$MAIN/pid")" || { FAIL_WHY="the workload runs"; return 1; }
	DETAIL="CRIU: $(grep -m1 'Error' "$RUN/restore.log" | sed 's/^([0-9. ]*) //' | cut -c1-70)"
}

s_always() {
	# `lazy always` and a plain restore: the daemon starts, nobody connects, it is stopped
	# at the end, and the restore is fine.
	main_case || { FAIL_WHY="workload start or criu dump failed"; return 1; }
	new_run "$MAIN" always
	PCONF=$(conf always "lazy always" "log $RUN/lazyd.log")
	DPID=""
	crestore "$MAIN" --lib "$LIB" || { FAIL_WHY="criu restore failed"; return 1; }
	_d=$(plugin_daemon_pid)
	[ -n "$_d" ] || { FAIL_WHY="no daemon started on lazy always"; return 1; }
	grep -q "stopping the daemon (pid $_d): no restore connected to it" "$RUN/restore.log" ||
		{ FAIL_WHY="restore.log: the idle daemon was not stopped"; return 1; }
	! grep -q "did not stop on SIGTERM" "$RUN/restore.log" ||
		{ FAIL_WHY="the daemon needed a SIGKILL"; return 1; }
	wait_until 30 pid_gone "$_d" || { FAIL_WHY="daemon $_d still runs"; return 1; }
	verify "$MAIN" "" || return 1
	kill_case "$MAIN"
}

s_imgd() {
	# Restore by image id: the dump is served by criu-imgd (loopback, with a key) and the
	# restore starts from an EMPTY images dir with only the plugin's config: the plugin fetches
	# the metadata images (pages files sparse: no lazy data) and criu-lazyd gets the pages.
	main_case || { FAIL_WHY="workload start or criu dump failed"; return 1; }
	_imgd=$ROOT/build/bin/criu-imgd
	[ -x "$_imgd" ] || { FAIL_WHY="no $_imgd (make)"; return 1; }
	new_run "$MAIN" imgd
	head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$RUN/key"
	chmod 600 "$RUN/key"
	if ! "$_imgd" -D "$VM/$MAIN/img" --address 127.0.0.1 --port 27127 --auth-key "$RUN/key" \
		-o "$RUN/imgd.log" -v4 -d --pidfile "$RUN/imgd.pid"; then
		FAIL_WHY="criu-imgd did not start"
		return 1
	fi
	# A wrong key, an unknown id: the restore fails with the plugin's message, nothing fetched.
	_good=$RUN _msgs=""
	head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$_good/badkey"
	chmod 600 "$_good/badkey"
	for _bad in "badkey img authentication failed" "key nosuch no such image"; do
		set -- $_bad
		new_run "$MAIN" "imgd-$1-$2"
		IMGS=$RUN/img
		mkdir -p "$IMGS"
		PCONF=$(conf imgd-bad "source image-server 127.0.0.1:27127" "image $2" \
			"auth-key $_good/$1" "log $RUN/lazyd.log")
		if [ $PREFETCH = 1 ]; then
			if prefetch "$IMGS" 127.0.0.1:27127 "$2" "$_good/$1"; then
				FAIL_WHY="criu-lazyd --fetch-only succeeded ($1, $2)"
				kill "$(cat "$_good/imgd.pid")" 2>/dev/null || true
				return 1
			fi
			MSG=$(grep -m1 "restore by image id: fetching image $2 from 127.0.0.1:27127 into $IMGS failed: server:" \
				"$RUN/fetch.out") ||
				{ FAIL_WHY="criu-lazyd --fetch-only: no clear message ($1, $2)"; IMGS=""; return 1; }
		elif ! must_fail "$MAIN" "restore by image id: fetching image $2 from criu-imgd 127.0.0.1:27127 into $IMGS failed: server:" \
			--lazy-pages --lib "$LIB"; then
			IMGS=""
			kill "$(cat "$_good/imgd.pid")" 2>/dev/null || true
			return 1
		fi
		[ -z "$(ls -A "$IMGS")" ] ||
			{ FAIL_WHY="files left after a failed fetch ($1, $2)"; IMGS=""; return 1; }
		_msgs="${_msgs:+$_msgs | }${MSG##*failed: }"
	done
	set --
	RUN=$_good
	IMGS=$RUN/img
	mkdir -p "$IMGS"
	PCONF=$(conf imgd "source image-server 127.0.0.1:27127" "image img" "auth-key $RUN/key" \
		"log $RUN/lazyd.log" "verbosity 3")
	_rc=0
	[ $PREFETCH = 0 ] || prefetch "$IMGS" 127.0.0.1:27127 img "$RUN/key" ||
		{ FAIL_WHY="criu-lazyd --fetch-only failed: $(tail -n 1 "$RUN/fetch.out")"; _rc=1; }
	[ $_rc != 0 ] || lazy_ok "$MAIN" "$RUN/lazyd.log" --lazy-pages --lib "$LIB" || _rc=1
	IMGS=""
	kill "$(cat "$RUN/imgd.pid")" 2>/dev/null || true
	[ "$_rc" = 0 ] || return 1
	grep -q "had no images: fetched the [0-9]* metadata files (.*) of image img" \
		"$RUN/restore.log" "$RUN/fetch.out" ||
		{ FAIL_WHY="restore.log: the plugin did not fetch the images"; return 1; }
	grep -q -- "--image-server 127.0.0.1:27127 --image img" "$RUN/restore.log" ||
		{ FAIL_WHY="restore.log: the daemon was not started for the image server"; return 1; }
	[ -s "$RUN/img/inventory.img" ] && [ -s "$RUN/img/pstree.img" ] ||
		{ FAIL_WHY="no fetched inventory.img/pstree.img in $RUN/img"; return 1; }
	# The lazy data never came with the metadata: the pages files are mostly holes.
	_src=$(du -k "$VM/$MAIN"/img/pages-*.img | awk '{s += $1} END {print s}')
	_dst=$(du -k "$RUN"/img/pages-*.img | awk '{s += $1} END {print s}')
	[ "$_dst" -lt "$_src" ] ||
		{ FAIL_WHY="pages files fetched whole ($_dst KiB of $_src KiB)"; return 1; }
	DETAIL="$(sed -n 's/.*\(fetched the [0-9]* metadata files ([0-9]* bytes)\).*/\1/p' \
		"$RUN/restore.log" "$RUN/fetch.out" | head -1)$([ $PREFETCH = 0 ] || echo " by criu-lazyd --fetch-only"); pages files $_dst of $_src KiB; refused: $_msgs"
	kill_case "$MAIN"
}

s_existing() {
	# A daemon started by hand already listens: the plugin leaves it be and CRIU uses it.
	main_case || { FAIL_WHY="workload start or criu dump failed"; return 1; }
	new_run "$MAIN" existing
	daemon_start ours "$RUN" "$MAIN" || { FAIL_WHY="criu-lazyd did not start by hand"; return 1; }
	_sub=$DPID
	PCONF=$(conf existing "log $RUN/never.log")
	if ! crestore "$MAIN" --lazy-pages --lib "$LIB"; then
		FAIL_WHY="criu restore failed"
		_restore_cleanup
		return 1
	fi
	grep -q "a daemon already listens on $RUN/lazy-pages.socket: using it" "$RUN/restore.log" ||
		{ FAIL_WHY="restore.log: the plugin did not see the daemon"; return 1; }
	[ -z "$(plugin_daemon_pid)" ] && [ ! -e "$RUN/never.log" ] ||
		{ FAIL_WHY="the plugin started a second daemon"; return 1; }
	DPID=""
	verify "$MAIN" "$RUN/lazy.log" || return 1
	wait_until 300 daemon_done "$RUN" || { FAIL_WHY="the hand-started daemon did not exit"; return 1; }
	[ "$(cut -d' ' -f1 "$RUN/daemon.exit")" = 0 ] || { FAIL_WHY="daemon exit $(cat "$RUN/daemon.exit")"; return 1; }
	wait "$_sub" 2>/dev/null || true
	kill_case "$MAIN"
}

s_nonlazy() {
	# Plugin loaded, plain restore: untouched, even with a broken config (never read).
	main_case || { FAIL_WHY="workload start or criu dump failed"; return 1; }
	new_run "$MAIN" nonlazy
	PCONF=$(conf nonlazy "fill turbo" "no-such-key 1")
	DPID=""
	crestore "$MAIN" --lib "$LIB" || { FAIL_WHY="criu restore failed"; return 1; }
	grep -q "lazy_restore: not a lazy restore" "$RUN/restore.log" ||
		{ FAIL_WHY="restore.log: the plugin was not loaded"; return 1; }
	! grep -q "lazy_restore: Error" "$RUN/restore.log" || { FAIL_WHY="plugin error"; return 1; }
	[ ! -e "$RUN/lazy-pages.socket" ] && [ ! -e "$RUN/criu-lazyd.log" ] ||
		{ FAIL_WHY="a daemon was started"; return 1; }
	verify "$MAIN" "" || return 1
	kill_case "$MAIN"
}

s_bad_config() {
	main_case || { FAIL_WHY="workload start or criu dump failed"; return 1; }
	new_run "$MAIN" bad-config
	PCONF=$(conf bad "# a typo on line 3" "verbosity 3" "fill turbo")
	must_fail "$MAIN" "$PCONF:3: key 'fill': bad value 'turbo' (expected auto, kmod or uffd)" \
		--lazy-pages --lib "$LIB" || return 1
	new_run "$MAIN" bad-config2
	PCONF=$(conf bad2 "sauce local")
	must_fail "$MAIN" "$PCONF:1: unknown key 'sauce'" --lazy-pages --lib "$LIB" || return 1
	new_run "$MAIN" bad-config3
	PCONF=$ETC/does-not-exist.conf
	must_fail "$MAIN" "$PCONF: cannot read: No such file or directory" \
		--lazy-pages --lib "$LIB" || return 1
	DETAIL="e.g. \"$MSG\""
}

s_no_daemon() {
	main_case || { FAIL_WHY="workload start or criu dump failed"; return 1; }
	new_run "$MAIN" no-daemon
	PCONF=$(conf no-daemon "daemon /nonexistent/bin/criu-lazyd")
	must_fail "$MAIN" "daemon /nonexistent/bin/criu-lazyd (key 'daemon', $PCONF:1) cannot be run: No such file or directory" \
		--lazy-pages --lib "$LIB" || return 1
	DETAIL="\"$MSG\""
}

s_daemon_fails() {
	# The daemon exits before it listens: its own words end up in the restore's error.
	main_case || { FAIL_WHY="workload start or criu dump failed"; return 1; }
	new_run "$MAIN" daemon-fails
	mkdir -p "$ETC"
	printf '#!/bin/sh\necho "criu-lazyd: cannot serve: test failure" >&2\nexit 3\n' >"$ETC/fail-lazyd"
	chmod +x "$ETC/fail-lazyd"
	PCONF=$(conf daemon-fails "daemon $ETC/fail-lazyd" "log fail.log")
	must_fail "$MAIN" "exited before it listened on lazy-pages.socket: criu-lazyd: cannot serve: test failure (log: fail.log)" \
		--lazy-pages --lib "$LIB" || return 1
	DETAIL="\"$MSG\""
}

s_unsupported() {
	# Until criu-lazyd has --image-server / --page-server, these sources are refused clearly.
	main_case || { FAIL_WHY="workload start or criu dump failed"; return 1; }
	if "$OURS_LAZY" --help | grep -q -- --image-server; then
		DETAIL="skipped: criu-lazyd has --image-server now"
		return 0
	fi
	new_run "$MAIN" unsupported
	PCONF=$(conf unsupported "source image-server 127.0.0.1:7070" "image web-1")
	must_fail "$MAIN" "is not supported yet" --lazy-pages --lib "$LIB" || return 1
	DETAIL="\"$MSG\""
}

s_failed_restore() {
	# A restore that fails after the plugin started the daemon: the plugin stops it. A copy of
	# the images without the tasks' core images: criu-lazyd does not read them, CRIU does.
	main_case || { FAIL_WHY="workload start or criu dump failed"; return 1; }
	rm -rf "$VM/pbroken"
	mkdir -p "$VM/pbroken"
	cp -r "$VM/$MAIN/img" "$VM/pbroken/img"
	cp "$VM/$MAIN/pid" "$VM/pbroken/pid"
	rm -f "$VM/pbroken/img"/core-*.img
	new_run pbroken failed
	PCONF=$(conf failed "log $RUN/lazyd.log")
	if crestore pbroken --lazy-pages --lib "$LIB"; then
		FAIL_WHY="the restore succeeded"
		return 1
	fi
	DPID=$(plugin_daemon_pid)
	[ -n "$DPID" ] || { FAIL_WHY="the restore failed before the plugin started a daemon"; return 1; }
	grep -q "stopping the daemon (pid $DPID): the restore failed" "$RUN/restore.log" ||
		{ FAIL_WHY="restore.log: the plugin did not stop its daemon"; return 1; }
	! grep -q "did not stop on SIGTERM" "$RUN/restore.log" ||
		{ FAIL_WHY="the daemon needed a SIGKILL"; return 1; }
	wait_until 30 pid_gone "$DPID" || { FAIL_WHY="daemon $DPID still runs"; return 1; }
	DETAIL="daemon $DPID stopped; CRIU: $(grep -m1 'Error' "$RUN/restore.log" | cut -c1-80)"
	DPID=""
}

s_publish() {
	# A dump with `publish` uploads the image to criu-imgd (--root, --accept-uploads, a key);
	# the task is then restored from criu-imgd by id into an empty images dir.
	_imgd=$ROOT/build/bin/criu-imgd
	[ -x "$_imgd" ] || { FAIL_WHY="no $_imgd (make)"; return 1; }
	wl_start ppub memhog -m 4 -s 5 || { FAIL_WHY="workload start failed"; return 1; }
	new_run ppub publish
	head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$RUN/key"
	chmod 600 "$RUN/key"
	# the publishers' key (--upload-key): it uploads, the readers' key (--auth-key) reads
	head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$RUN/upkey"
	chmod 600 "$RUN/upkey"
	mkdir -p "$RUN/root"
	if ! "$_imgd" --root "$RUN/root" --accept-uploads --address 127.0.0.1 --port 27128 \
		--auth-key "$RUN/key" --upload-key "$RUN/upkey" -o "$RUN/imgd.log" -v4 -d \
		--pidfile "$RUN/imgd.pid"; then
		FAIL_WHY="criu-imgd did not start"
		return 1
	fi
	PCONF=$(conf publish "source image-server 127.0.0.1:27128" "image pub1" \
		"auth-key $RUN/key" "publish 127.0.0.1:27128" "publish-key $RUN/upkey" \
		"log $RUN/lazyd.log" "verbosity 3")
	_pid=$(cat "$VM/ppub/pid")
	if ! CRIU_LAZY_RESTORE_CONF=$PCONF timeout 300 criu dump -t "$_pid" -D "$VM/ppub/img" \
		-o "$VM/ppub/dump.log" -v4 --lib "$LIB"; then
		FAIL_WHY="the dump failed: $(grep -m1 Error "$VM/ppub/dump.log" | cut -c1-120)"
		kill "$(cat "$RUN/imgd.pid")" 2>/dev/null || true
		return 1
	fi
	wait "$_pid" 2>/dev/null || true
	touch "$VM/ppub/ctl/restored"
	_pub=$(sed -n 's/.*lazy_restore: \(published image pub1 .*\)/\1/p' "$VM/ppub/dump.log")
	if [ -z "$_pub" ] || [ ! -s "$RUN/root/pub1/inventory.img" ]; then
		FAIL_WHY="dump.log: not published ($(grep -m1 'lazy_restore: Error' "$VM/ppub/dump.log"))"
		kill "$(cat "$RUN/imgd.pid")" 2>/dev/null || true
		return 1
	fi
	IMGS=$RUN/img
	mkdir -p "$IMGS"
	_rc=0
	[ $PREFETCH = 0 ] || prefetch "$IMGS" 127.0.0.1:27128 pub1 "$RUN/key" ||
		{ FAIL_WHY="criu-lazyd --fetch-only failed: $(tail -n 1 "$RUN/fetch.out")"; _rc=1; }
	[ $_rc != 0 ] || lazy_ok ppub "$RUN/lazyd.log" --lazy-pages --lib "$LIB" || _rc=1
	IMGS=""
	kill "$(cat "$RUN/imgd.pid")" 2>/dev/null || true
	[ "$_rc" = 0 ] || return 1
	grep -q "had no images: fetched the [0-9]* metadata files (.*) of image pub1" \
		"$RUN/restore.log" "$RUN/fetch.out" ||
		{ FAIL_WHY="restore.log: pub1 was not fetched"; return 1; }
	DETAIL="$_pub; restored by id from an empty dir"
	kill_case ppub
}

for s in "$@"; do
	fn=s_$(echo "$s" | tr - _)
	if ! command -v "$fn" >/dev/null 2>&1; then
		record FAIL "$s" "unknown scenario"
		continue
	fi
	FAIL_WHY="" DETAIL="" MSG="" DPID="" RUN="" IMGS=""
	t0=$(now)
	if "$fn"; then
		record PASS "$s" "$(ms "$t0" "$(now)") ms${DETAIL:+; $DETAIL}"
	else
		record FAIL "$s" "$FAIL_WHY"
		{
			echo "scenario $s: $FAIL_WHY"
			for f in "$RUN/restore.log" "$RUN/lazyd.log" "$RUN/criu-lazyd.log" "$RUN/rpc.out" \
				"$VM/$MAIN/out" "$VM/$MAIN/result"; do
				[ -s "$f" ] || continue
				echo "---- $f (last 30 lines)"
				tail -n 30 "$f"
			done
		} >"$R/fail-plugin-$s.txt" 2>&1
		for c in "$MAIN" ptree ppub; do
			[ -f "$VM/$c/pid" ] && kill_case "$c" 2>/dev/null || true
		done
		[ -n "${DPID:-}" ] && kill "$DPID" 2>/dev/null || true
	fi
	if [ -n "$RUN" ] && [ -d "$RUN" ]; then
		mkdir -p "$R/plugin"
		cp -r "$RUN" "$R/plugin/$s" 2>/dev/null || true
	fi
done
! grep -q '^FAIL plugin-' "$SUMMARY"
