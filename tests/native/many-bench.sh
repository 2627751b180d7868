# bench.sh's setup "many" (sourced by tests/native/bench.sh after its own helpers; POSIX sh):
# one image, many restores (issue 13). A NATIVE_BENCH_MANY_MB (64) MB memhog is dumped once
# into NATIVE_BENCH_MANY_DIR (default /var/tmp/criu-lazy-many: a real filesystem, so that
# disk reads can be counted; /dev/shm would have none). Each round, in a rotating order:
#   tcp   plain TCP on loopback: the image's non-zero page bytes over NATIVE_BENCH_MANY (32)
#         connections at once (tests/native/tcp_fan.py): the yardstick
#   one   one restore through a fresh criu-imgd (tests/native/many.sh)
#   many  NATIVE_BENCH_MANY restores at once through one fresh criu-imgd (many.sh: each its
#         own criu-lazyd, empty images dir and pid and mount namespace)
# The restores' run dirs (the metadata each criu-lazyd fetches, work dirs, logs) are in
# MANY_RUNS, $BDIR/many-runs (tmpfs by default, as every other setup's): on the images' ext4
# the 32 x ~20 new files of a run, just after the last run's were deleted, cost criu-lazyd
# more CPU in ext4's inode allocation (find_inode_bit, recently_deleted) than its XXH64.
# Before "one" and "many" the image's files are evicted from the page cache
# (POSIX_FADV_DONTNEED, checked with fincore): criu-imgd reads them from disk as it serves.
# Figures: aggregate throughput (N x page bytes / wall, from the first restore launched to
# the last "verify ok") against the yardstick's; criu-imgd's peak RSS (VmHWM) with one and with
# N restores; its disk reads (/proc/PID/io read_bytes) against the pages image's size; each
# restore's total (criu restore start -> its "verify ok") and resume, p50 and max.
# `criu restore` runs at CRIU's default log level, 2 (NATIVE_BENCH_MANY_CRIU_V; the test,
# many-test.sh, keeps -v4): its log is not read here, and at -v4 the 32 CRIUs took about 6%
# more CPU time (2026-12-04, 4 runs each way: 4658 against 4384 ms for the 32 restores).
# Needs from bench.sh: BDIR VM OUT RAW ROUNDS ROOT IMGD LAZYD KEY LOGV, say, page_bytes_of,
# median, ratio, rot, and many.sh sourced.
MANY_N=${NATIVE_BENCH_MANY:-32}
MANY_MB=${NATIVE_BENCH_MANY_MB:-64}
MDIR=${NATIVE_BENCH_MANY_DIR:-/var/tmp/criu-lazy-many}
MANY_RUNS=$BDIR/many-runs
MANY_CRIU_V=${NATIVE_BENCH_MANY_CRIU_V:-2}
MANYDATA=$OUT/bench-many.txt
# One line per measurement in MANYDATA (cpu_ms: see many_cpu_ms):
#   tcp  ROUND ms cpu_ms
#   one  ROUND wall_ms hwm_kb read_bytes total_ms resume_ms served_pages cpu_ms
#   many ROUND wall_ms hwm_kb read_bytes total_p50 total_max resume_p50 resume_max served_pages cpu_ms

# The CPU time that the benchmark's own processes use, the host's other work left out: this
# shell joins a cgroup of its own (many_cg_join; cgroup v2, or v1's cpuacct), which every
# process it starts inherits, namespaces or not. many_cpu_ms: its CPU time so far in ms, "-"
# without such a cgroup. many_cg_leave: back where it was, the cgroup removed.
MANY_CG="" MANY_CG_HOME=""
many_cg_join() {
	if [ -f /sys/fs/cgroup/cgroup.controllers ]; then
		_h=$(sed -n 's/^0:://p' /proc/$$/cgroup) _base=/sys/fs/cgroup
	else
		_h=$(sed -n 's/^[0-9]*:\([^:]*,\)*cpuacct\(,[^:]*\)*://p' /proc/$$/cgroup)
		_base=/sys/fs/cgroup/cpuacct
	fi
	[ -n "$_h" ] && [ -d "$_base$_h" ] || return 0
	mkdir "$_base/criu-lazy-many.$$" 2>/dev/null || return 0
	if echo $$ >"$_base/criu-lazy-many.$$/cgroup.procs"; then
		MANY_CG=$_base/criu-lazy-many.$$ MANY_CG_HOME=$_base$_h
	else
		rmdir "$_base/criu-lazy-many.$$"
	fi
}
many_cg_leave() {
	[ -n "$MANY_CG" ] || return 0
	echo $$ >"$MANY_CG_HOME/cgroup.procs" && rmdir "$MANY_CG" 2>/dev/null
	MANY_CG=""
}
many_cpu_ms() {
	if [ -z "$MANY_CG" ]; then
		echo -
	elif [ -f "$MANY_CG/cpuacct.usage" ]; then
		echo $(($(cat "$MANY_CG/cpuacct.usage") / 1000000))
	else
		echo $(($(sed -n 's/^usage_usec //p' "$MANY_CG/cpu.stat") / 1000))
	fi
}
# many_cpu_delta A B: B - A, or "-".
many_cpu_delta() { [ "$1" = - ] || [ "$2" = - ] && echo - || echo $(($2 - $1)); }

# many_round KIND ROUND: one measurement (see above); 0, or FAIL_WHY says why not.
many_round() {
	if [ "$1" = tcp ]; then
		_c0=$(many_cpu_ms)
		_ms=$(python3 "$ROOT/tests/native/tcp_fan.py" "$MANY_N" "$MANY_BYTES") ||
			{ FAIL_WHY="the TCP transfer failed"; return 1; }
		_cpu=$(many_cpu_delta "$_c0" "$(many_cpu_ms)")
		echo "tcp $2 $_ms $_cpu" >>"$MANYDATA"
		echo "many round $2 tcp: $MANY_N x $MANY_BYTES bytes at once in $_ms ms, $_cpu ms of CPU"
		return 0
	fi
	_k=1
	[ "$1" = one ] || _k=$MANY_N
	evict "$MDIR/many/img"/* || { FAIL_WHY="cannot evict the image from the page cache"; return 1; }
	imgd_up_in "$MDIR/many" || { FAIL_WHY="criu-imgd did not start"; imgd_down; return 1; }
	_mr=0 _st0=$(head -n 1 /proc/stat) _c0=$(many_cpu_ms)
	many_restores "$MDIR/many" "$_k" "$PORT" || _mr=1
	_call=$(many_cpu_delta "$_c0" "$(many_cpu_ms)")
	_busy=$(echo "$_st0 $(head -n 1 /proc/stat)" | awk '{ for (i = 2; i <= 11; i++) { a += $i; b += $(i + 11) }
		idle = $(5 + 11) + $(6 + 11) - $5 - $6; printf "%.0f", 100 * (1 - idle / (b - a)) }')
	_hwm=$(proc_kb "$IPID" VmHWM) _rb=$(proc_io "$IPID" read_bytes) _cpu=$(proc_cpu_ms "$IPID")
	imgd_down
	[ "$_mr" = 0 ] || return 1
	[ -n "$_hwm" ] && [ -n "$_rb" ] || { FAIL_WHY="criu-imgd was gone at the end"; return 1; }
	_sv=$(many_served "$MDIR/many")
	_d=$OUT/bench-runs/many-$1-$2
	mkdir -p "$_d"
	cp "$MDIR/many/imgd.log" "$_d/"
	for _r in "$MANY_RUNS"/*; do
		mkdir -p "$_d/${_r##*/}"
		for _f in times result stats.json daemon.exit ns.rc lazy.log; do
			[ -f "$_r/$_f" ] && cp "$_r/$_f" "$_d/${_r##*/}/"
		done
	done
	if [ "$1" = one ]; then
		echo "one $2 $MANY_WALL_MS $_hwm $_rb $MANY_TOTALS $MANY_RESUMES $_sv $_call" | tr '\n' ' ' >>"$MANYDATA"
		echo >>"$MANYDATA"
	else
		echo "many $2 $MANY_WALL_MS $_hwm $_rb $(pct "$MANY_TOTALS" 50) $(pct "$MANY_TOTALS" 100)" \
			"$(pct "$MANY_RESUMES" 50) $(pct "$MANY_RESUMES" 100) $_sv $_call" >>"$MANYDATA"
	fi
	echo "many round $2 $1: $_k restore(s) in $MANY_WALL_MS ms, each $(pct "$MANY_TOTALS" 50) ms p50, $(pct "$MANY_TOTALS" 100) ms max (resume $(pct "$MANY_RESUMES" 50)/$(pct "$MANY_RESUMES" 100) ms); criu-imgd VmHWM $_hwm kB, read $_rb bytes from disk, sent $_sv pages, used $_cpu ms of CPU; all CPUs busy $_busy% meanwhile; all the run's processes used $_call ms of CPU"
}

many_bench() {
	: >"$MANYDATA"
	many_cg_join
	[ -n "$MANY_CG" ] || say "many: no cgroup of its own (CPU time not measured)"
	case $(stat -f -c %T "$(dirname "$MDIR")") in
	tmpfs | ramfs) say "many: $MDIR is on tmpfs: criu-imgd's disk reads cannot be measured there" ;;
	esac
	rm -rf "${MDIR:?}"
	mkdir -p "$MDIR"
	VM=$MDIR
	_ok=0
	{ wl_start many memhog -m "$MANY_MB" -s 13 && wl_dump many; } >>"$RAW" 2>&1 && _ok=1
	VM=$BDIR
	[ "$_ok" = 1 ] || { say "many: memhog did not start or dump"; exit 1; }
	MANY_PAGES_SIZE=$(cat "$MDIR/many/img"/pages-*.img | wc -c)
	MANY_BYTES=$(page_bytes_of "$MDIR/many/img")
	say "many: ${MANY_MB} MB memhog dumped in ${DUMP_MS} ms to $MDIR ($(df -P "$MDIR" | awk 'NR == 2 { print $1 }')): pages image $MANY_PAGES_SIZE bytes, $MANY_BYTES of them not zero"
	_mi=1 # (many.sh's loops use _i)
	while [ "$_mi" -le "$ROUNDS" ]; do
		for _kind in $(rot $(((_mi - 1) % 3)) "tcp one many"); do
			many_round "$_kind" "$_mi" >>"$RAW" 2>&1 || {
				_fd=$OUT/bench-runs/FAIL-many-$_kind-$_mi
				say "FAIL many round $_mi, $_kind: $FAIL_WHY"
				cp -r "$MANY_RUNS" "$_fd" 2>/dev/null
				cp "$MDIR/many/imgd.log" "$_fd/" 2>/dev/null
				say "benchmark failed: logs in $_fd, $RAW"
				many_cg_leave
				exit 1
			}
			tail -n 1 "$RAW" >&2
		done
		_mi=$((_mi + 1))
	done
	many_cg_leave
}

# mmed KIND COLUMN: the median over the rounds (column 3 is the first figure).
mmed() { awk -v k="$1" -v c="$2" '$1 == k { print $c }' "$MANYDATA" | median; }
mcol() { awk -v k="$1" -v c="$2" '$1 == k { printf "%s%s", n++ ? ", " : "", $c }' "$MANYDATA"; }
# many_fig: the medians and what follows from them (M_*).
many_fig() {
	M_TCP=$(mmed tcp 3) M_WALL=$(mmed many 3) M_HWMN=$(mmed many 4) M_RBN=$(mmed many 5)
	M_P50=$(mmed many 6) M_MAX=$(mmed many 7) M_RP50=$(mmed many 8) M_RMAX=$(mmed many 9)
	M_SV=$(mmed many 10) M_WALL1=$(mmed one 3) M_HWM1=$(mmed one 4) M_RB1=$(mmed one 5)
	M_RES1=$(mmed one 6) M_RRES1=$(mmed one 7)
	M_CTCP=$(mmed tcp 4) M_CONE=$(mmed one 9) M_CMANY=$(mmed many 11)
	M_CPER=$(awk -v c="$M_CMANY" -v n="$MANY_N" 'BEGIN { if (c == "-" || c == "") print "-"; else printf "%.0f", c / n }')
	M_CRAT=$(awk -v c="$M_CMANY" -v t="$M_CTCP" 'BEGIN { if (c == "-" || c == "" || t == "-" || !t) print "-"; else printf "%.1f", c / t }')
	M_AGG=$(awk -v n="$MANY_N" -v b="$MANY_BYTES" -v t="$M_WALL" 'BEGIN { printf "%.0f", n * b / t / 1000 }')
	M_TCPR=$(awk -v n="$MANY_N" -v b="$MANY_BYTES" -v t="$M_TCP" 'BEGIN { printf "%.0f", n * b / t / 1000 }')
	M_AGG1=$(awk -v b="$MANY_BYTES" -v t="$M_WALL1" 'BEGIN { printf "%.0f", b / t / 1000 }')
	M_RATIO=$(awk -v a="$M_TCP" -v b="$M_WALL" 'BEGIN { printf "%.2f", a / b }')
	M_PERCL=$(awk -v a="$M_HWMN" -v b="$M_HWM1" -v n="$MANY_N" 'BEGIN { printf "%.0f", (a - b) / (n - 1) }')
	M_HWMX=$(ratio "$M_HWMN" "$M_HWM1")
	M_RDN=$(awk -v r="$M_RBN" -v s="$MANY_PAGES_SIZE" 'BEGIN { printf "%.2f", r / s }')
	M_RD1=$(awk -v r="$M_RB1" -v s="$MANY_PAGES_SIZE" 'BEGIN { printf "%.2f", r / s }')
	M_SVX=$(awk -v v="$M_SV" -v n="$MANY_N" -v o="$(mmed one 8)" 'BEGIN { printf "%.3f", v / (n * o) }')
}

many_md() {
	many_fig
	echo
	echo "Many restores of one image (issue 13): a ${MANY_MB} MB memhog (pages image $MANY_PAGES_SIZE bytes,"
	echo "$MANY_BYTES of them not zero), $MANY_N restores at once through one criu-imgd on loopback, each"
	echo "its own criu-lazyd, empty images dir and pid namespace (criu restore -v$MANY_CRIU_V); images in $MDIR"
	echo "($(df -P "$MDIR" | awk 'NR == 2 { print $1 }'), evicted from the page cache before each restore run); median of $ROUNDS rounds."
	echo
	echo "| figure | 1 restore | $MANY_N restores at once |"
	echo "| --- | --- | --- |"
	echo "| wall: first restore launched -> last \"verify ok\" | $M_WALL1 ms | $M_WALL ms |"
	echo "| aggregate page data / wall | $M_AGG1 MB/s | $M_AGG MB/s |"
	echo "| plain TCP on loopback, the same bytes over $MANY_N connections at once | | $M_TCP ms, $M_TCPR MB/s |"
	echo "| aggregate / TCP (target >= 0.8) | | $M_RATIO |"
	echo "| each restore: criu restore start -> \"verify ok\", p50 / max | $M_RES1 ms | $M_P50 / $M_MAX ms |"
	echo "| each restore: resume, p50 / max | $M_RRES1 ms | $M_RP50 / $M_RMAX ms |"
	echo "| criu-imgd peak RSS (VmHWM) | $M_HWM1 kB | $M_HWMN kB ($M_HWMX x; $M_PERCL kB per extra restore) |"
	echo "| criu-imgd disk reads / pages image | $M_RD1 | $M_RDN |"
	echo "| pages criu-imgd sent / ($MANY_N x those it sent for 1 restore) | | $M_SVX |"
	echo "| CPU time of all the run's processes (TCP: $M_CTCP ms) | $M_CONE ms | $M_CMANY ms ($M_CPER ms a restore; $M_CRAT x TCP's) |"
	echo
	echo "rounds (ms): many $(mcol many 3); tcp $(mcol tcp 3); one $(mcol one 3). VmHWM (kB): many"
	echo "$(mcol many 4); one $(mcol one 4). read_bytes: many $(mcol many 5); one $(mcol one 5)."
	echo "CPU (ms): many $(mcol many 11); tcp $(mcol tcp 4); one $(mcol one 9)."
}

many_json() {
	many_fig
	printf ',\n  "many": {"restores": %s, "workload_mb": %s, "images_dir": "%s", "pages_image_bytes": %s, "page_data_bytes": %s,\n' \
		"$MANY_N" "$MANY_MB" "$MDIR" "$MANY_PAGES_SIZE" "$MANY_BYTES"
	printf '    "wall_ms": %s, "wall_one_ms": %s, "tcp_ms": %s, "aggregate_mb_s": %s, "tcp_mb_s": %s, "ratio_aggregate_tcp": %s,\n' \
		"$M_WALL" "$M_WALL1" "$M_TCP" "$M_AGG" "$M_TCPR" "$M_RATIO"
	printf '    "restore_total_p50_ms": %s, "restore_total_max_ms": %s, "resume_p50_ms": %s, "resume_max_ms": %s,\n' \
		"$M_P50" "$M_MAX" "$M_RP50" "$M_RMAX"
	printf '    "imgd_vmhwm_kb_one": %s, "imgd_vmhwm_kb_many": %s, "imgd_kb_per_extra_restore": %s,\n' \
		"$M_HWM1" "$M_HWMN" "$M_PERCL"
	printf '    "cpu_ms_tcp": "%s", "cpu_ms_one": "%s", "cpu_ms_many": "%s",\n' "$M_CTCP" "$M_CONE" "$M_CMANY"
	printf '    "imgd_read_bytes_one": %s, "imgd_read_bytes_many": %s, "read_over_pages_image_one": %s, "read_over_pages_image_many": %s,\n' \
		"$M_RB1" "$M_RBN" "$M_RD1" "$M_RDN"
	printf '    "rounds": [%s]}' "$(awk '
		$1 == "tcp" { printf "%s{\"kind\": \"tcp\", \"round\": %s, \"ms\": %s, \"cpu_ms\": \"%s\"}", n++ ? ", " : "", $2, $3, $4 }
		$1 == "one" { printf "%s{\"kind\": \"one\", \"round\": %s, \"wall_ms\": %s, \"imgd_vmhwm_kb\": %s, \"imgd_read_bytes\": %s, \"total_ms\": %s, \"resume_ms\": %s, \"pages_sent\": %s, \"cpu_ms\": \"%s\"}", n++ ? ", " : "", $2, $3, $4, $5, $6, $7, $8, $9 }
		$1 == "many" { printf "%s{\"kind\": \"many\", \"round\": %s, \"wall_ms\": %s, \"imgd_vmhwm_kb\": %s, \"imgd_read_bytes\": %s, \"total_p50_ms\": %s, \"total_max_ms\": %s, \"resume_p50_ms\": %s, \"resume_max_ms\": %s, \"pages_sent\": %s, \"cpu_ms\": \"%s\"}", n++ ? ", " : "", $2, $3, $4, $5, $6, $7, $8, $9, $10, $11 }' "$MANYDATA")"
}
