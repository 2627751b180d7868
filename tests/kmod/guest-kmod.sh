# Guest side of the lazyfill.ko tests (run by vmrun.sh): guest-kmod.sh ROOT test|bench
# With the module loaded by insmod: hostile input and fuzz, byte-identical fills (kmod vs
# uffd), concurrency with fork/mremap and a task exit, permissions (an unprivileged caller:
# device mode, ptrace rules of BIND, the events group), netlink counters, unload safety, and
# a clean kernel log. Writes "PASS|FAIL name detail" lines to $VMRUN_RESULTS/summary;
# bench mode writes the tables (lf-bench, lf-fillbench, then criu-lazyd's drain with each
# engine) to $VMRUN_RESULTS/table.txt.
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

# The daemon itself: restore-sim's "strided" scenario (every second page read before the
# drain, so each drain chunk holds one-page runs) served by criu-lazyd --fault-window 1 with
# --fill kmod (a chunk's runs in one module batch) and --fill uffd (an ioctl per run),
# alternating, BENCH_REPEAT rounds; the drain's time from the daemon's summary, medians, and
# the ratio of one run. Every byte is checked by restore-sim.
daemon_bench() {
	_sim=$ROOT/build/tests/host/restore-sim
	_rounds=${BENCH_REPEAT:-5}
	for e in kmod uffd; do
		printf '#!/bin/sh\nexec %s --fill %s --fault-window 1 "$@"\n' \
			"$ROOT/build/bin/criu-lazyd" "$e" >/tmp/lazyd-bench-$e
		chmod +x /tmp/lazyd-bench-$e
		: >"$R/drain-$e.txt"
	done
	_i=0
	while [ $_i -lt "$_rounds" ]; do
		for e in kmod uffd; do
			_d=/tmp/dbench-$e-$_i
			rm -rf "$_d" && mkdir -p "$_d"
			if ! timeout 300 "$_sim" --scenario strided --dir "$_d" \
				--daemon /tmp/lazyd-bench-$e >"$R/dbench-$e-$_i.out" 2>&1; then
				record FAIL daemon-bench "$e round $_i: $(tail -n 2 "$R/dbench-$e-$_i.out" | tr '\n' ';')"
				return
			fi
			sed -n 's/.*drain \([0-9.]*\) s after restore.*/\1/p' "$_d/lazyd.log" >>"$R/drain-$e.txt"
			[ $e = kmod ] && grep -h 'summary: fill engine kmod' "$_d/lazyd.log" >"$R/dbench-kmod-summary.txt"
			rm -rf "$_d"
		done
		_i=$((_i + 1))
	done
	_mk=$(sort -n "$R/drain-kmod.txt" | sed -n "$(((_rounds + 1) / 2))p")
	_mu=$(sort -n "$R/drain-uffd.txt" | sed -n "$(((_rounds + 1) / 2))p")
	if [ -z "$_mk" ] || [ -z "$_mu" ] || ! grep -q batches "$R/dbench-kmod-summary.txt"; then
		record FAIL daemon-bench "no drain times or no kmod summary"
		return
	fi
	_ratio=$(awk -v k="$_mk" -v u="$_mu" 'BEGIN { printf "%.2f", (k > 0 ? u / k : 0) }')
	{
		echo
		echo "criu-lazyd drain of one-page runs (restore-sim strided, 128 MB, --fault-window 1),"
		echo "medians of $_rounds alternating rounds:"
		echo "  --fill kmod (chunk runs as one batch): $_mk s"
		echo "  --fill uffd (one UFFDIO_COPY per run): $_mu s"
		echo "  speed-up of the batch path: ${_ratio}x"
		echo "  $(cat "$R/dbench-kmod-summary.txt")"
	} >>"$R/table.txt"
	record PASS daemon-bench "kmod $_mk s, uffd $_mu s: ${_ratio}x"
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
	daemon_bench
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
