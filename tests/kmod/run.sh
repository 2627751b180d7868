#!/bin/sh
# lazyfill.ko tests and benchmark in the qemu guest (Debian's 6.1 kernel, see tests/vm/vmrun.sh).
#   sh tests/kmod/run.sh [test]   module tests (hostile input + fuzz, kmod vs uffd byte
#                                 equality, concurrency and task exit, permissions, netlink,
#                                 unload, dmesg)
#   sh tests/kmod/run.sh bench    batch fill vs one UFFDIO_COPY per extent (bench-kmod): raw
#                                 ioctls (lf-bench), then through filler_batch (lf-fillbench)
#   sh tests/kmod/run.sh e2e [SCENARIO...]   real CRIU restores with criu-lazyd --fill kmod and
#                                 --fill uffd (tests/vm/guest-e2e.sh; needs the daemon's kmod
#                                 engine and build/tests/workloads)
# Needs `make` and `make kmod` (build/lib/liblazy.a, build/kmod/lazyfill.ko); builds the test
# programs tests/kmod/*.c into build/tests/kmod/. Results and logs: build/vm/kmod-<mode>/.
# Env: KMOD_TESTS (default "hostile equal concur perm"), KMOD_E2E_ENGINES (default "kmod uffd"),
# FUZZ_CALLS (default 100000), CONCUR_SECONDS (8), BENCH_PAGES (8192), BENCH_REPEAT (5),
# VMRUN_TIMEOUT.
set -eu
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
mode=${1:-test}
case $mode in
test | bench | e2e) ;;
*) echo "usage: run.sh [test|bench|e2e [SCENARIO...]]" >&2; exit 2 ;;
esac
[ $# -gt 0 ] && shift
cd "$ROOT"
[ -f build/kmod/lazyfill.ko ] || { echo "run.sh: build/kmod/lazyfill.ko missing: run make kmod" >&2; exit 2; }
# The guest programs, by the project's rules (Makefile: build/tests/kmod/).
make --no-print-directory -s $(for src in tests/kmod/*.c; do echo build/tests/kmod/$(basename "$src" .c); done) ||
	{ echo "run.sh: cannot build tests/kmod" >&2; exit 2; }

R=$ROOT/build/vm/kmod-$mode
rm -rf "$R"
mkdir -p "$R"
export VMRUN_PASSENV="KMOD_TESTS KMOD_E2E_ENGINES FUZZ_CALLS CONCUR_SECONDS BENCH_PAGES BENCH_REPEAT"
t0=$(date +%s)
rc=0
if [ "$mode" = e2e ]; then
	VMRUN_TIMEOUT=${VMRUN_TIMEOUT:-1200} sh tests/vm/vmrun.sh tests/kmod/guest-e2e-kmod.sh "$R" "$ROOT" "$@" || rc=$?
else
	VMRUN_TIMEOUT=${VMRUN_TIMEOUT:-900} sh tests/vm/vmrun.sh tests/kmod/guest-kmod.sh "$R" "$ROOT" "$mode" || rc=$?
fi
pass=0 fail=0
if [ -f "$R/summary" ]; then
	while IFS= read -r line; do
		echo "$line"
		case $line in
		PASS*) pass=$((pass + 1)) ;;
		FAIL*) fail=$((fail + 1)) ;;
		esac
	done <"$R/summary"
fi
if [ "$mode" = bench ] && [ -f "$R/table.txt" ]; then
	mkdir -p build/bench
	cp "$R/table.txt" build/bench/kmod.txt
	cat "$R/table.txt"
	echo "(written to build/bench/kmod.txt)"
fi
if [ "$rc" != 0 ] && [ "$fail" = 0 ]; then
	echo "run.sh: the VM run failed (exit $rc); end of the guest log:"
	tail -n 30 "$R/guest.log" 2>/dev/null || true
	tail -n 20 "$R/console.log" 2>/dev/null || true
	fail=$((fail + 1))
fi
echo "(VM run took $(( $(date +%s) - t0 )) s; logs in $R)"
echo "kmod: $pass passed, $fail failed"
[ "$fail" = 0 ]
