#!/bin/sh
# VM tests with real CRIU, in a qemu guest running Debian's 6.1 kernel (see vmrun.sh).
#   sh tests/vm/run.sh [SCENARIO...]   end-to-end tests, each with criu lazy-pages and criu-lazyd
#                                      (memhog16 chaos tree zombie mixed detach exit memhog256;
#                                      default all)
#   sh tests/vm/run.sh bench           benchmark: criu-lazyd vs criu lazy-pages vs full restore
#   sh tests/vm/run.sh demo            a guided lazy restore with criu-lazyd
#   sh tests/vm/run.sh plugin [SCEN..] tests of lazy_restore.so (guest-plugin.sh)
#   sh tests/vm/run.sh net [SCEN..]    remote sources: criu-imgd, CRIU's page server (guest-net.sh)
#   sh tests/vm/run.sh netbench        fault latency and drain over the network, ours vs CRIU's
#   sh tests/vm/run.sh forkbench       256 MB task that forks right after restore, both read all:
#                                      criu-lazyd (+ criu-imgd | CRIU's page server) vs CRIU's pair
# Needs `make` first (build/tests/workloads/*, build/bin/criu-lazyd). Results and logs go to
# build/vm/<mode>-<date>-<pid>/ (link: build/vm/<mode>-latest).
# Env: E2E_DAEMONS (default "criu ours"), CRIU_LAZY, OURS_LAZY (daemon commands), VMRUN_TIMEOUT;
# forkbench: NET_FORK_MB (256), NET_FORK_ROUNDS (3), NET_FORK_SETUPS (imgd psd-ours psd-criu local;
# also imgdfix: imgd with the fixed window, --prefetch-window 8; imgd1: imgd with
# --fill-threads 1),
# NET_FORK_V (the daemons' -v level, 4).
set -eu
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
V=$ROOT/tests/vm
mode=e2e
case ${1:-} in
bench | demo | e2e | plugin | net | netbench | forkbench) mode=$1; shift ;;
esac

for w in memhog chaos tree; do
	[ -x "$ROOT/build/tests/workloads/$w" ] ||
		{ echo "run.sh: build/tests/workloads/$w missing: run make first" >&2; exit 2; }
done

# A results dir of its own per run (others may run VMs from the same tree at the same time);
# build/vm/MODE-latest points to the newest; only the 4 newest of a mode are kept.
R=$ROOT/build/vm/$mode-$(date +%Y%m%d-%H%M%S)-$$
mkdir -p "$R"
ln -sfn "$(basename "$R")" "$ROOT/build/vm/$mode-latest"
ls -d "$ROOT/build/vm/$mode"-2*-* 2>/dev/null | sort | head -n -4 | while read -r old; do
	rm -rf "$old"
done
export E2E_DAEMONS="${E2E_DAEMONS:-criu ours}"
export VMRUN_PASSENV="E2E_DAEMONS CRIU_LAZY OURS_LAZY NET_FORK_MB NET_FORK_ROUNDS NET_FORK_SETUPS NET_FORK_V"

# vm_failed RC: explain a guest that did not finish its script.
vm_failed() {
	echo "run.sh: the VM run failed (exit $1); end of the guest log ($R/guest.log):"
	tail -n 30 "$R/guest.log" 2>/dev/null || true
	echo "---- end of the console ($R/console.log):"
	tail -n 20 "$R/console.log" 2>/dev/null || true
}

# summarize RC: print the guest's PASS/FAIL lines (with the excerpt of each failure), count
# them into pass/fail, and count a VM that did not finish as one more failure.
summarize() {
	if [ -f "$R/summary" ]; then
		while IFS= read -r line; do
			echo "$line"
			case $line in
			PASS*) pass=$((pass + 1)) ;;
			FAIL*)
				fail=$((fail + 1))
				# shellcheck disable=SC2086
				set -- $line
				for f in "$R/fail-$2-$(echo "$3" | tr -d '()').txt" "$R/fail-$2.txt"; do
					[ -f "$f" ] && { sed 's/^/    | /' "$f"; break; }
				done
				;;
			esac
		done <"$R/summary"
	fi
	if [ ! -f "$R/rc" ] || { [ "$1" != 0 ] && [ "$fail" = 0 ]; }; then
		vm_failed "$1"
		fail=$((fail + 1))
	fi
	echo "(VM run took $(( $(date +%s) - t0 )) s; guest kernel up $(cat "$R/boot-uptime" 2>/dev/null || echo '?') s when the tests started)"
	echo "$pass passed, $fail failed"
	[ "$fail" = 0 ]
}

t0=$(date +%s)
pass=0 fail=0
# guest_bench SCENARIO TABLE OUT TIMEOUT: one benchmark scenario of guest-net.sh in the
# guest; its table ($R/TABLE) is copied to build/bench/OUT and shown.
guest_bench() {
	mkdir -p "$ROOT/build/bench"
	rc=0
	VMRUN_TIMEOUT=${VMRUN_TIMEOUT:-$4} sh "$V/vmrun.sh" "$V/guest-net.sh" "$R" "$ROOT" "$1" || rc=$?
	if [ -f "$R/$2" ]; then
		cp "$R/$2" "$ROOT/build/bench/$3"
		cat "$R/$2"
		echo "(written to build/bench/$3; logs in build/vm/$mode-latest/)"
	fi
	[ "$rc" = 0 ] || { vm_failed "$rc"; exit 1; }
}

case $mode in
e2e)
	echo "VM end-to-end tests (qemu TCG guest, real CRIU; logs in build/vm/e2e-latest/)"
	st=$(sh "$V/selftest.sh" "$ROOT")
	echo "$st"
	case $st in PASS*) pass=1 ;; *) fail=1 ;; esac
	rc=0
	VMRUN_TIMEOUT=${VMRUN_TIMEOUT:-900} sh "$V/vmrun.sh" "$V/guest-e2e.sh" "$R" "$ROOT" "$@" || rc=$?
	summarize "$rc"
	;;
plugin)
	echo "VM tests of lazy_restore.so (qemu TCG guest, real CRIU; logs in build/vm/plugin-latest/)"
	rc=0
	VMRUN_TIMEOUT=${VMRUN_TIMEOUT:-900} sh "$V/vmrun.sh" "$V/guest-plugin.sh" "$R" "$ROOT" "$@" || rc=$?
	summarize "$rc"
	;;
net)
	echo "VM tests of the remote page sources (qemu TCG guest, real CRIU; logs in build/vm/net-latest/)"
	rc=0
	[ $# -gt 0 ] || set -- imgd ps-ours ps-criu psd-ours psd-criu
	VMRUN_TIMEOUT=${VMRUN_TIMEOUT:-900} sh "$V/vmrun.sh" "$V/guest-net.sh" "$R" "$ROOT" "$@" || rc=$?
	summarize "$rc"
	;;
netbench) guest_bench bench net-bench.txt net.txt 1200 ;;
forkbench) guest_bench forkbench fork-bench.txt fork.txt 1500 ;;
bench)
	mkdir -p "$ROOT/build/bench"
	rc=0
	VMRUN_TIMEOUT=${VMRUN_TIMEOUT:-900} sh "$V/vmrun.sh" "$V/guest-bench.sh" "$R" "$ROOT" "$@" || rc=$?
	if [ -f "$R/table.txt" ]; then
		cp "$R/table.txt" "$ROOT/build/bench/results.txt"
		cat "$R/table.txt"
		echo "(written to build/bench/results.txt; logs in build/vm/bench-latest/)"
	fi
	[ "$rc" = 0 ] || { vm_failed "$rc"; exit 1; }
	;;
demo)
	echo "Booting a VM (qemu, software emulation; takes a few seconds) ..."
	: >"$R/guest.log"
	rc=0
	VMRUN_TIMEOUT=${VMRUN_TIMEOUT:-600} sh "$V/vmrun.sh" "$V/guest-demo.sh" "$R" "$ROOT" "$@" &
	vm=$!
	tail -n +1 -f --pid="$vm" "$R/guest.log" 2>/dev/null || true
	wait "$vm" || rc=$?
	[ "$rc" = 0 ] || { vm_failed "$rc"; exit 1; }
	;;
esac
