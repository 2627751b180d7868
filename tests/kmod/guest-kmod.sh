# Guest side of the lazyfill.ko tests (run by vmrun.sh): guest-kmod.sh ROOT test|bench
# With the module loaded by insmod: hostile input and fuzz, byte-identical fills (kmod vs
# uffd), concurrency with fork/mremap and a task exit, permissions (an unprivileged caller:
# device mode, ptrace rules of BIND, the events group), netlink counters, unload safety, and
# a clean kernel log. Writes "PASS|FAIL name detail" lines to $VMRUN_RESULTS/summary;
# bench mode writes the tables (lf-bench, then lf-fillbench) to $VMRUN_RESULTS/table.txt.
set -u
ROOT=$1
MODE=${2:-test}
R=$VMRUN_RESULTS
T=$ROOT/build/tests/kmod
KO=$ROOT/build/kmod/lazyfill.ko
: >"$R/summary"
fails=0

record() { # record PASS|FAIL name [detail]
	echo "$1 $2${3:+ $3}" | tee -a "$R/summary"
	[ "$1" = PASS ] || fails=$((fails + 1))
}

# run NAME TIMEOUT CMD...: one test program; its output in $R/NAME.log
run() {
	_n=$1 _to=$2
	shift 2
	_t0=$(date +%s)
	if timeout "$_to" "$@" >"$R/$_n.log" 2>&1; then
		record PASS "$_n" "($(( $(date +%s) - _t0 )) s) $(grep -v '^lf-[a-z]*: ok$' "$R/$_n.log" | tail -n 3 | tr '\n' ';')"
	else
		record FAIL "$_n" "(exit $?) see $_n.log: $(tail -n 5 "$R/$_n.log" | tr '\n' ';')"
	fi
}

# Kernel log lines that must never appear.
bad_dmesg() {
	dmesg | grep -E 'BUG|WARNING|Oops|general protection|Call Trace|kernel BUG|lazyfill.*(leak|live)' |
		grep -v 'unloaded: .* 0 live'
}

dmesg -C 2>/dev/null || true
if ! insmod "$KO"; then
	record FAIL insmod "insmod $KO failed"
	dmesg | tail -n 20 >"$R/dmesg.txt"
	exit 1
fi
record PASS insmod "$(dmesg | grep -m1 'lazyfill: loaded' || true)"
[ -c /dev/lazyfill ] || { sleep 1; [ -c /dev/lazyfill ]; } || record FAIL device "no /dev/lazyfill"

case $MODE in
bench)
	if timeout 600 "$T/lf-bench" "${BENCH_PAGES:-8192}" "${BENCH_REPEAT:-5}" >"$R/table.txt" 2>"$R/bench.err"; then
		record PASS bench
	else
		record FAIL bench "$(cat "$R/bench.err")"
	fi
	# The same comparison through the daemon's wrapper (fill.h's filler_batch).
	if timeout 600 "$T/lf-fillbench" "${BENCH_PAGES:-8192}" "${BENCH_REPEAT:-5}" >>"$R/table.txt" 2>"$R/fillbench.err"; then
		record PASS fillbench
	else
		record FAIL fillbench "$(cat "$R/fillbench.err")"
	fi
	;;
*)
	for t in ${KMOD_TESTS:-hostile equal concur perm}; do
		case $t in
		hostile) run hostile 300 "$T/lf-hostile" "${FUZZ_CALLS:-100000}" ;;
		equal) run equal 300 "$T/lf-equal" ;;
		concur) run concur 300 "$T/lf-concur" "${CONCUR_SECONDS:-8}" ;;
		perm) run perm 120 "$T/lf-perm" ;;
		esac
	done
	run nlstat 30 "$T/lf-nlstat" --live 0
	# Unload safety: refused while a session is open, fine once it is closed.
	exec 3<>/dev/lazyfill
	if rmmod lazyfill 2>"$R/rmmod-busy.txt"; then
		record FAIL unload-busy "rmmod succeeded with /dev/lazyfill open"
		exec 3>&-
	else
		exec 3>&-
		record PASS unload-busy "$(cat "$R/rmmod-busy.txt")"
	fi
	;;
esac

if lsmod | grep -q '^lazyfill'; then
	if rmmod lazyfill; then
		record PASS unload "$(dmesg | grep 'lazyfill: unloaded' | tail -n 1)"
	else
		record FAIL unload "rmmod failed"
	fi
fi
dmesg >"$R/dmesg.txt"
if bad_dmesg >"$R/dmesg-bad.txt"; then
	record FAIL dmesg "$(head -n 5 "$R/dmesg-bad.txt" | tr '\n' ';')"
else
	record PASS dmesg "no BUG/WARNING/Oops in the kernel log"
fi
[ "$fails" = 0 ]
