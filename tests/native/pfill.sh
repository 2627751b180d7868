#!/bin/sh
# Fill threads end to end (issue 13), natively with real CRIU 4.x: pfill.sh ROOT
# (run by tests/native/run.sh's e2e part with the suite's criu on PATH and VM set). Every
# restore is served by criu-lazyd --fill-threads 4 (more threads than CPUs: the threads
# race each other and the loop), with the keeper and without (--keeper off):
#   once     a 256 MB memhog left alone until the daemon is done (drain-first; without the
#            keeper the daemon detaches, -d, as a forked daemon must start its threads), every
#            byte checked after: the threads installed the stream (fill_jobs > 0) and every data
#            page went in exactly once: fault + prefetch pages == the image's data pages,
#            nothing found present twice (eexist 0), nothing dropped;
#   storm    the chaos workload with 16 MB regions (fork, mremap, madvise, munmap, writes to
#            pending pages, all right after restore while the threads install), 3 restores:
#            every byte checked (moved data at its new address, zeros where discarded),
#            the daemon exits 0 and kills nothing (its child verifies its copy of the
#            regions forked while the threads installed them).
# Writes "PASS|FAIL pfill-CASE (ours) ..." lines to $VMRUN_RESULTS/summary.
set -u
ROOT=$1
. "$ROOT/tests/vm/lib.sh"
R=$VMRUN_RESULTS
: >"$R/summary"
LAZYD=$ROOT/build/bin/criu-lazyd

result() { echo "$1 pfill-$2 (ours)${3:+ $3}" | tee -a "$R/summary"; }

# restore_pf CASE NAME MODE KEEPER: one restore with criu-lazyd --fill-threads 4.
restore_pf() {
	OURS_LAZY="$LAZYD --fill-threads 4 --keeper $4"
	if ! restore_run "$1" ours "$3"; then
		result FAIL "$2" "$FAIL_WHY"
		excerpt "$RUN" "$1" >"$R/fail-pfill-$2.txt" 2>&1 || true
		return 1
	fi
	case $VERIFY in
	"verify ok"*) ;;
	*)
		result FAIL "$2" "workload: $VERIFY"
		return 1
		;;
	esac
	cp "$RUN/lazy.log" "$R/pfill-$2.log" 2>/dev/null || true
	STATS=$RUN/stats.json
}

s() { stat_of "$STATS" "$1"; }

if ! { wl_start pfa memhog -m 256 -s 5 >/dev/null && wl_dump pfa >/dev/null; }; then
	result FAIL once "memhog did not start or dump"
else
	for k in on off; do
		# Without keeper, detached (-d): the threads start in the daemon that stays.
		style=""
		[ "$k" = on ] || style=detach
		DAEMON_STYLE=$style restore_pf pfa "once-keeper-$k" drain-first "$k" || continue
		data=$(s pages_total) # the image's lazy data pages
		got=$(( $(s pages_fault) + $(s pages_prefetch) ))
		if [ "$(s fill_jobs)" -lt 1 ]; then
			result FAIL "once-keeper-$k" "the fill threads installed no job"
		elif [ "$got" != "$data" ] || [ "$got" != "$(( $(s bytes_copied) / 4096 ))" ] ||
			[ "$(s eexist)" != 0 ] || [ "$(s pages_dropped)" != 0 ]; then
			result FAIL "once-keeper-$k" "$data data pages: installed $got, copied $(s bytes_copied) B, eexist $(s eexist), dropped $(s pages_dropped)"
		else
			result PASS "once-keeper-$k" "$(s fill_jobs) jobs, all $data data pages once each, every byte verified"
		fi
	done
fi

if ! { wl_start pfc chaos -k 4096 -s 11 >/dev/null && wl_dump pfc >/dev/null; }; then
	result FAIL storm "chaos did not start or dump"
else
	for k in on off; do
		ok=0 jobs=0 moved=0 stale=0
		for i in 1 2 3; do
			restore_pf pfc "storm-keeper-$k-$i" verify-now "$k" || break
			if [ "$(s tasks_killed)" != 0 ]; then
				result FAIL "storm-keeper-$k-$i" "$(s tasks_killed) tasks killed"
				break
			fi
			ok=$((ok + 1))
			jobs=$((jobs + $(s fill_jobs)))
			moved=$((moved + $(s fill_jobs_moved)))
			stale=$((stale + $(s fill_jobs_stale)))
		done
		[ "$ok" = 3 ] && result PASS "storm-keeper-$k" "3 restores verified; $jobs jobs ($stale stopped by an event, $moved settled after one)"
	done
fi

! grep -q '^FAIL' "$R/summary"
