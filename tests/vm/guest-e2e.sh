# Guest side of the VM end-to-end tests (run by vmrun.sh): guest-e2e.sh ROOT [SCENARIO...]
# Each scenario: start a workload, criu dump it once, then restore it lazily with each daemon
# (criu lazy-pages, then criu-lazyd) and have the workload verify all its memory.
# Writes "PASS|FAIL scenario (daemon) ..." lines to $VMRUN_RESULTS/summary, a log excerpt per
# failure to $VMRUN_RESULTS/fail-SCENARIO-DAEMON.txt and the run logs under $VMRUN_RESULTS/.
set -eu
ROOT=$1
shift
. "$ROOT/tests/vm/lib.sh"
R=$VMRUN_RESULTS
: >"$R/summary"
DAEMONS=${E2E_DAEMONS:-criu ours}

# name: workload and args
scenario_cmd() {
	case $1 in
	memhog16) echo "memhog -m 16 -s 11" ;;
	chaos) echo "chaos -k 1024 -s 7" ;;
	tree) echo "tree -n 3 -m 2 -t 4" ;;
	zombie) echo "tree -n 2 -m 1 -t 2 -z 2" ;;
	mixed) echo "mixed -k 512 -f $VM/mixed/data" ;;
	memhog256) echo "memhog -m 256 -s 3" ;;
	detach) echo "memhog -m 8 -s 13" ;; # daemon run with -d --pidfile --status-fd
	exit) echo "memhog -m 64 -s 17 -x" ;; # exits right after resuming, pages pending
	thp) echo "thp -m 64 -s 19" ;;        # transparent huge pages at dump
	memhog1g) echo "memhog -m 1024 -s 23" ;;
	guard) echo "guard -m 32 -s 29" ;;    # guard regions (CRIU 4.2, kernel 6.13+)
	guard-late) echo "guard -m 256 -s 29 -L" ;; # + guards installed on pending pages after restore
	*) return 1 ;;
	esac
}
[ $# -gt 0 ] || set -- memhog16 chaos tree zombie mixed detach exit memhog256

# thp_seen CASE: the thp workload must really have huge pages when it is dumped.
thp_seen() {
	[ "$1" = thp ] || return 0
	case $(line_of "$1" "ready ") in
	*thp_kb=0 | *thp_kb=-*) log "thp: the kernel gave the workload no huge page"; return 1 ;;
	esac
}

record() { # record PASS|FAIL name daemon detail
	echo "$1 $2 ($3)${4:+ $4}" | tee -a "$R/summary"
}

for s in "$@"; do
	cmd=$(scenario_cmd "$s") || { record FAIL "$s" - "unknown scenario"; continue; }
	t0=$(now)
	# shellcheck disable=SC2086
	if ! wl_start "$s" $cmd || ! thp_seen "$s" || ! wl_dump "$s"; then
		for d in $DAEMONS; do
			record FAIL "$s" "$d" "workload start or criu dump failed"
			{ tail -n 40 "$VM/$s/dump.log" 2>/dev/null; cat "$VM/$s/out" "$VM/$s/result" 2>/dev/null; } \
				>"$R/fail-$s-$d.txt" || true
		done
		kill_case "$s" 2>/dev/null || true
		continue
	fi
	for d in $DAEMONS; do
		if [ "$d" = ours ] && [ ! -x "$OURS_LAZY" ]; then
			record FAIL "$s" "$d" "$OURS_LAZY not built (make)"
			echo "no executable $OURS_LAZY" >"$R/fail-$s-$d.txt"
			continue
		fi
		t1=$(now)
		DAEMON_STYLE=""
		[ "$s" = detach ] && DAEMON_STYLE=detach
		mode=verify-now
		[ "$s" = exit ] && mode=exits
		if restore_run "$s" "$d" "$mode"; then
			record PASS "$s" "$d" "resume ${RESUME_MS} ms, drain ${DRAIN_MS} ms, total $(ms "$t1" "$(now)") ms"
		else
			record FAIL "$s" "$d" "$FAIL_WHY"
			excerpt "$RUN" "$s" >"$R/fail-$s-$d.txt"
		fi
		mkdir -p "$R/$s"
		cp -r "$RUN" "$R/$s/" 2>/dev/null || true
	done
	cp "$VM/$s/dump.log" "$VM/$s/out" "$R/$s/" 2>/dev/null || true
	log "$s: done in $(ms "$t0" "$(now)") ms (dump ${DUMP_MS} ms)"
	rm -rf "${VM:?}/$s"
done
! grep -q '^FAIL' "$R/summary"
