# Guest side of the end-to-end tests with real CRIU through lazyfill.ko (run by vmrun.sh):
# guest-e2e-kmod.sh ROOT [SCENARIO...]. Loads the module, runs tests/vm/guest-e2e.sh with
# criu-lazyd --fill kmod and then --fill uffd (each workload verifies every byte of its
# memory), checks that the kmod runs really went through the module, unloads it, and checks
# the kernel log. Writes "PASS|FAIL ..." lines to $VMRUN_RESULTS/summary.
# Env: KMOD_E2E_ENGINES (default "kmod uffd").
set -u
ROOT=$1
shift
[ $# -gt 0 ] || set -- memhog16 chaos tree
SCEN=$*
R=$VMRUN_RESULTS
: >"$R/summary"
fails=0
record() {
	echo "$1 $2${3:+ $3}" | tee -a "$R/summary"
	[ "$1" = PASS ] || fails=$((fails + 1))
}

dmesg -C 2>/dev/null || true
insmod "$ROOT/build/kmod/lazyfill.ko" || { record FAIL insmod; exit 1; }
record PASS insmod
for e in ${KMOD_E2E_ENGINES:-kmod uffd}; do
	printf '#!/bin/sh\nexec %s --fill %s "$@"\n' "$ROOT/build/bin/criu-lazyd" "$e" >/tmp/criu-lazyd-$e
	chmod +x /tmp/criu-lazyd-$e
	mkdir -p "$R/$e"
	OURS_LAZY=/tmp/criu-lazyd-$e E2E_DAEMONS=ours VMRUN_RESULTS=$R/$e \
		sh "$ROOT/tests/vm/guest-e2e.sh" "$ROOT" $SCEN >"$R/$e/e2e.log" 2>&1
	while IFS= read -r line; do
		set -- $line
		st=$1
		shift
		record "$st" "e2e-$e" "$*"
	done <"$R/$e/summary"
done
# The kmod runs went through the module: their logs say so, and the module counted pages.
n=0
for l in "$R"/kmod/*/run-ours/lazy.log; do
	[ -f "$l" ] || continue
	if grep -q 'fill engine: kmod' "$l" && grep -q 'summary: fill engine kmod' "$l"; then
		n=$((n + 1))
		grep 'summary: fill engine kmod' "$l" | sed "s|^|$(basename "$(dirname "$(dirname "$l")")"): |" >>"$R/kmod-summaries.txt"
	fi
	if grep -q 'no lazyfill.ko session' "$l"; then
		record FAIL kmod-session "$(grep -m1 'no lazyfill.ko session' "$l")"
	fi
	# A fork child whose pid the daemon could not tell is served with plain ioctls.
	grep 'pid unknown: plain userfaultfd' "$l" >>"$R/kmod-pid-unknown.txt"
done
[ "$n" -gt 0 ] && record PASS kmod-engine "$n runs through lazyfill.ko: $(tr '\n' ';' <"$R/kmod-summaries.txt")" ||
	record FAIL kmod-engine "no run logged the kmod engine"
[ -s "$R/kmod-pid-unknown.txt" ] &&
	echo "INFO $(wc -l <"$R/kmod-pid-unknown.txt") tasks with unknown pids served by plain userfaultfd" |
	tee -a "$R/summary"
"$ROOT/build/tests/kmod/lf-nlstat" >"$R/nlstat.txt" 2>&1
if grep -q 'sessions_live=0' "$R/nlstat.txt" && ! grep -q ' pages=0 ' "$R/nlstat.txt"; then
	record PASS nlstat "$(head -n 1 "$R/nlstat.txt")"
else
	record FAIL nlstat "$(cat "$R/nlstat.txt")"
fi
rmmod lazyfill && record PASS unload || record FAIL unload
dmesg >"$R/dmesg.txt"
if grep -E 'BUG|WARNING|Oops|general protection|Call Trace' "$R/dmesg.txt" >"$R/dmesg-bad.txt"; then
	record FAIL dmesg "$(head -n 3 "$R/dmesg-bad.txt" | tr '\n' ';')"
else
	record PASS dmesg
fi
[ "$fails" = 0 ]
