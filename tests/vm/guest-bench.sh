# Guest side of the benchmark (run by vmrun.sh): guest-bench.sh ROOT [MB] [RUNS]
# Dumps one MB-megabyte memhog (default 256) and restores the same images RUNS times (default
# 3) with each of: criu lazy-pages, criu-lazyd (both lazy) and a plain full criu restore.
#   resume: start of `criu restore` -> the workload reports it runs again
#   drain:  start of `criu restore` -> the lazy daemon exits (all pages in; the workload idles)
#   touch:  start of `criu restore` -> the workload has read every byte right after resuming
#           (a separate restore: pages come in by faults racing the background transfer)
# Medians in the table $VMRUN_RESULTS/table.txt; raw figures below it.
set -eu
ROOT=$1
MB=${2:-256}
RUNS=${3:-5}
. "$ROOT/tests/vm/lib.sh"
R=$VMRUN_RESULTS
RAW=$R/raw.txt
: >"$RAW"

median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{a[NR]=$1} END {if (NR) print a[int((NR+1)/2)]; else print "-"}'; }

wl_start bench memhog -m "$MB" -s 5
wl_dump bench
fails=0
res_criu="" drn_criu="" tch_criu="" res_ours="" drn_ours="" tch_ours="" res_full="" drn_full="" tch_full=""
skip=" "
if [ ! -x "$OURS_LAZY" ]; then
	echo "ours: $OURS_LAZY not built" | tee -a "$RAW"
	fails=$((fails + 1))
	skip=" ours "
fi
# Rounds: each round restores once with every contender, so a change of the host's load
# during the benchmark weighs on all of them alike. A contender that fails once is dropped.
i=1
while [ "$i" -le "$RUNS" ]; do
	for who in criu ours full; do
		case $skip in *" $who "*) continue ;; esac
		if restore_run bench "$who" drain-first; then
			echo "$who run $i: resume ${RESUME_MS} ms, drain ${DRAIN_MS:--} ms" | tee -a "$RAW"
			eval "res_$who=\"\$res_$who $RESUME_MS\" drn_$who=\"\$drn_$who $DRAIN_MS\""
		else
			echo "$who run $i: FAIL ($FAIL_WHY)" | tee -a "$RAW"
			excerpt "$RUN" bench >>"$RAW"
			fails=$((fails + 1)) skip="$skip$who "
			continue
		fi
		[ "$who" != ours ] || cp "$RUN/stats.json" "$R/stats-drain-$i.json" 2>/dev/null || true
		[ "$who" != full ] || continue
		if restore_run bench "$who" verify-now; then
			echo "$who run $i: touch-all ${TOUCH_MS} ms (resume ${RESUME_MS}, daemon exit ${DRAIN_MS})" | tee -a "$RAW"
			eval "tch_$who=\"\$tch_$who $TOUCH_MS\""
		else
			echo "$who run $i touch-all: FAIL ($FAIL_WHY)" | tee -a "$RAW"
			excerpt "$RUN" bench >>"$RAW"
			fails=$((fails + 1)) skip="$skip$who "
		fi
		[ "$who" != ours ] || cp "$RUN/stats.json" "$R/stats-touch-$i.json" 2>/dev/null || true
	done
	i=$((i + 1))
done
for who in criu ours full; do
	for k in res drn tch; do
		eval "${k}_$who=\$(echo \"\$${k}_$who\" | median)"
	done
done

{
	echo "criu-lazyd benchmark: ${MB} MB memhog, images on tmpfs, qemu TCG guest (kernel $(uname -r), $(nproc) vCPU)"
	echo "median of $RUNS runs, milliseconds from the start of criu restore; $(date -u '+%Y-%m-%d %H:%M UTC')"
	echo
	printf '%-24s %10s %10s %10s\n' "" resume drain touch-all
	printf '%-24s %10s %10s %10s\n' "criu restore (full)" "$res_full" "-" "-"
	printf '%-24s %10s %10s %10s\n' "criu lazy-pages" "$res_criu" "$drn_criu" "$tch_criu"
	printf '%-24s %10s %10s %10s\n' "criu-lazyd" "${res_ours:--}" "${drn_ours:--}" "${tch_ours:--}"
	printf '%-24s %10s %10s %10s\n' "ratio criu-lazyd/criu" "$(ratio "${res_ours:-}" "$res_criu")" \
		"$(ratio "${drn_ours:-}" "$drn_criu")" "$(ratio "${tch_ours:-}" "$tch_criu")"
	printf '%-24s %10s\n' "ratio criu-lazyd/full" "$(ratio "${res_ours:-}" "$res_full")"
	printf '%-24s %10s\n' "ratio criu lazy/full" "$(ratio "$res_criu" "$res_full")"
	if command -v jq >/dev/null && [ -f "$R/stats-touch-1.json" ]; then
		echo
		echo "criu-lazyd --stats-file, touch-all runs (on-demand pages, faults, fault latency p50/p99 us):"
		for f in "$R"/stats-touch-*.json; do
			jq -r '"  \(.pages_fault) pages on demand, \(.pages_prefetch) prefetched, \(.faults) faults, p50 \(.fault_latency_us.p50) p99 \(.fault_latency_us.p99)"' "$f" || true
		done
	fi
	echo
	echo "resume: until the workload runs again; drain: until the lazy daemon exits with all pages in"
	echo "(the workload idle); touch-all: until the workload has read all its memory right after resume."
	[ "$fails" = 0 ] || echo "FAILURES: $fails (see the raw figures)"
	echo
	echo "raw:"
	cat "$RAW"
} >"$R/table.txt"
kill_case bench
[ "$fails" = 0 ]
