#!/bin/sh
# runc lazy restore for real, natively, with a Debian suite's CRIU and runc:
#   sh tests/native/runc.sh SUITE          (SUITE: trixie or sid; as root, from the project tree)
# The suite's root (tests/native/roots.sh, /var/lib/criu-lazy/roots/SUITE) becomes the root of a
# private mount namespace (shared/notes/native-criu.md, "runc"); the root's own files are never
# changed: /run and /tmp are tmpfs, the project is bound at /tmp/src. Scenarios:
#   runc-lazyd (criu|ours)  a container (64 MB memhog, static) checkpointed by runc, restored by
#                           `runc restore -d --lazy-pages` with a lazy-pages daemon started by
#                           hand in the work dir: that suite's `criu lazy-pages` (proves the test),
#                           then build/bin/criu-lazyd; memory verified inside the container.
#   runc-plugin             the same, no daemon by hand: lazy_restore.so (loaded through the
#                           container's CRIU config file, annotation org.criu.config) starts
#                           criu-lazyd; memory verified, the daemon's log shows the pages served.
#   runc-imgd               two network namespaces joined by a veth pair ("hosts" src and dst):
#                           criu-imgd --root --accept-uploads in src, the container checkpointed
#                           in src with `publish` (the plugin uploads the image), the source's
#                           images deleted; in dst, an EMPTY images dir: `runc restore` alone
#                           must fail there (runc reads descriptors.json from the images dir
#                           before it runs CRIU, and CRIU 4.x reads inventory.img before it loads
#                           plugins), so `criu-lazyd --fetch-only` fetches the metadata by id,
#                           then `runc restore --lazy-pages` with the plugin (`source
#                           image-server`, `image ID`) gets the pages from criu-imgd.
# The container has its own network namespace (runc spec's default; CRIU restores it); runc
# itself runs in src or dst through nsenter --net. Its init is pid 1 of its own pid namespace.
# Prints "PASS|FAIL runc-X (...) detail" per scenario (a log excerpt after a FAIL), then
# "N passed, N failed"; exit 0 only if none failed. Logs: build/native/runc-SUITE/.
# Env: BREAK=corrupt (flip a byte of every checkpoint's memory image before restoring: every
# scenario must FAIL), BREAK=key (runc-imgd's destination gets a wrong key: it must FAIL),
# BREAK=noplugin (runc-plugin's restore without the plugin's dir: it must FAIL), BREAK=imgd
# (runc-imgd: criu-imgd killed as soon as runc restore returns, pages still pending: it must
# FAIL; memhog then hangs on its fault, as the daemon cannot kill it, see the daemon's log),
# NATIVE_ROOTS (default /var/lib/criu-lazy/roots), MB (memhog size, default 64).
set -u

# ---- outside: build the workload, enter the suite's root ---------------------------------------
if [ "${1:-}" != --inner ]; then
	SUITE=${1:-}
	case $SUITE in
	'' | *[!a-z0-9]*) echo "usage: sh tests/native/runc.sh SUITE   (trixie, sid)" >&2; exit 2 ;;
	esac
	[ "$(id -u)" = 0 ] || { echo "runc.sh: run as root" >&2; exit 2; }
	PROJECT=$(cd "$(dirname "$0")/../.." && pwd)
	NROOT=${NATIVE_ROOTS:-/var/lib/criu-lazy/roots}/$SUITE
	for f in usr/sbin/criu usr/sbin/runc usr/bin/python3 usr/bin/nsenter; do
		[ -x "$NROOT/$f" ] || { echo "runc.sh: no $NROOT/$f (sh tests/native/roots.sh $SUITE)" >&2; exit 2; }
	done
	for f in build/bin/criu-lazyd build/bin/criu-imgd build/lib/criu/lazy_restore.so; do
		[ -e "$PROJECT/$f" ] || { echo "runc.sh: no $f (make)" >&2; exit 2; }
	done
	mkdir -p "$PROJECT/build/native"
	# The container's workload: static (the container's rootfs holds nothing else).
	_wl=$PROJECT/build/native/runc-memhog
	if ! cc -static -O2 -std=gnu11 -D_GNU_SOURCE -o "$_wl.$$" "$PROJECT/tests/workloads/memhog.c"; then
		rm -f "$_wl.$$"
		echo "runc.sh: cannot build the static memhog" >&2
		exit 2
	fi
	mv -f "$_wl.$$" "$_wl"
	# A private mount namespace whose root is the suite's root (CRIU checks the mount tree: a
	# chroot is not enough). Mount points used in the root exist there already (/mnt, /run,
	# /tmp); /tmp/src is made on the tmpfs.
	exec unshare -m --propagation private sh -c '
		set -e
		R=$1 P=$2
		shift 2
		mount --bind "$R" "$R"
		for m in proc sys dev; do mount --rbind "/$m" "$R/$m"; done
		mount -t tmpfs -o mode=0755 tmpfs "$R/run"
		mount -t tmpfs -o mode=1777 tmpfs "$R/tmp"
		mkdir "$R/tmp/src"
		mount --bind "$P" "$R/tmp/src"
		cd "$R"
		pivot_root . mnt
		umount -l /mnt
		cd /
		exec /bin/sh /tmp/src/tests/native/runc.sh --inner "$@"' sh "$NROOT" "$PROJECT" "$SUITE"
	exit 2
fi

# ---- inside the suite's root -------------------------------------------------------------------
SUITE=$2
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
unset CRIU_LAZY_RESTORE_CONF CRIU_CONFIG_FILE
P=/tmp/src                       # the project
T=/tmp/t                         # scratch (tmpfs): bundles, images, work dirs
# A private copy of our binaries: a rebuild in the tree during the run changes nothing here.
# The plugin finds criu-lazyd beside it (PREFIX/lib/criu -> PREFIX/bin).
mkdir -p "$T/prefix/bin" "$T/prefix/lib/criu"
cp "$P/build/bin/criu-lazyd" "$P/build/bin/criu-imgd" "$T/prefix/bin/"
cp "$P/build/lib/criu/lazy_restore.so" "$T/prefix/lib/criu/"
LAZYD=$T/prefix/bin/criu-lazyd
IMGD=$T/prefix/bin/criu-imgd
PLUGIN_DIR=$T/prefix/lib/criu
LOGS=$P/build/native/runc-$SUITE # what is kept: logs and results
MB=${MB:-64}
BREAK=${BREAK:-}
TAG=$SUITE-$$                    # container ids, cgroups and netns names are host-wide
NS_SRC=crl-src-$TAG NS_DST=crl-dst-$TAG
rm -rf "$LOGS"
mkdir -p "$LOGS"
CRIU_VERSION=$(criu --version | sed -n 's/^Version: *//p')
RUNC_VERSION=$(runc --version | sed -n 's/^runc version *//p')
NPASS=0 NFAIL=0
CTRS="" BGPIDS="" DPIDS=""

now() { date +%s%N; }
ms() { echo $(( ($2 - $1) / 1000000 )); }

# wait_until TIMEOUT_S CMD...: poll CMD every 50 ms.
wait_until() {
	_wu_n=$(( $1 * 20 ))
	shift
	while ! "$@"; do
		_wu_n=$((_wu_n - 1))
		[ "$_wu_n" -gt 0 ] || return 1
		sleep 0.05
	done
}
pid_gone() { [ ! -e "/proc/$1" ] || [ "$(cut -d' ' -f3 "/proc/$1/stat" 2>/dev/null)" = Z ]; }
file_has() { [ -f "$1" ] && grep -q -- "$2" "$1"; }
nonempty() { [ -s "$1" ]; }
# line_or_dead FILE RE: FILE has a line matching RE, or the container's init ($CPID) is gone.
line_or_dead() { file_has "$1" "$2" || pid_gone "$CPID"; }

# Only what this run started is ever signalled, and only while it is still that process (the
# pid of one that exited may be anyone's by now): a daemon whose command line names this run's
# scratch dir, a background subshell whose parent is this shell.
is_our_daemon() { { tr '\0' ' ' <"/proc/$1/cmdline"; } 2>/dev/null | grep -q " $T/\|^$T/"; }
is_our_child() { [ "$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f2)" = "$$" ]; }
stop_daemons() {
	_sd=""
	for _p in $DPIDS; do
		is_our_daemon "$_p" && kill -TERM "$_p" 2>/dev/null && _sd="$_sd $_p"
	done
	[ -z "$_sd" ] || sleep 0.3
	for _p in $_sd; do
		is_our_daemon "$_p" && kill -KILL "$_p" 2>/dev/null
	done
	DPIDS=""
}

cleanup() {
	trap - EXIT INT TERM HUP
	for _c in $CTRS; do
		runc delete -f "$_c" >/dev/null 2>&1 || true
	done
	stop_daemons
	for _p in $BGPIDS; do
		is_our_child "$_p" && kill -KILL "$_p" 2>/dev/null
	done
	ip netns del "$NS_SRC" 2>/dev/null || true
	ip netns del "$NS_DST" 2>/dev/null || true
	# Keep the logs (not the images, not the bundles).
	(cd "$T" 2>/dev/null && find . \( -name '*.log' -o -name result -o -name '*.out' -o \
		-name '*.conf' -o -name config.json -o -name steps -o -name 'daemon.exit' \) \
		-type f 2>/dev/null | while read -r _f; do
			mkdir -p "$LOGS/$(dirname "$_f")"
			cp "$_f" "$LOGS/$_f" 2>/dev/null
		done) || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

record() { # record PASS|FAIL NAME DETAIL
	echo "$1 $2${3:+ $3}"
	case $1 in
	PASS) NPASS=$((NPASS + 1)) ;;
	FAIL) NFAIL=$((NFAIL + 1)) ;;
	esac
}

# excerpt FILE...: for a failure, each log's first error lines (but the rlimit one every CRIU
# log has here) and its last lines (without criu-lazyd's progress lines).
excerpt() {
	for _f in "$@"; do
		[ -s "$_f" ] || continue
		_e=$(grep -E 'Error|error' "$_f" | grep -v RLIMIT_NOFILE | head -n 5)
		if [ -n "$_e" ]; then
			echo "  ---- ${_f#"$T"/} (first errors)"
			printf '%s\n' "$_e" | cut -c1-300 | sed 's/^/  | /'
		fi
		echo "  ---- ${_f#"$T"/} (last 12 lines)"
		grep -v 'lazy-pages: progress: ' "$_f" | tail -n 12 | cut -c1-300 | sed 's/^/  | /'
	done
}

# failure RUNC_OUT [CRIU_LOG]: runc's error message, and CRIU's first error (but the rlimit
# one every CRIU log has here: no CAP_SYS_RESOURCE).
failure() {
	_fl_r=$(sed -n 's/.*level=error msg="\(.*\)/\1/p' "$1" 2>/dev/null | head -n 1)
	[ -n "$_fl_r" ] || _fl_r=$(tail -n 1 "$1" 2>/dev/null)
	_fl_c=""
	[ -z "${2:-}" ] || _fl_c=$(grep 'Error' "$2" 2>/dev/null | grep -v 'RLIMIT_NOFILE' | head -n 1 |
		sed 's/^([0-9. ]*) *//')
	_fl_r=${_fl_r%\"}
	printf '%s\n' "${_fl_r%%\\nlog file:*}${_fl_c:+; CRIU: $_fl_c}"
}

# ---- containers --------------------------------------------------------------------------------

# make_bundle CASE SEED: $T/CASE/bundle (runc spec, terminal false, memhog MB as the process,
# CASE/ctl and CASE/out bound at /ctl and /out, CRIU's options from CASE/criu.conf through
# the annotation org.criu.config); CASE/criu.conf starts empty.
make_bundle() {
	_mb_d=$T/$1
	rm -rf "$_mb_d"
	mkdir -p "$_mb_d/bundle/rootfs" "$_mb_d/ctl" "$_mb_d/out"
	cp "$P/build/native/runc-memhog" "$_mb_d/bundle/rootfs/memhog"
	: >"$_mb_d/criu.conf"
	(cd "$_mb_d/bundle" && runc spec) || return 1
	python3 - "$_mb_d" "$2" "$MB" <<'EOF' || return 1
import json, sys
d, seed, mb = sys.argv[1:4]
p = d + '/bundle/config.json'
c = json.load(open(p))
c['process']['terminal'] = False
c['process']['args'] = ['/memhog', '-m', mb, '-s', seed, '-c', '/ctl', '-o', '/out/result']
c['root']['readonly'] = False
for dst in ('ctl', 'out'):
    c['mounts'].append({'destination': '/' + dst, 'type': 'bind', 'source': d + '/' + dst,
                        'options': ['rbind', 'rw']})
c.setdefault('annotations', {})['org.criu.config'] = d + '/criu.conf'
json.dump(c, open(p, 'w'), indent=1)
EOF
}

# piped OUT RCFILE [ENV=V...] runc ARGS...: run runc (in the background) with pipes as its
# stdin, stdout and stderr, as runc's own tests do: a container inherits them, and CRIU can
# dump and restore pipes (not a file outside the container's mounts). Returns runc's exit code
# once it exits; the pipe's reader lives on as long as the container.
piped() {
	_pp_o=$1 _pp_r=$2
	shift 2
	rm -f "$_pp_r"
	( : | { timeout 150 env "$@" 2>&1; echo $? >"$_pp_r"; } | cat >"$_pp_o" ) &
	BGPIDS="$BGPIDS $!"
	wait_until 180 nonempty "$_pp_r" || { echo "timeout" >"$_pp_r"; return 124; }
	return "$(cat "$_pp_r")"
}

# start_ctr CASE ID [NS]: run the container detached (in netns NS if given) until memhog is
# ready. Sets CPID (its init's pid).
start_ctr() {
	_sc_d=$T/$1
	CTRS="$CTRS $2"
	rm -f "$_sc_d/out/result" "$_sc_d/ctl/"*
	if ! piped "$_sc_d/run.out" "$_sc_d/run.rc" ${3:+nsenter --net=/run/netns/$3} runc run -d \
		--bundle "$_sc_d/bundle" --pid-file "$_sc_d/ctr.pid" "$2"; then
		WHY="runc run failed (exit $(cat "$_sc_d/run.rc")): $(failure "$_sc_d/run.out")"
		return 1
	fi
	CPID=$(cat "$_sc_d/ctr.pid")
	LOGS_OF="$_sc_d/run.out $_sc_d/out/result"
	wait_until 60 file_has "$_sc_d/out/result" "^ready \\|^error " ||
		{ WHY="memhog in the container did not get ready"; return 1; }
	file_has "$_sc_d/out/result" "^ready " ||
		{ WHY="memhog in the container: $(grep -m1 '^error ' "$_sc_d/out/result")"; return 1; }
}

# checkpoint CASE ID [NS] [ENV=V...]: runc checkpoint into CASE/img (work dir CASE/dump), wait
# until the container's init is gone, mark the case restored. BREAK=corrupt: flip a byte in
# the middle of the biggest pages file (memhog's data).
checkpoint() {
	_cp_d=$T/$1 _cp_id=$2 _cp_ns=${3:-}
	shift 2
	[ $# -eq 0 ] || shift
	mkdir -p "$_cp_d/dump"
	_cp_t0=$(now)
	if ! piped "$_cp_d/checkpoint.out" "$_cp_d/checkpoint.rc" "$@" ${_cp_ns:+nsenter --net=/run/netns/$_cp_ns} \
		runc checkpoint --image-path "$_cp_d/img" --work-path "$_cp_d/dump" "$_cp_id"; then
		WHY="runc checkpoint failed (exit $(cat "$_cp_d/checkpoint.rc")): $(failure "$_cp_d/checkpoint.out" "$_cp_d/dump/dump.log")"
		LOGS_OF="$_cp_d/checkpoint.out $_cp_d/dump/dump.log"
		return 1
	fi
	DUMP_MS=$(ms "$_cp_t0" "$(now)")
	wait_until 30 pid_gone "$CPID" || { WHY="container init $CPID still there after checkpoint"; return 1; }
	IMG_MB=$(du -sm "$_cp_d/img" | cut -f1)
	CKPT="checkpoint $DUMP_MS ms, $IMG_MB MB"
	touch "$_cp_d/ctl/restored"
	[ "$BREAK" != corrupt ] || corrupt "$_cp_d/img"
}

# corrupt IMGDIR: flip one byte in the middle of the biggest pages file (memhog's data).
corrupt() {
	_co_f=$(ls -S "$1"/pages-*.img | head -n 1)
	_co_off=$(( $(stat -c %s "$_co_f") / 2 + 100 ))
	_co_b=$(dd if="$_co_f" bs=1 skip=$_co_off count=1 2>/dev/null | od -An -tu1 | tr -d ' ')
	printf "$(printf '\\%03o' $(( (_co_b ^ 1) & 255 )))" |
		dd of="$_co_f" bs=1 seek=$_co_off count=1 conv=notrunc 2>/dev/null
	echo "  (BREAK=corrupt: flipped byte $_co_off of ${_co_f#"$T"/})"
}

# restore CASE ID RUNDIR [NS] [ENV=V...]: runc restore -d --lazy-pages CASE/img (or $IMGS) with
# work dir RUNDIR (in netns NS if given).
restore() {
	_rs_d=$T/$1 _rs_id=$2 _rs_run=$3 _rs_ns=${4:-}
	shift 3
	[ $# -eq 0 ] || shift
	rm -f "$_rs_d/out/result" "$_rs_d/ctl/verify"
	_rs_t0=$(now)
	if ! piped "$_rs_run/restore.out" "$_rs_run/restore.rc" "$@" ${_rs_ns:+nsenter --net=/run/netns/$_rs_ns} \
		runc restore -d --lazy-pages --image-path "${IMGS:-$_rs_d/img}" --work-path "$_rs_run" \
		--bundle "$_rs_d/bundle" --pid-file "$_rs_run/ctr.pid" "$_rs_id"; then
		WHY="runc restore failed (exit $(cat "$_rs_run/restore.rc")): $(failure "$_rs_run/restore.out" "$_rs_run/restore.log")"
		return 1
	fi
	RESTORE_MS=$(ms "$_rs_t0" "$(now)")
	CPID=$(cat "$_rs_run/ctr.pid")
	# CRIU left the lazy memory out (the daemon is to fill it).
	grep -q "Lazy restore skips" "$_rs_run/restore.log" ||
		{ WHY="restore.log: the restore was not lazy (no \"Lazy restore skips\")"; return 1; }
}

# verify CASE: memhog resumed in the restored container and reads back all its memory.
verify() {
	_vf_d=$T/$1
	wait_until 60 line_or_dead "$_vf_d/out/result" "^resumed " ||
		{ WHY="memhog did not report resumed after the restore"; return 1; }
	file_has "$_vf_d/out/result" "^resumed " ||
		{ WHY="the restored container died before memhog reported resumed"; return 1; }
	touch "$_vf_d/ctl/verify"
	wait_until 60 line_or_dead "$_vf_d/out/result" "^verify " ||
		{ WHY="memhog did not report its verification"; return 1; }
	file_has "$_vf_d/out/result" "^verify " ||
		{ WHY="the restored container died before memhog reported its verification"; return 1; }
	VERIFY=$(grep -m1 '^verify ' "$_vf_d/out/result")
	VOK=$(echo "$VERIFY" | sed 's/verify ok pages=\([0-9]*\) ms=\([0-9]*\).*/memory verified in the container: \1 pages (\2 ms)/')
	case $VERIFY in
	"verify ok"*) ;;
	*) WHY="in the container: $VERIFY"; return 1 ;;
	esac
}

# kill_ctr ID: delete the container and wait until its init is gone.
kill_ctr() {
	runc delete -f "$1" >/dev/null 2>&1 || true
	[ -z "${CPID:-}" ] || wait_until 30 pid_gone "$CPID" || true
}

# plugin_daemon RUNDIR: sets _dpid to the pid of the daemon the plugin started (from CRIU's
# restore.log; "" if none) and adds it to what is killed at the end.
plugin_daemon() {
	_dpid=$(sed -n 's/.*lazy_restore: .* (pid \([0-9]*\)) listens on lazy-pages.socket.*/\1/p' \
		"$1/restore.log" 2>/dev/null | tail -n 1)
	[ -z "$_dpid" ] || DPIDS="$DPIDS $_dpid"
}

# summary LOG: criu-lazyd's two summary lines, shortened.
summary_of() {
	_s1=$(grep -m1 'summary: [0-9]* tasks' "$1" | sed 's/.*lazy pages: //; s/, [0-9]* dropped by the tasks//')
	_s2=$(grep -m1 'summary: [0-9]* faults' "$1" | sed 's/.*summary: //; s/ max .*//; s/latency //')
	echo "$_s1; $_s2"
}

# ---- (a) a daemon started by hand --------------------------------------------------------------

A_ID=crl-a-$TAG
A_READY="" A_WHY="" A_LOGS="" A_CKPT=""
# a_prepare: the container of (a) and (b), run and checkpointed once (its images are restored
# three times); a failure is remembered for the scenarios that follow.
a_prepare() {
	if [ -z "$A_READY" ]; then
		A_READY=1
		if make_bundle a 7 || { WHY="cannot make the bundle"; false; }; then
			start_ctr a "$A_ID" && checkpoint a "$A_ID" && A_READY=0 A_CKPT=$CKPT
		fi
		A_WHY=$WHY A_LOGS=$LOGS_OF
	fi
	WHY="container: $A_WHY" LOGS_OF=$A_LOGS
	return "$A_READY"
}

# s_lazyd criu|ours
s_lazyd() {
	a_prepare || return 1
	_run=$T/a/run-$1
	mkdir -p "$_run"
	LOGS_OF="$_run/restore.out $_run/restore.log $_run/lazy.log $_run/daemon.out $T/a/out/result"
	case $1 in
	criu) _cmd="criu lazy-pages" ;;
	ours) _cmd="$LAZYD" ;;
	esac
	( _r=0
	  $_cmd -D "$T/a/img" -W "$_run" -o lazy.log -v4 >"$_run/daemon.out" 2>&1 || _r=$?
	  echo "$_r" >"$_run/daemon.exit" ) &
	_dp=$!
	BGPIDS="$BGPIDS $_dp"
	if ! wait_until 30 test -S "$_run/lazy-pages.socket"; then
		WHY="the daemon ($_cmd) does not listen on $_run/lazy-pages.socket"
		return 1
	fi
	DPIDS="$DPIDS $(cat /proc/$_dp/task/*/children 2>/dev/null)"
	restore a "$A_ID" "$_run" || return 1
	verify a || return 1
	if ! wait_until 60 nonempty "$_run/daemon.exit"; then
		WHY="the daemon did not exit once every page was in"
		return 1
	fi
	[ "$(cat "$_run/daemon.exit")" = 0 ] || { WHY="the daemon exited with $(cat "$_run/daemon.exit")"; return 1; }
	pid_gone "$CPID" && { WHY="the container died after its verification"; return 1; }
	case $1 in
	criu)
		_n=$(sed -n 's/.*UFFD transferred pages: (\([0-9]*\/[0-9]*\)).*/\1/p' "$_run/lazy.log" | tail -n 1)
		[ -n "$_n" ] || { WHY="criu lazy-pages' log: no \"UFFD transferred pages\""; return 1; }
		DETAIL="$A_CKPT; restore ${RESTORE_MS} ms; $VOK; criu lazy-pages exited 0, transferred pages $_n"
		;;
	ours)
		grep -q "summary: 1 tasks .* [1-9][0-9]* on demand" "$_run/lazy.log" ||
			{ WHY="criu-lazyd's log: no page served on demand"; return 1; }
		grep -q "summary: .* 0 killed" "$_run/lazy.log" ||
			{ WHY="criu-lazyd's log: no clean summary"; return 1; }
		DETAIL="restore ${RESTORE_MS} ms; $VOK; $(summary_of "$_run/lazy.log")"
		;;
	esac
	kill_ctr "$A_ID"
}
s_lazyd_criu() { s_lazyd criu; }
s_lazyd_ours() { s_lazyd ours; }

# ---- (b) the plugin alone ----------------------------------------------------------------------

s_plugin() {
	a_prepare || return 1
	_run=$T/a/run-plugin
	mkdir -p "$_run"
	LOGS_OF="$_run/restore.out $_run/restore.log $_run/lazyd.log $T/a/out/result"
	# CRIU's options for this restore: the plugin's dir (the container's org.criu.config).
	if [ "$BREAK" = noplugin ]; then
		echo "  (BREAK=noplugin: the plugin is not loaded)"
	else
		echo "lib $PLUGIN_DIR" >"$T/a/criu.conf"
	fi
	printf '%s\n' "# runc restore --lazy-pages: seen on runc's command line (CRIU's parent)" \
		"log lazyd.log" "verbosity 3" "fill uffd" >"$T/a/lazy-restore.conf"
	restore a "$A_ID" "$_run" "" CRIU_LAZY_RESTORE_CONF="$T/a/lazy-restore.conf"
	_rc=$?
	: >"$T/a/criu.conf"
	plugin_daemon "$_run"
	[ "$_rc" = 0 ] || return 1
	[ -n "$_dpid" ] || { WHY="restore.log: the plugin started no daemon"; return 1; }
	_how=$(sed -n 's/.*lazy_restore: lazy restore (\(.*\)); work dir.*/\1/p' "$_run/restore.log" | head -n 1)
	verify a || return 1
	wait_until 60 pid_gone "$_dpid" || { WHY="the plugin's daemon ($_dpid) did not exit"; return 1; }
	grep -q "summary: 1 tasks .* [1-9][0-9]* on demand" "$_run/lazyd.log" ||
		{ WHY="the daemon's log: no page served on demand"; return 1; }
	grep -q "summary: .* 0 killed" "$_run/lazyd.log" ||
		{ WHY="the daemon's log: no clean summary"; return 1; }
	pid_gone "$CPID" && { WHY="the container died after its verification"; return 1; }
	DETAIL="detected: $_how; restore ${RESTORE_MS} ms; $VOK; daemon $_dpid: $(summary_of "$_run/lazyd.log")"
	kill_ctr "$A_ID"
}

# newkey FILE: a random shared key (64 hex digits), mode 600.
newkey() {
	head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$1"
	chmod 600 "$1"
}

# ---- (c) publish at checkpoint, restore by id on another "host" -------------------------------

# fetch_meta: criu-lazyd --fetch-only, the image's metadata into $IMGS from criu-imgd, in dst.
fetch_meta() {
	nsenter --net="/run/netns/$NS_DST" "$LAZYD" --fetch-only --image-server 10.99.0.1:27027 \
		--image ctr-c --auth-key "$T/c/dst-etc/key" -D "$IMGS" -v4 >"$T/c/fetch.out" 2>&1
}

s_imgd() {
	_d=$T/c _id=crl-c-$TAG
	LOGS_OF="$_d/imgd.log"
	make_bundle c 11 || { WHY="cannot make the bundle"; return 1; }
	# Two "hosts": network namespaces joined by a veth pair.
	ip netns add "$NS_SRC" && ip netns add "$NS_DST" &&
		ip -n "$NS_SRC" link add veth0 type veth peer name veth1 netns "$NS_DST" &&
		ip -n "$NS_SRC" addr add 10.99.0.1/24 dev veth0 &&
		ip -n "$NS_DST" addr add 10.99.0.2/24 dev veth1 &&
		ip -n "$NS_SRC" link set veth0 up && ip -n "$NS_DST" link set veth1 up &&
		ip -n "$NS_SRC" link set lo up && ip -n "$NS_DST" link set lo up ||
		{ WHY="cannot make the network namespaces"; return 1; }
	newkey "$_d/key"
	# Publishers have a key of their own where criu-imgd has --upload-key (the plugin's
	# `publish-key`); before that, the one key served both.
	_upk="" _pubkey="auth-key $_d/key"
	if "$IMGD" --help 2>&1 | grep -q -- --upload-key; then
		newkey "$_d/upload-key"
		_upk="--upload-key $_d/upload-key" _pubkey="publish-key $_d/upload-key"
	fi
	mkdir -p "$_d/served"
	# shellcheck disable=SC2086
	if ! nsenter --net="/run/netns/$NS_SRC" "$IMGD" --root "$_d/served" --accept-uploads $_upk \
		--address 10.99.0.1 --port 27027 --auth-key "$_d/key" -o "$_d/imgd.log" -v3 -d \
		--pidfile "$_d/imgd.pid" >"$_d/imgd.out" 2>&1; then
		WHY="criu-imgd did not start: $(tail -n 1 "$_d/imgd.out")"
		return 1
	fi
	DPIDS="$DPIDS $(cat "$_d/imgd.pid")"
	# The source host: the container runs there; the plugin publishes its checkpoint.
	echo "lib $PLUGIN_DIR" >"$_d/criu.conf"
	printf '%s\n' "publish 10.99.0.1:27027" "image ctr-c" "$_pubkey" >"$_d/src.conf"
	start_ctr c "$_id" "$NS_SRC" || return 1
	LOGS_OF="$_d/checkpoint.out $_d/dump/dump.log $_d/imgd.log"
	_b=$BREAK
	BREAK=""
	checkpoint c "$_id" "$NS_SRC" CRIU_LAZY_RESTORE_CONF="$_d/src.conf"
	_rc=$?
	BREAK=$_b
	[ "$_rc" = 0 ] || return 1
	_pub=$(sed -n 's/.*lazy_restore: published \(image ctr-c\) to criu-imgd [^ ]*: \(.*\)/\1 (\2)/p' \
		"$_d/dump/dump.log")
	[ -n "$_pub" ] && [ -s "$_d/served/ctr-c/inventory.img" ] ||
		{ WHY="not published: $(grep -m1 'lazy_restore: Error' "$_d/dump/dump.log")"; return 1; }
	rm -rf "$_d/img" # the source's images are gone: only criu-imgd has them
	[ "$BREAK" != corrupt ] || corrupt "$_d/served/ctr-c"
	# The destination host: an empty images dir, the plugin's config, the key.
	_run=$_d/dst-run
	IMGS=$_d/dst-img
	mkdir -p "$_run" "$IMGS" "$_d/dst-etc"
	if [ "$BREAK" = key ]; then
		newkey "$_d/dst-etc/key"
		echo "  (BREAK=key: the destination has another key)"
	else
		cp "$_d/key" "$_d/dst-etc/key"
	fi
	chmod 600 "$_d/dst-etc/key"
	printf '%s\n' "source image-server 10.99.0.1:27027" "image ctr-c" "auth-key $_d/dst-etc/key" \
		"log lazyd.log" "verbosity 3" "fill uffd" >"$_d/dst-etc/lazy-restore.conf"
	# runc restore straight into the empty dir first: runc itself reads descriptors.json from
	# the images dir before it runs CRIU, and CRIU 4.x reads inventory.img before it loads
	# plugins, so this cannot work; expected: runc's error, nothing fetched, no container.
	mkdir -p "$_d/direct"
	LOGS_OF="$_d/direct/restore.out $_d/direct/restore.log"
	if restore c "$_id" "$_d/direct" "$NS_DST" CRIU_LAZY_RESTORE_CONF="$_d/dst-etc/lazy-restore.conf"; then
		_direct="runc restore into the empty dir worked by itself"
		_run=$_d/direct
	else
		_direct=$(sed -n 's/.*level=error msg="\(.*\)"$/\1/p' "$_d/direct/restore.out" | head -n 1)
		case $_direct in
		"open $IMGS/descriptors.json: no such file or directory") ;;
		*) WHY="runc restore into the empty dir: unexpected failure: $_direct"; return 1 ;;
		esac
		[ -z "$(ls -A "$IMGS")" ] || { WHY="files left in the empty dir by a failed restore"; return 1; }
		_direct="runc alone: $_direct"
		# So the destination fetches the metadata first (criu-lazyd --fetch-only), then restores.
		LOGS_OF="$_d/fetch.out $_d/imgd.log"
		fetch_meta || { WHY="criu-lazyd --fetch-only failed: $(tail -n 1 "$_d/fetch.out")"; return 1; }
		LOGS_OF="$_run/restore.out $_run/restore.log $_run/lazyd.log $_d/imgd.log $_d/out/result"
		restore c "$_id" "$_run" "$NS_DST" CRIU_LAZY_RESTORE_CONF="$_d/dst-etc/lazy-restore.conf"
		_rc=$?
		if [ "$BREAK" = imgd ]; then
			kill -KILL "$(cat "$_d/imgd.pid")"
			echo "  (BREAK=imgd: criu-imgd killed as runc restore returned)"
		fi
	fi
	IMGS=""
	plugin_daemon "$_run"
	[ "$_rc" = 0 ] || return 1
	[ -n "$_dpid" ] || { WHY="restore.log: the plugin started no daemon"; return 1; }
	grep -q -- "--image-server 10.99.0.1:27027 --image ctr-c" "$_run/restore.log" ||
		{ WHY="restore.log: the daemon was not started for the image server"; return 1; }
	verify c || return 1
	wait_until 60 pid_gone "$_dpid" || { WHY="the plugin's daemon ($_dpid) did not exit"; return 1; }
	grep -q "summary: 1 tasks .* [1-9][0-9]* on demand" "$_run/lazyd.log" ||
		{ WHY="the daemon's log: no page served on demand"; return 1; }
	grep -q "summary: .* 0 killed" "$_run/lazyd.log" ||
		{ WHY="the daemon's log: no clean summary"; return 1; }
	grep -q "connection from 10.99.0.2:" "$_d/imgd.log" ||
		{ WHY="imgd.log: no connection from the destination 10.99.0.2"; return 1; }
	pid_gone "$CPID" && { WHY="the container died after its verification"; return 1; }
	# The lazy data never came with the metadata: the fetched pages files are mostly holes.
	_src=$(du -k "$_d"/served/ctr-c/pages-*.img | awk '{s += $1} END {print s}')
	_dst=$(du -k "$_d"/dst-img/pages-*.img | awk '{s += $1} END {print s}')
	[ "$_dst" -lt "$_src" ] || { WHY="pages files fetched whole ($_dst KiB of $_src KiB)"; return 1; }
	_fetched=$(sed -n 's/.*\(fetched the [0-9]* metadata files ([0-9]* bytes)\).*/\1/p' "$_d/fetch.out" | head -n 1)
	DETAIL="$CKPT, published $_pub by the plugin in $NS_SRC; in $NS_DST: $_direct; criu-lazyd --fetch-only $_fetched, pages files $_dst of $_src KiB; restore ${RESTORE_MS} ms; $VOK; daemon --image-server: $(summary_of "$_run/lazyd.log")"
	kill_ctr "$_id"
}

# ---- run ---------------------------------------------------------------------------------------

echo "runc lazy restore, $SUITE: CRIU $CRIU_VERSION, runc $RUNC_VERSION, memhog $MB MB${BREAK:+, BREAK=$BREAK}"
for s in "lazyd_criu:runc-lazyd (criu)" "lazyd_ours:runc-lazyd (ours)" \
	"plugin:runc-plugin (lazy_restore.so)" "imgd:runc-imgd (publish + restore by id)"; do
	fn=s_${s%%:*} name=${s#*:}
	WHY="" DETAIL="" LOGS_OF="" CPID="" IMGS=""
	t0=$(now)
	if "$fn"; then
		record PASS "$name" "$(ms "$t0" "$(now)") ms; $DETAIL"
	else
		record FAIL "$name" "$WHY"
		excerpt $LOGS_OF
	fi
	# What a scenario leaves (after a failure): its containers and daemons.
	for c in $CTRS; do runc delete -f "$c" >/dev/null 2>&1 || true; done
	stop_daemons
done
echo "$NPASS passed, $NFAIL failed"
[ "$NFAIL" = 0 ]
