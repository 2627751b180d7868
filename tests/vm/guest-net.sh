# Guest side of the network VM tests (run by vmrun.sh): guest-net.sh ROOT [SCENARIO...]
# With real CRIU, on the guest's loopback only:
#   imgd      criu dump; criu-imgd serves the images; criu restore --lazy-pages with
#             criu-lazyd --image-server (the daemon gets nothing but the image id)
#   ps-ours   post-copy: criu dump --lazy-pages --port P keeps the pages on its page server;
#             criu-lazyd --page-server fetches them; restore into a new pid namespace
#   ps-criu   the same with criu lazy-pages --page-server
#   psd-ours  criu dump (pages in the images), then criu page-server --lazy-pages serves them;
#             criu-lazyd --page-server fetches them (psd-criu: criu lazy-pages --page-server)
#   bench     256 MB faultprobe: fault latency (p50/p99, seen by the task, while the rest
#             streams) and full drain time, criu-lazyd + criu-imgd vs criu lazy-pages
#             --page-server + CRIU's page server (and criu-lazyd --page-server); with
#             NET_BENCH_W1=1 also criu-lazyd + criu-imgd with --fault-window 1 (one page a
#             fault, as criu lazy-pages fetches)
#   forkbench 256 MB memhog -f (forks right after restore, parent and child read and check
#             everything): total time and stalls, criu-lazyd + criu-imgd, criu-lazyd
#             --page-server and criu lazy-pages --page-server against criu page-server
#             --lazy-pages on the images, criu-lazyd on local images; 3 rounds, one checkpoint
#             (not in the default list). Table in $VMRUN_RESULTS/fork-bench.txt.
# Writes "PASS|FAIL scenario (daemon) ..." to $VMRUN_RESULTS/summary and the benchmark table
# to $VMRUN_RESULTS/net-bench.txt. Env: NET_LAZYD (criu-lazyd with the remote sources),
# NET_BENCH_MB (default 256); NET_FORK_MB, NET_FORK_ROUNDS, NET_FORK_SETUPS, NET_FORK_V
# (forkbench).
set -u
ROOT=$1
shift
. "$ROOT/tests/vm/lib.sh"
R=$VMRUN_RESULTS
: >"$R/summary"
LAZYD=${NET_LAZYD:-$ROOT/build/bin/criu-lazyd}
IMGD=$ROOT/build/bin/criu-imgd
PROBE=$ROOT/build/tests/workloads/faultprobe
PORT=27027
[ $# -gt 0 ] || set -- imgd ps-ours ps-criu psd-ours psd-criu bench

record() { echo "$1 $2 ($3)${4:+ $4}" | tee -a "$R/summary"; }
listening() { ss -ltnH "sport = :$1" 2>/dev/null | grep -q .; }

# imgd_up IMGDIR LOG: criu-imgd on loopback port PORT, with the key KEY (criu-imgd always
# needs one, on loopback too); sets IPID.
KEY=$VM/net.key
imgd_up() {
	[ -s "$KEY" ] || { head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$KEY"; chmod 600 "$KEY"; }
	"$IMGD" -D "$1" --address 127.0.0.1 --port "$PORT" --auth-key "$KEY" -o "$2" -v4 &
	IPID=$!
	wait_until 30 listening "$PORT"
}
imgd_down() { kill "$IPID" 2>/dev/null; wait "$IPID" 2>/dev/null; IPID=""; }

# probe_start CASE MB: faultprobe in place of memhog (same control protocol).
probe_start() {
	_c=$1
	rm -rf "${VM:?}/$_c"
	mkdir -p "$VM/$_c/ctl" "$VM/$_c/img"
	setsid "$PROBE" -m "$2" -s 5 -n 2000 -c "$VM/$_c/ctl" -o "$VM/$_c/result" \
		</dev/null >"$VM/$_c/out" 2>&1 &
	WPID=$!
	echo "$WPID" >"$VM/$_c/pid"
	wait_until 120 has_line "$_c" "ready " || { log "faultprobe did not get ready"; return 1; }
}

# ---- imgd: dump, serve, restore through criu-lazyd --image-server ----
run_imgd() { # CASE: dumped already; restore with mode $2; sets RUN etc. (restore_run)
	imgd_up "$VM/$1/img" "$VM/$1/imgd.log" || { FAIL_WHY="criu-imgd did not listen"; return 1; }
	OURS_LAZY="$LAZYD --image-server 127.0.0.1:$PORT --image img --auth-key $KEY ${LAZYD_EXTRA:-}" \
		restore_run "$1" ours "$2"
	_rc=$?
	imgd_down
	cp "$VM/$1/imgd.log" "$RUN/" 2>/dev/null
	return $_rc
}

# ---- post-copy: criu dump --lazy-pages --port, a page-server daemon, restore in a new pidns ----
# ps_run CASE ours|criu MODE: sets RUN, RESUME_MS, DRAIN_MS, FAIL_WHY.
ps_run() {
	_c=$1 _who=$2 _mode=$3
	RUN=$VM/$_c/run-ps-$_who
	rm -rf "$RUN"
	mkdir -p "$RUN"
	RESUME_MS="" DRAIN_MS="" FAIL_WHY=""
	_pid=$(cat "$VM/$_c/pid")
	timeout 600 criu dump -t "$_pid" -D "$VM/$_c/img" --lazy-pages --address 127.0.0.1 \
		--port "$PORT" -o "$RUN/dump.log" -v4 >"$RUN/dump.out" 2>&1 &
	_dpid=$!
	if ! wait_until 300 listening "$PORT"; then
		FAIL_WHY="criu dump --lazy-pages did not start its page server"
		kill "$_dpid" 2>/dev/null
		return 1
	fi
	touch "$VM/$_c/ctl/restored"
	case $_who in
	ours) _cmd="$LAZYD --page-server --address 127.0.0.1 --port $PORT --stats-file $RUN/stats.json" ;;
	criu) _cmd="criu lazy-pages --page-server --address 127.0.0.1 --port $PORT" ;;
	esac
	# shellcheck disable=SC2086
	( _r=0; $_cmd -D "$VM/$_c/img" -W "$RUN" -o "$RUN/lazy.log" -v4 >"$RUN/daemon.out" 2>&1 || _r=$?
	  echo "$_r $(now)" >"$RUN/daemon.exit" ) &
	_lpid=$!
	if ! wait_until 30 sock_or_exit "$RUN" || [ -f "$RUN/daemon.exit" ]; then
		FAIL_WHY="lazy-pages daemon did not start"
		kill "$_dpid" 2>/dev/null
		return 1
	fi
	_t0=$(now)
	# The dumped tree stays (frozen) while its page server runs: restore into a new pid ns.
	unshare -p -f --mount-proc criu restore -D "$VM/$_c/img" -W "$RUN" --lazy-pages \
		-o "$RUN/restore.log" -v4 >"$RUN/restore.out" 2>&1 &
	_rpid=$!
	_ok=1
	if ! wait_until 120 has_line "$_c" resumed; then
		FAIL_WHY="workload did not report resumed"
		_ok=0
	fi
	if [ $_ok = 1 ]; then
		RESUME_MS=$(ms "$_t0" "$(line_of "$_c" resumed | cut -d' ' -f2)")
		if [ "$_mode" = drain-first ] && ! wait_until 300 daemon_done "$RUN"; then
			FAIL_WHY="daemon did not finish"
			_ok=0
		fi
	fi
	if [ $_ok = 1 ]; then
		touch "$VM/$_c/ctl/verify"
		if ! wait_until 300 has_line "$_c" "verify "; then
			FAIL_WHY="workload did not verify"
			_ok=0
		elif ! wait_until 300 daemon_done "$RUN"; then
			FAIL_WHY="daemon did not exit after all pages were in"
			_ok=0
		fi
	fi
	[ -f "$RUN/daemon.exit" ] && DRAIN_MS=$(ms "$_t0" "$(cut -d' ' -f2 "$RUN/daemon.exit")")
	cp "$VM/$_c/result" "$RUN/result" 2>/dev/null
	# Stop the restored tree: the criu that is pid 1 of its namespace takes it along.
	for _k in $(cat /proc/"$_rpid"/task/*/children 2>/dev/null); do kill -KILL "$_k" 2>/dev/null; done
	kill -KILL "$_rpid" 2>/dev/null
	wait "$_rpid" 2>/dev/null
	wait_until 60 pid_gone "$_dpid" || kill -KILL "$_dpid" 2>/dev/null
	wait "$_dpid" 2>/dev/null
	kill -KILL "$_lpid" 2>/dev/null
	wait "$_lpid" 2>/dev/null
	[ $_ok = 1 ] || return 1
	case $(line_of "$_c" "verify ") in
	"verify ok"*) ;;
	*) FAIL_WHY="workload: $(line_of "$_c" "verify ")"; return 1 ;;
	esac
	_drc=$(cut -d' ' -f1 "$RUN/daemon.exit")
	[ "$_drc" = 0 ] || { FAIL_WHY="daemon exited with $_drc"; return 1; }
	return 0
}

save() { mkdir -p "$R/$1"; cp -r "$RUN" "$R/$1/" 2>/dev/null; }

# psd_run CASE ours|criu: CASE dumped normally; criu page-server --lazy-pages serves its
# images, the daemon fetches from it (restore_run's checks).
psd_run() {
	criu page-server -D "$VM/$1/img" --lazy-pages --address 127.0.0.1 --port "$PORT" \
		-o "$VM/$1/page-server.log" -v4 >"$VM/$1/page-server.out" 2>&1 &
	_ppid=$!
	if ! wait_until 60 listening "$PORT"; then
		FAIL_WHY="criu page-server --lazy-pages did not listen"
		RUN=$VM/$1
		return 1
	fi
	_ps="--page-server --address 127.0.0.1 --port $PORT"
	OURS_LAZY="$LAZYD $_ps" CRIU_LAZY="criu lazy-pages $_ps" restore_run "$1" "$2" verify-now
	_rc=$?
	wait_until 30 pid_gone "$_ppid" || kill -KILL "$_ppid" 2>/dev/null
	wait "$_ppid" 2>/dev/null
	cp "$VM/$1/page-server.log" "$RUN/" 2>/dev/null
	return $_rc
}

for s in "$@"; do
	case $s in
	imgd)
		if wl_start net-imgd memhog -m 16 -s 21 && wl_dump net-imgd; then
			if run_imgd net-imgd verify-now; then
				record PASS imgd ours "resume ${RESUME_MS} ms, drain ${DRAIN_MS} ms"
			else
				record FAIL imgd ours "$FAIL_WHY"
				excerpt "$RUN" net-imgd >"$R/fail-imgd-ours.txt"
			fi
			save imgd
		else
			record FAIL imgd ours "workload or criu dump failed"
		fi
		kill_case net-imgd 2>/dev/null
		rm -rf "${VM:?}/net-imgd"
		;;
	ps-ours | ps-criu)
		who=${s#ps-}
		if wl_start "net-$s" memhog -m 16 -s 23 && ps_run "net-$s" "$who" verify-now; then
			record PASS "$s" "$who" "resume ${RESUME_MS} ms, drain ${DRAIN_MS} ms"
		else
			record FAIL "$s" "$who" "$FAIL_WHY"
			excerpt "$RUN" "net-$s" >"$R/fail-$s.txt" 2>/dev/null
			tail -n 30 "$RUN/dump.log" >>"$R/fail-$s.txt" 2>/dev/null
		fi
		save "$s"
		kill -KILL "$WPID" 2>/dev/null
		rm -rf "${VM:?}/net-$s"
		;;
	psd-ours | psd-criu)
		who=${s#psd-}
		if wl_start "net-$s" memhog -m 16 -s 25 && wl_dump "net-$s" && psd_run "net-$s" "$who"; then
			record PASS "$s" "$who" "resume ${RESUME_MS} ms, drain ${DRAIN_MS} ms"
		else
			record FAIL "$s" "$who" "$FAIL_WHY"
			excerpt "$RUN" "net-$s" >"$R/fail-$s.txt" 2>/dev/null
			tail -n 30 "$VM/net-$s/page-server.log" >>"$R/fail-$s.txt" 2>/dev/null
		fi
		save "$s"
		kill_case "net-$s" 2>/dev/null
		rm -rf "${VM:?}/net-$s"
		;;
	bench)
		[ -x "$PROBE" ] || { record FAIL bench - "$PROBE missing (sh tests/net/run.sh builds it)"; continue; }
		MB=${NET_BENCH_MB:-256}
		ROUNDS=${NET_BENCH_ROUNDS:-3}
		T=$R/net-bench.txt
		RAWB=$R/net-bench-raw.txt
		: >"$RAWB"
		# One image for every imgd round (one checkpoint, many restores); post-copy needs a
		# live task per round. Rounds alternate the setups so load changes weigh on all.
		_ic=net-bench-imgd
		probe_start $_ic "$MB" && wl_dump $_ic || { record FAIL bench ours+imgd "setup failed"; continue; }
		SETUPS="imgd ps-criu ps-ours"
		[ "${NET_BENCH_W1:-0}" = 1 ] && SETUPS="$SETUPS imgd-w1"
		i=1
		while [ $i -le "$ROUNDS" ]; do
			for who in $SETUPS; do
				case $who in
				imgd)
					_bc=$_ic
					LAZYD_EXTRA=""
					run_imgd $_bc drain-first
					;;
				imgd-w1)
					_bc=$_ic
					LAZYD_EXTRA="--fault-window 1"
					run_imgd $_bc drain-first
					LAZYD_EXTRA=""
					;;
				ps-*)
					_bc=net-bench-$who
					probe_start $_bc "$MB" && ps_run $_bc "${who#ps-}" drain-first
					;;
				esac
				_rc=$?
				_p=$(line_of $_bc probes)
				if [ $_rc = 0 ]; then
					echo "$who round $i: $_p drain_ms=$DRAIN_MS" >>"$RAWB"
				else
					echo "$who round $i: FAIL $FAIL_WHY" >>"$RAWB"
					excerpt "$RUN" $_bc >"$R/fail-bench-$who-$i.txt" 2>/dev/null
				fi
				case $who in imgd*) cp "$RUN/stats.json" "$R/bench-$who-stats-$i.json" 2>/dev/null ;; esac
				save "bench-$who-$i"
				if [ "$_bc" != "$_ic" ]; then
					kill -KILL "$WPID" 2>/dev/null
					rm -rf "${VM:?}/$_bc"
				fi
			done
			i=$((i + 1))
		done
		kill_case $_ic 2>/dev/null
		rm -rf "${VM:?}/$_ic"
		median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{a[NR]=$1} END {if (NR) print a[int((NR+1)/2)]; else print "-"}'; }
		col() { grep "^$1 round" "$RAWB" | grep -v FAIL | sed -n "s/.* $2=\([0-9]*\).*/\1/p" | tr '\n' ' '; }
		{
			echo "network lazy restore, ${MB} MB faultprobe, qemu TCG guest (2 vCPU), loopback; medians of $ROUNDS rounds"
			echo "fault latency: first touches by the task of pages not yet present, one a ms, while the daemon streams the rest"
			echo "drain: start of criu restore -> the lazy-pages daemon exits (every page in)"
			printf '%-44s %8s %8s %8s %6s %9s\n' setup p50_us p99_us max_us faults drain_ms
			for who in $SETUPS; do
				case $who in
				imgd) _l="criu-lazyd --image-server + criu-imgd" ;;
				imgd-w1) _l="same, criu-lazyd --fault-window 1" ;;
				ps-criu) _l="criu lazy-pages --page-server + criu dump" ;;
				ps-ours) _l="criu-lazyd --page-server + criu dump" ;;
				esac
				printf '%-44s %8s %8s %8s %6s %9s\n' "$_l" "$(col $who p50_us | median)" \
					"$(col $who p99_us | median)" "$(col $who max_us | median)" \
					"$(col $who n | median)" "$(col $who drain_ms | median)"
			done
			echo
			cat "$RAWB"
		} >"$T"
		cat "$T"
		if grep -q FAIL "$RAWB"; then
			record FAIL bench - "$(grep -c FAIL "$RAWB") runs failed (net-bench-raw.txt)"
		else
			record PASS bench - "$(sed -n "5,$((4 + $(echo $SETUPS | wc -w)))p" "$T" | tr -s ' ' | tr '\n' ';')"
		fi
		;;
	forkbench)
		# 256 MB memhog -f: right after restore the task forks, parent and child both read and
		# check every byte (total: criu restore starts -> both done). One checkpoint, restored
		# by every setup in every round; rounds alternate the setups.
		MB=${NET_FORK_MB:-256}
		ROUNDS=${NET_FORK_ROUNDS:-3}
		T=$R/fork-bench.txt
		RAWF=$R/fork-bench-raw.txt
		: >"$RAWF"
		_fc=net-fork
		if ! { wl_start $_fc memhog -m "$MB" -s 27 -f && wl_dump $_fc; }; then
			record FAIL forkbench - "workload or criu dump failed"
			continue
		fi
		SETUPS=${NET_FORK_SETUPS:-"imgd psd-ours psd-criu local"}
		# The lazy-pages daemons' log level (-v4 by default, as elsewhere: CRIU's fault counts
		# come from its -v4 log; NET_FORK_V=2 shows what the logging costs).
		DAEMON_V=${NET_FORK_V:-4}
		i=1
		while [ $i -le "$ROUNDS" ]; do
			for who in $SETUPS; do
				log "forkbench round $i: $who"
				case $who in
				imgd) VERIFY_WAIT=300 run_imgd $_fc verify-now ;;
				imgdfix) LAZYD_EXTRA="--prefetch-window 8" VERIFY_WAIT=300 run_imgd $_fc verify-now ;;
				imgd1) LAZYD_EXTRA="--fill-threads 1" VERIFY_WAIT=300 run_imgd $_fc verify-now ;;
				psd-*) VERIFY_WAIT=300 psd_run $_fc "${who#psd-}" ;;
				local) VERIFY_WAIT=300 restore_run $_fc ours verify-now ;;
				esac
				_rc=$?
				_v=$(grep -m1 '^verify ' "$RUN/result" 2>/dev/null)
				_st=""
				if [ -f "$RUN/stats.json" ]; then
					cp "$RUN/stats.json" "$R/fork-$who-stats-$i.json"
					# criu-lazyd's own figures: faults and their latency, pages by way.
					_st=$(tr -d ' \n' <"$RUN/stats.json" | sed 's/[{}"]//g' | tr ',' '\n' |
						grep -E '^(faults|pages_fault|pages_prefetch|source_pages|pages_shared|forks):|^fault_latency_us:p50|^p99' |
						sed 's/^fault_latency_us:p50/d_p50_us/; s/^p99/d_p99_us/; s/:/=/' | tr '\n' ' ')
				elif [ -f "$RUN/lazy.log" ]; then
					# criu lazy-pages -v4: its faults (#PF lines), UFFDIO_COPY and zero-page
					# calls, and the pages it asked the page server for ("Read ADDR N pages").
					_st="pf_lines=$(grep -c '#PF' "$RUN/lazy.log") copy_lines=$(grep -c 'uffd_copy' "$RUN/lazy.log")"
					_st="$_st zero_lines=$(grep -c 'zero page at' "$RUN/lazy.log")"
					_st="$_st pages_read=$(awk '$3 == "Read" && $6 == "pages" {n += $5} END {print n + 0}' "$RUN/lazy.log")"
				fi
				if [ $_rc = 0 ]; then
					echo "$who round $i: total_ms=$TOUCH_MS resume_ms=$RESUME_MS drain_ms=$DRAIN_MS ${_v#verify ok } $_st" >>"$RAWF"
				else
					echo "$who round $i: FAIL $FAIL_WHY ($_v)" >>"$RAWF"
					excerpt "$RUN" $_fc >"$R/fail-forkbench-$who-$i.txt" 2>/dev/null
				fi
				# The logs (the -v4 ones gzipped).
				mkdir -p "$R/fork-$who-$i"
				for _f in "$RUN"/*; do
					case $_f in
					*.log) gzip -c "$_f" >"$R/fork-$who-$i/$(basename "$_f").gz" ;;
					*) [ -f "$_f" ] && cp "$_f" "$R/fork-$who-$i/" ;;
					esac
				done
			done
			i=$((i + 1))
		done
		rm -rf "${VM:?}/$_fc"
		median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{a[NR]=$1} END {if (NR) print a[int((NR+1)/2)]; else print "-"}'; }
		col() { grep "^$1 round" "$RAWF" | grep -v FAIL | sed -n "s/.* $2=\([0-9]*\).*/\1/p" | tr '\n' ' '; }
		{
			echo "fork workload: ${MB} MB memhog -f, qemu TCG guest (2 vCPU), loopback; medians of $ROUNDS rounds"
			echo "total: start of criu restore -> parent and child (forked right after restore) have both checked every byte"
			echo "stall: first touches of a page by either process that took >= 100 us (in-task timing); daemon: criu-lazyd's own fault latency"
			printf '%-44s %9s %9s %9s %8s %8s %8s %8s %8s\n' setup total_ms drain_ms resume_ms stall_n st_p50 st_p99 d_p50 d_p99
			for who in $SETUPS; do
				case $who in
				imgd) _l="criu-lazyd --image-server + criu-imgd" ;;
				imgdfix) _l="criu-lazyd --image-server, window of 8 reads" ;;
				imgd1) _l="criu-lazyd --image-server, one thread" ;;
				psd-ours) _l="criu-lazyd --page-server + criu page-server" ;;
				psd-criu) _l="criu lazy-pages --page-server + page-server" ;;
				local) _l="criu-lazyd, local images" ;;
				esac
				printf '%-44s %9s %9s %9s %8s %8s %8s %8s %8s\n' "$_l" "$(col "$who" total_ms | median)" \
					"$(col "$who" drain_ms | median)" "$(col "$who" resume_ms | median)" \
					"$(col "$who" stall_n | median)" "$(col "$who" stall_p50_us | median)" \
					"$(col "$who" stall_p99_us | median)" "$(col "$who" d_p50_us | median)" \
					"$(col "$who" d_p99_us | median)"
			done
			_crit=$(col psd-criu total_ms | median)
			for who in imgd psd-ours; do
				_t=$(col "$who" total_ms | median)
				case $_t$_crit in *-*) continue ;; esac
				echo "speedup vs criu lazy-pages --page-server, $who: $(awk "BEGIN {printf \"%.2f\", $_crit / $_t}")x"
			done
			echo
			cat "$RAWF"
		} >"$T"
		cat "$T"
		if grep -q FAIL "$RAWF"; then
			record FAIL forkbench - "$(grep -c FAIL "$RAWF") runs failed (fork-bench-raw.txt)"
		else
			record PASS forkbench - "$(grep -c round "$RAWF") runs, every byte verified by parent and child"
		fi
		;;
	*) record FAIL "$s" - "unknown scenario" ;;
	esac
done
! grep -q '^FAIL' "$R/summary"
