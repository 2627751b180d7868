#!/bin/sh
# podman checkpoint / restore with lazy pages, natively on this host (shared/notes/native-criu.md).
#   sh tests/native/podman.sh [SUITE]        (as root, from the project dir; SUITE: trixie or sid,
#                                            default trixie)
# Uses the Debian root with podman, runc, conmon and CRIU 4.x that make deps makes
# (tests/native/roots.sh podman-SUITE; made here if missing), then, in a private
# mount namespace where that root is / (pivot_root; the project is bound at /src), runs a
# statically linked memhog in a container (vfs storage, --network none, cgroupfs, file events)
# and checks:
#   info     podman info runs (cgroup version, runtime, CRIU)
#   eager    podman container checkpoint + podman container restore; memory verified
#   lazyd    checkpoint; criu-lazyd started by hand in the container's work dir; restore with
#            lazy-pages from /etc/criu/runc.conf; memory verified; the daemon's stats
#   plugin   checkpoint; restore with `lib /src/build/lib/criu` + `lazy-pages` in
#            /etc/criu/runc.conf: lazy_restore.so starts criu-lazyd; memory verified
# podman has no --lazy-pages: runc reads /etc/criu/runc.conf for every checkpoint AND restore,
# and `lazy-pages` there turns a checkpoint into a post-copy dump that waits for a page client
# forever, so the file is written just for the restore (/etc/criu is a tmpfs in the namespace).
# Prints PASS/FAIL lines and "N passed, N failed"; exits 1 on failure. Logs (dump.log,
# restore.log, the daemon's) in build/native/podman-SUITE/logs/.
# Env: NATIVE_ROOTS (default /var/lib/criu-lazy/roots), PODMAN_TEST_MB (memhog size, default 128).
set -u

# ---- inside the namespace ---------------------------------------------------------------------
if [ "${1:-}" = "--inner" ]; then
	SUITE=$2
	OUT=/src/build/native/podman-$SUITE
	IMG=localhost/criu-lazy-memhog:latest
	MB=${PODMAN_TEST_MB:-128}
	export PODMAN_IGNORE_CGROUPSV1_WARNING=1
	pass=0 fail=0
	DPIDS=
	ok() { pass=$((pass + 1)); echo "PASS podman-$SUITE $*"; }
	bad() { fail=$((fail + 1)); echo "FAIL podman-$SUITE $*"; }
	info() { echo "     $*"; }

	# alive PID: the process exists and is not a zombie (this host's pid 1 reaps late).
	alive() { [ -r "/proc/$1/stat" ] && ! sed 's/.*) //' "/proc/$1/stat" | grep -q '^Z'; }

	cleanup() {
		rm -f /etc/criu/runc.conf /etc/criu/lazy-restore.conf
		podman rm -af -t 0 >/dev/null 2>&1
		for p in $DPIDS; do
			alive "$p" && grep -q criu-lazyd "/proc/$p/cmdline" 2>/dev/null && kill -9 "$p"
		done
		true
	}
	trap cleanup EXIT
	trap 'exit 130' INT TERM HUP

	# wait_line FILE PATTERN SECONDS: until a line of FILE matches PATTERN (grep -E).
	wait_line() {
		_n=$(($3 * 10))
		while [ $_n -gt 0 ]; do
			grep -Eq "$2" "$1" 2>/dev/null && return 0
			sleep 0.1
			_n=$((_n - 1))
		done
		return 1
	}

	# keep_logs NAME UD: copy what CRIU and the daemon logged for test NAME.
	keep_logs() {
		mkdir -p "$OUT/logs/$1"
		for f in dump.log restore.log criu-lazyd.log lazyd.log lazyd.json; do
			[ -f "$2/$f" ] && cp "$2/$f" "$OUT/logs/$1/"
		done
	}

	# start NAME SEED: run memhog in container NAME; wait until it has filled its memory.
	start() {
		_ctl=/tmp/ctl-$1
		rm -rf "$_ctl"
		mkdir -p "$_ctl"
		if ! _e=$(podman run -d --name "$1" --network none -v "$_ctl:/ctl" "$IMG" \
			/memhog -m "$MB" -s "$2" -c /ctl -o /ctl/result 2>&1); then
			bad "$1: podman run: $_e"
			return 1
		fi
		wait_line "$_ctl/result" '^ready' 60 || { bad "$1: memhog never ready"; return 1; }
	}

	# checkpoint NAME: podman container checkpoint --keep; sets UD (the container's work dir).
	checkpoint() {
		UD=$(podman inspect -f '{{.StaticDir}}' "$1")
		if ! _e=$(podman container checkpoint --keep "$1" 2>&1); then
			keep_logs "$1" "$UD"
			bad "$1: podman container checkpoint: $(echo "$_e" | tail -3)"
			return 1
		fi
		_st=$(podman inspect -f '{{.State.Status}}' "$1")
		[ "$_st" = exited ] || { bad "$1: state after checkpoint is '$_st', not exited"; return 1; }
	}

	# restore NAME: podman container restore --keep; the container must be running.
	restore() {
		if ! _e=$(podman container restore --keep "$1" 2>&1); then
			rm -f /etc/criu/runc.conf
			keep_logs "$1" "$UD"
			bad "$1: podman container restore: $(echo "$_e" | tail -3)"
			return 1
		fi
		rm -f /etc/criu/runc.conf
		_st=$(podman inspect -f '{{.State.Status}}' "$1")
		[ "$_st" = running ] || { bad "$1: state after restore is '$_st', not running"; return 1; }
	}

	# verify NAME: tell the restored memhog it was restored and to check every byte.
	verify() {
		_ctl=/tmp/ctl-$1
		touch "$_ctl/restored" "$_ctl/verify"
		if ! wait_line "$_ctl/result" '^verify ' 120; then
			bad "$1: no verify result: $(tail -2 "$_ctl/result" | tr '\n' ' ')"
			return 1
		fi
		_v=$(grep '^verify ' "$_ctl/result")
		case "$_v" in
		"verify ok"*) VERIFY=$_v ;;
		*) bad "$1: memory: $_v"; return 1 ;;
		esac
		wait_line "$_ctl/result" '^tick 1 ' 10 || { bad "$1: memhog stopped after verify"; return 1; }
	}

	mkdir -p "$OUT"
	rm -rf "$OUT/logs"
	mkdir -p /etc/criu
	podman rm -af -t 0 >/dev/null 2>&1 # left by a run that was killed

	# info
	if _i=$(podman info --format \
		'cgroups {{.Host.CgroupsVersion}} ({{.Host.CgroupManager}}), runtime {{.Host.OCIRuntime.Name}}, storage {{.Store.GraphDriverName}}' 2>&1); then
		ok "info: podman $(podman version --format '{{.Client.Version}}'), $_i," \
			"$(runc --version | head -1), $(criu --version | head -1)"
	else
		bad "info: podman info: $_i"
		echo "$pass passed, $fail failed"
		exit 1
	fi

	# the image: memhog alone
	podman image rm -f "$IMG" >/dev/null 2>&1
	if ! _e=$(podman import "$OUT/memhog.tar" "$IMG" 2>&1); then
		bad "image: podman import: $(echo "$_e" | tail -2)"
		echo "$pass passed, $fail failed"
		exit 1
	fi

	# eager
	n=crl-eager
	if start $n 11 && checkpoint $n && restore $n && verify $n; then
		ok "eager: checkpoint + restore of a $MB MB container, $VERIFY"
	fi
	keep_logs $n "$UD"
	podman rm -f -t 0 $n >/dev/null 2>&1

	# lazyd: the daemon by hand in the container's work dir, lazy-pages from runc.conf
	n=crl-lazyd
	if start $n 12 && checkpoint $n; then
		rm -f "$UD/lazyd.json" "$UD/lazyd.pid"
		if ! /src/build/bin/criu-lazyd -D "$UD/checkpoint" -W "$UD" -d --pidfile "$UD/lazyd.pid" \
			--stats-file "$UD/lazyd.json" -o "$UD/lazyd.log" -v3; then
			bad "$n: criu-lazyd did not start: $(tail -3 "$UD/lazyd.log" 2>/dev/null)"
		else
			DPIDS="$DPIDS $(cat "$UD/lazyd.pid")"
			printf 'lazy-pages\n' >/etc/criu/runc.conf
			if restore $n && verify $n; then
				if ! wait_line "$UD/lazyd.json" '"total_s"' 60; then
					bad "$n: criu-lazyd did not finish (no stats): $(tail -3 "$UD/lazyd.log")"
				else
					j() { sed -n "s/.*\"$1\": \([0-9]*\).*/\1/p" "$UD/lazyd.json"; }
					t=$(j pages_total) f=$(j pages_fault) p=$(j pages_prefetch) d=$(j pages_dropped)
					if [ "$(j tasks)" = 1 ] && [ "$(j tasks_killed)" = 0 ] && [ "$t" -gt 0 ] &&
						[ "$(j faults)" -gt 0 ] && [ $((f + p + d)) = "$t" ]; then
						ok "lazyd: lazy restore served by criu-lazyd: $t lazy pages," \
							"$f on demand, $p prefetched; $VERIFY"
					else
						bad "$n: daemon stats: $(tr -d '\n ' <"$UD/lazyd.json")"
					fi
				fi
			fi
		fi
	fi
	keep_logs $n "$UD"
	podman rm -f -t 0 $n >/dev/null 2>&1

	# plugin: lazy_restore.so loaded from runc.conf starts criu-lazyd itself
	n=crl-plugin
	if start $n 13 && checkpoint $n; then
		rm -f "$UD/criu-lazyd.log"
		printf 'lib /src/build/lib/criu\nlazy-pages\n' >/etc/criu/runc.conf
		printf 'verbosity 3\n' >/etc/criu/lazy-restore.conf
		if restore $n; then
			dp=$(sed -n 's/.*lazy_restore: restore done: daemon pid \([0-9]*\).*/\1/p' "$UD/restore.log")
			DPIDS="$DPIDS $dp"
			if [ -z "$dp" ]; then
				bad "$n: the plugin did not start a daemon: $(grep lazy_restore "$UD/restore.log" | tail -3)"
			else
				[ -r "/proc/$dp/cgroup" ] &&
					info "plugin's daemon (pid $dp) cgroup: $(grep -m1 memory "/proc/$dp/cgroup")"
				if verify $n; then
					if ! wait_line "$UD/criu-lazyd.log" 'summary: .* killed' 60; then
						bad "$n: criu-lazyd did not finish: $(tail -3 "$UD/criu-lazyd.log")"
					else
						s=$(grep 'summary: [0-9]* tasks' "$UD/criu-lazyd.log" | sed 's/.*summary: //')
						if echo "$s" | grep -q '^1 tasks' &&
							grep 'summary: .* killed' "$UD/criu-lazyd.log" | grep -q ' 0 killed'; then
							ok "plugin: lazy_restore.so started criu-lazyd ($(grep -o 'lazy restore (lazy-pages in [^)]*)' "$UD/restore.log")): $s; $VERIFY"
						else
							bad "$n: daemon summary: $(grep summary "$UD/criu-lazyd.log" | tr '\n' ' ')"
						fi
					fi
				fi
			fi
		fi
		rm -f /etc/criu/lazy-restore.conf
	fi
	keep_logs $n "$UD"
	podman rm -f -t 0 $n >/dev/null 2>&1

	echo "$pass passed, $fail failed"
	[ $fail = 0 ]
	exit $?
fi

# ---- on the host ------------------------------------------------------------------------------
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
SUITE=${1:-trixie}
PR=${NATIVE_ROOTS:-/var/lib/criu-lazy/roots}/podman-$SUITE
OUT=$ROOT/build/native/podman-$SUITE

setup_fail() {
	echo "FAIL podman-$SUITE setup: $*"
	echo "0 passed, 1 failed"
	exit 1
}
[ "$(id -u)" = 0 ] || setup_fail "must run as root"
case "$SUITE" in *[!a-z0-9-]* | "") setup_fail "bad suite name '$SUITE'" ;; esac
for f in build/bin/criu-lazyd build/lib/criu/lazy_restore.so; do
	[ -f "$ROOT/$f" ] || setup_fail "$f is missing (run make)"
done
# The root (podman, runc, conmon, CRIU 4.x): made once by make deps, reused after.
sh "$ROOT/tests/native/roots.sh" "podman-$SUITE" || setup_fail "no podman root for $SUITE"
[ -x "$PR/usr/bin/podman" ] || setup_fail "$PR has no podman"
# podman without systemd, a registry or a network: vfs, cgroupfs, file events, no network.
mkdir -p "$PR/etc/containers" "$PR/etc/criu" "$PR/src"
cat >"$PR/etc/containers/storage.conf" <<'EOF'
# written by criu-lazy tests/native/podman.sh
[storage]
driver = "vfs"
runroot = "/run/containers/storage"
graphroot = "/var/lib/containers/storage"
EOF
cat >"$PR/etc/containers/containers.conf" <<'EOF'
# written by criu-lazy tests/native/podman.sh
[containers]
netns = "none"
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
runtime = "runc"
EOF

# The workload: memhog, statically linked, alone in an image tarball.
mkdir -p "$OUT/image/ctl"
cc -static -O2 -std=gnu11 -D_GNU_SOURCE -o "$OUT/image/memhog" "$ROOT/tests/workloads/memhog.c" ||
	setup_fail "cannot build memhog statically (libc6-dev?)"
tar -C "$OUT/image" -cf "$OUT/memhog.tar" . || setup_fail "cannot make the image tarball"

# podman's cgroupfs parents (cgroup v1 here): removed at the end if this run made them.
newcg=
for h in /sys/fs/cgroup/*/; do
	[ -d "${h}libpod_parent" ] || newcg="$newcg ${h}libpod_parent"
done

unshare -m --propagation private sh -c '
	R=$1 SRC=$2 SUITE=$3
	mount --bind "$R" "$R" || exit 1
	for m in proc sys dev; do mount --rbind /$m "$R/$m" || exit 1; done
	mount -t tmpfs tmpfs "$R/run" && mount -t tmpfs tmpfs "$R/tmp" &&
		mount -t tmpfs -o mode=0755 tmpfs "$R/etc/criu" && mount --bind "$SRC" "$R/src" || exit 1
	cd "$R" && mkdir -p oldroot && pivot_root . oldroot && umount -l /oldroot && cd / &&
		exec sh /src/tests/native/podman.sh --inner "$SUITE"' sh "$PR" "$ROOT" "$SUITE"
rc=$?

for c in $newcg; do
	[ -d "$c/conmon" ] && rmdir "$c/conmon" 2>/dev/null
	rmdir "$c" 2>/dev/null
done
exit $rc
