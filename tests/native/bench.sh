#!/bin/sh
# Native benchmark with CRIU 4.2.1 on the host's kernel (as root, from the tree):
#   sh tests/native/bench.sh [ROUNDS]              (default 5 rounds)
# A NATIVE_BENCH_MB (default 1024) MB memhog is dumped once per reader config (memhog -r 1 and
# -r 2: 1 or 2 threads read the memory on verify), then restored ROUNDS times per reader
# config with each setup:
#   eager  plain `criu restore` (no --lazy-pages): every page is in before the tasks run
#   criu   `criu lazy-pages` with the local images
#   ours   criu-lazyd with the local images
#   nokeeper  the same with --keeper off (one process: what the keeper costs, issue 12)
#   link   criu-lazyd --image-server across a veth pair shaped to NATIVE_BENCH_RATE (tbf on
#          the server's side; criu-imgd in a network namespace of its own; TLS 1.3 as beyond
#          loopback by default): `make bench-net`
#   tcp    not a restore: a plain TCP transfer of the images' non-zero page bytes over that link
#          (the yardstick of "link": total and the drain alone against it)
#   imgd   criu-lazyd --image-server 127.0.0.1:P --image img, criu-imgd -D IMG on loopback
#          (a fresh criu-imgd per restore, as tests/vm/guest-net.sh run_imgd does)
#   zpy-off, zpy-on, zpy-auto   compression (issue 11): criu-lazyd --compress off|on|auto and
#          criu-imgd over the shaped link (NATIVE_BENCH_RATE, e.g. 100mbit), restoring a python3
#          process that holds a NATIVE_BENCH_PY_MB (256) MB dict of strings
#          (tests/workloads/pydict.py: it checks the SHA-256 of its dict against the one it
#          printed before the dump); once per round whatever NATIVE_BENCH_THREADS says
#   zpylo-off, zpylo-auto  the python3 dict through criu-imgd on loopback, --compress off|auto
#   zlo-off, zlo-auto      the memhog through criu-imgd on loopback, --compress off|auto
#   zlink-off, zlink-auto  the memhog over the shaped link (e.g. 10gbit), --compress off|auto
# Each restore is tests/vm/lib.sh restore_run in mode verify-now: the lazy daemon (and
# criu-imgd) is started and listening first; t0 is taken right before `criu restore -d`; the
# workload's verification is triggered as soon as it reported it runs again.
#   resume: t0 -> the workload reports "resumed" (its first instruction after the restore)
#   total:  t0 -> the last reader thread has read and checked its last page ("verify ok at=")
# Every round must end with "verify ok" (all memory checked byte for byte) and the lazy
# daemon exiting 0, or the benchmark fails. Between restores the restored tree is killed and
# its pids are waited for (kill_case); the daemon and criu-imgd are waited for too.
# Rounds alternate the setups (the order rotates every round) so host load hits them alike.
# Output: a markdown table on stdout and in build/native/bench.md, JSON in
# build/native/bench.json, raw figures in build/native/bench-raw.txt, the logs and
# criu-lazyd --stats-file of every restore under build/native/bench-runs/.
# Env: NATIVE_BENCH_MB (1024), NATIVE_BENCH_DIR (images and run dirs; default
# /dev/shm/criu-lazy-bench, tmpfs like the VM benchmark), NATIVE_BENCH_V (log level of the
# lazy daemons and criu-imgd, default 2 = their default; `criu restore` logs at -v4 in
# restore_run for every setup), NATIVE_BENCH_PORT (criu-imgd port, default 0: any free one),
# NATIVE_BENCH_THREADS ("1 2"), NATIVE_BENCH_SETUPS ("eager criu ours nokeeper imgd"),
# NATIVE_SUITE (sid), NATIVE_BENCH_BIN (where criu-lazyd and criu-imgd are; default build/bin),
# NATIVE_BENCH_TREE (what to call the build in the JSON; default git describe of the tree),
# NATIVE_BENCH_KEEP=1 (keep the images and run dirs in NATIVE_BENCH_DIR after a good run).
# criu-lazyd and criu-imgd share a key (a file made here, chmod 600): the key only adds a
# challenge-response handshake per connection.
set -eu
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
ROUNDS=${1:-5}
MB=${NATIVE_BENCH_MB:-1024}
BDIR=${NATIVE_BENCH_DIR:-/dev/shm/criu-lazy-bench}
LOGV=${NATIVE_BENCH_V:-2}
PORT_WANT=${NATIVE_BENCH_PORT:-0}
THREADS=${NATIVE_BENCH_THREADS:-1 2}
SETUPS=${NATIVE_BENCH_SETUPS:-eager criu ours nokeeper imgd}
OUT=$ROOT/build/native
BIN=${NATIVE_BENCH_BIN:-$ROOT/build/bin}
IMGD=$BIN/criu-imgd
LAZYD=$BIN/criu-lazyd

case $ROUNDS in '' | *[!0-9]* | 0) echo "bench.sh: ROUNDS must be a positive number" >&2; exit 2 ;; esac
[ "$(id -u)" = 0 ] || { echo "bench.sh: run as root (criu dump/restore)" >&2; exit 2; }
for b in "$IMGD" "$LAZYD" "$ROOT/build/tests/workloads/memhog"; do
	[ -x "$b" ] || { echo "bench.sh: $b is not built (make)" >&2; exit 2; }
done

. "$ROOT/tests/native/env.sh"
native_env "${NATIVE_SUITE:-sid}"
VM=$BDIR
. "$ROOT/tests/vm/lib.sh"
VM=$BDIR # lib.sh's helpers read VM when they run: the bench dir, whatever lib.sh defaults to
DAEMON_V=$LOGV
OURS_LAZY_LOCAL=$LAZYD

# What was measured: the tree's commit (+ "-dirty" with local changes) and the binary.
TREE=${NATIVE_BENCH_TREE:-$(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo unknown)}
LAZYD_SUM=$(sha256sum "$LAZYD" | cut -c1-16)
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
T_START=$(now)
rm -rf "${BDIR:?}" "$OUT/bench-runs"
mkdir -p "$BDIR" "$OUT/bench-runs"
KEY=$BDIR/imgd.key
( umask 077; od -An -tx1 -N32 /dev/urandom | tr -d ' \n' >"$KEY" )
RAW=$OUT/bench-raw.txt
# setup threads round resume_ms total_ms drain_ms reader_ms faults pages_fault pages_zero served
# pages_total
DATA=$OUT/bench-data.txt
: >"$RAW"
: >"$DATA"
IPID=""

say() { echo "$*" | tee -a "$RAW" >&2; }

cleanup() {
	[ -z "$IPID" ] || { kill "$IPID" 2>/dev/null; wait "$IPID" 2>/dev/null; } || true
	link_down
	for t in $THREADS; do
		[ -f "$BDIR/r$t/pid" ] && kill_case "r$t" >/dev/null 2>&1
	done
	return 0
}
trap cleanup EXIT
trap 'exit 143' TERM INT

# ---- the shaped link (setups link, tcp): a veth pair, the server's end in a namespace ----
RATE=${NATIVE_BENCH_RATE:-1gbit}
LNS=lzbench$$ LHOST=lzbh$$ LSRV=lzbs$$ HOST_IP=10.251.79.1 SRV_IP=10.251.79.2
LINK=0
link_up() {
	ip netns add "$LNS" && ip link add "$LHOST" type veth peer name "$LSRV" &&
		ip link set "$LSRV" netns "$LNS" &&
		ip addr add "$HOST_IP/30" dev "$LHOST" && ip link set "$LHOST" up &&
		ip -n "$LNS" addr add "$SRV_IP/30" dev "$LSRV" && ip -n "$LNS" link set "$LSRV" up &&
		ip -n "$LNS" link set lo up &&
		ip netns exec "$LNS" tc qdisc add dev "$LSRV" root tbf rate "$RATE" burst 1mb latency 50ms
}
link_down() {
	[ "$LINK" = 1 ] || return 0
	ip link del "$LHOST" 2>/dev/null
	ip netns del "$LNS" 2>/dev/null
	LINK=0
}
case " $SETUPS " in
*" link "* | *" tcp "*)
	link_up || { echo "bench: cannot set up the shaped veth link" >&2; link_down; exit 1; }
	LINK=1
	;;
esac
case " $SETUPS " in
*" zpy-"* | *" zlink-"*)
	if [ "$LINK" != 1 ]; then
		link_up || { echo "bench: cannot set up the shaped veth link" >&2; link_down; exit 1; }
		LINK=1
	fi
	;;
esac

# tcp_run CASE: a plain TCP transfer of CASE's page bytes from the server's namespace; sets
# TOUCH_MS (its time), RESUME_MS (0), VERIFY, RUN.
tcp_run() {
	RUN=$BDIR/$1
	# What criu-imgd has to send: the pages that are not all zeros (it sends zero pages as
	# a bit), so that both move the same bytes of data.
	_bytes=$(python3 -c '
import sys
z = bytes(4096); n = 0
for f in sys.argv[1:]:
    with open(f, "rb") as h:
        while True:
            b = h.read(4096)
            if not b: break
            n += b != z[:len(b)]
print(n * 4096)' "$BDIR/$1"/img/pages-*.img)
	rm -f "$RUN/tcp.port"
	ip netns exec "$LNS" python3 -c '
import socket, sys
s = socket.socket(); s.bind((sys.argv[1], 0)); s.listen(1)
open(sys.argv[2], "w").write("%d" % s.getsockname()[1])
c, _ = s.accept(); left = int(sys.argv[3]); buf = bytes(1 << 20)
while left > 0:
    n = min(left, len(buf)); c.sendall(buf[:n]); left -= n
c.close()' "$SRV_IP" "$RUN/tcp.port" "$_bytes" &
	_tp=$!
	wait_until 30 file_nonempty "$RUN/tcp.port" || { FAIL_WHY="tcp sender did not start"; return 1; }
	TOUCH_MS=$(python3 -c '
import socket, sys, time
c = socket.create_connection((sys.argv[1], int(sys.argv[2]))); t0 = time.monotonic()
left = int(sys.argv[3]); got = 0
while got < left:
    b = c.recv(1 << 20)
    if not b: break
    got += len(b)
print(int((time.monotonic() - t0) * 1000) if got == left else -1)' "$SRV_IP" "$(cat "$RUN/tcp.port")" "$_bytes")
	wait "$_tp" 2>/dev/null
	RESUME_MS=0 DRAIN_MS=- VERIFY="tcp: $_bytes bytes"
	[ "${TOUCH_MS:--1}" -ge 0 ] 2>/dev/null || { FAIL_WHY="tcp transfer incomplete"; return 1; }
}

# imgd_up CASE [NS]: criu-imgd for CASE's images on loopback (or in the link's namespace on
# its veth address); sets IPID and PORT.
imgd_up() {
	rm -f "$BDIR/$1/imgd.port" "$BDIR/$1/imgd.log"
	_ns="" _addr=127.0.0.1
	[ -z "${2:-}" ] || { _ns="ip netns exec $2" _addr=$SRV_IP; }
	$_ns "$IMGD" -D "$BDIR/$1/img" --address "$_addr" --port "$PORT_WANT" --auth-key "$KEY" \
		-o "$BDIR/$1/imgd.log" "-v$LOGV" --status-fd 3 3>"$BDIR/$1/imgd.port" &
	IPID=$!
	wait_until 30 file_nonempty "$BDIR/$1/imgd.port" || return 1
	PORT=$(cat "$BDIR/$1/imgd.port")
	case $PORT in '' | *[!0-9]*) return 1 ;; esac
}
imgd_down() {
	kill "$IPID" 2>/dev/null || true
	wait "$IPID" 2>/dev/null || true
	IPID=""
}

# imgd_restore CASE [NS]: criu-imgd for CASE (on loopback, or in the link's namespace NS on
# its veth address) and one restore through it.
imgd_restore() {
	imgd_up "$1" ${2:-} || { FAIL_WHY="criu-imgd did not start"; RUN=$BDIR/$1; imgd_down; return 1; }
	_addr=127.0.0.1
	[ -z "${2:-}" ] || _addr=$SRV_IP
	OURS_LAZY="$LAZYD --image-server $_addr:$PORT --image img --auth-key $KEY"
	_or=0
	restore_run "$1" ours verify-now || _or=$?
	OURS_LAZY=$OURS_LAZY_LOCAL
	imgd_down
	cp "$BDIR/$1/imgd.log" "$RUN/" 2>/dev/null || true
	return $_or
}

# zstd_restore CASE NS MODE: as imgd_restore (NS empty: loopback), criu-lazyd --compress MODE;
# what crossed the wire (criu-imgd's session lines) goes to the raw log.
zstd_restore() {
	imgd_up "$1" $2 || { FAIL_WHY="criu-imgd did not start"; RUN=$BDIR/$1; imgd_down; return 1; }
	_addr=127.0.0.1
	[ -z "$2" ] || _addr=$SRV_IP
	OURS_LAZY="$LAZYD --image-server $_addr:$PORT --image img --auth-key $KEY --compress $3"
	_or=0
	restore_run "$1" ours verify-now || _or=$?
	OURS_LAZY=$OURS_LAZY_LOCAL
	imgd_down
	cp "$BDIR/$1/imgd.log" "$RUN/" 2>/dev/null || true
	echo "zstd $3: $(grep -o '[0-9]* bytes\(, zstd [^,]*: [0-9]* frames, [0-9]* of [0-9]* bytes\( tried\)\?\)\?' "$RUN/imgd.log" 2>/dev/null | tr '\n' ';')"
	return $_or
}

# py_dump: the python3 dict workload (tests/workloads/pydict.py), dumped as case "py".
py_dump() {
	_wl=$WL
	WL=$ROOT/tests/workloads
	_pr=0
	wl_start py pydict.py -m "$PY_MB" -s 7 || _pr=1
	WL=$_wl
	[ $_pr = 0 ] || return 1
	wl_dump py
}
PY_MB=${NATIVE_BENCH_PY_MB:-256}

# one_restore SETUP CASE: one restore_run of CASE with SETUP (verify-now); 0 if verified.
one_restore() {
	case $1 in
	eager) restore_run "$2" full verify-now ;;
	criu) restore_run "$2" criu verify-now ;;
	ours)
		OURS_LAZY=$OURS_LAZY_LOCAL
		restore_run "$2" ours verify-now
		;;
	nokeeper)
		OURS_LAZY="$OURS_LAZY_LOCAL --keeper off"
		_or=0
		restore_run "$2" ours verify-now || _or=$?
		OURS_LAZY=$OURS_LAZY_LOCAL
		return $_or
		;;
	imgd) imgd_restore "$2" ;;
	link) imgd_restore "$2" "$LNS" ;;
	tcp) tcp_run "$2" ;;
	zpy-off | zpy-on | zpy-auto) zstd_restore py "$LNS" "${1#zpy-}" ;;
	zpylo-off | zpylo-auto) zstd_restore py "" "${1#zpylo-}" ;;
	zlo-off | zlo-auto) zstd_restore "$2" "" "${1#zlo-}" ;;
	zlink-off | zlink-auto) zstd_restore "$2" "$LNS" "${1#zlink-}" ;;
	esac
}

# stat_of FILE KEY: a number of criu-lazyd's --stats-file, or "-".
stat_of() {
	_v=$(sed -n "s/^ *\"$2\": *\([0-9]*\).*/\1/p" "$1" 2>/dev/null | head -1)
	echo "${_v:--}"
}
median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{a[NR]=$1} END {if (NR) print a[int((NR+1)/2)]; else print "-"}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a ~ /^[0-9]+$/ && b ~ /^[0-9]+$/ && b > 0) printf "%.2f", a / b; else print "null" }'; }

# ---- dump one memhog per reader config ----
for t in $THREADS; do
	wl_start "r$t" memhog -m "$MB" -s 7 -r "$t" >>"$RAW" 2>&1 ||
		{ say "r$t: memhog did not start"; exit 1; }
	wl_dump "r$t" >>"$RAW" 2>&1 || { say "r$t: criu dump failed (end of $BDIR/r$t/dump.log above)"; exit 1; }
	say "r$t: ${MB} MB memhog -r $t dumped in ${DUMP_MS} ms ($(du -sm "$BDIR/r$t/img" | cut -f1) MB of images)"
done
case " $SETUPS " in *" zpy-"* | *" zpylo-"*)
	py_dump >>"$RAW" 2>&1 || { say "py: the python3 workload did not start or dump"; exit 1; }
	say "py: python3 with a ${PY_MB} MB dict of strings dumped in ${DUMP_MS} ms ($(du -sm "$BDIR/py/img" | cut -f1) MB of images; $(line_of py "ready " | cut -d' ' -f3-4))"
	;;
esac

# ---- rounds ----
nset=$(echo $SETUPS | wc -w)
i=1
while [ "$i" -le "$ROUNDS" ]; do
	# This round's order: SETUPS rotated by i-1.
	order=$(echo $SETUPS | awk -v k=$(((i - 1) % nset)) '{ for (j = 0; j < NF; j++) printf "%s ", $((j + k) % NF + 1) }')
	for t in $THREADS; do
		for s in $order; do
			if ! one_restore "$s" "r$t" >>"$RAW" 2>&1; then
				say "FAIL round $i, $s, $t reader(s): $FAIL_WHY"
				excerpt "$RUN" "r$t" >>"$RAW" 2>&1 || true
				cp -r "$RUN" "$OUT/bench-runs/FAIL-$s-r$t-$i" 2>/dev/null || true
				say "benchmark failed: logs in $OUT/bench-runs/FAIL-$s-r$t-$i, $RAW"
				exit 1
			fi
			rms=$(echo "$VERIFY" | sed -n 's/.* ms=\([0-9]*\) .*/\1/p')
			# criu-lazyd's counters (--stats-file) and the pages criu-imgd sent (its log).
			nf=$(stat_of "$RUN/stats.json" faults) pf=$(stat_of "$RUN/stats.json" pages_fault)
			pz=$(stat_of "$RUN/stats.json" pages_zero) pt=$(stat_of "$RUN/stats.json" pages_total) sv=-
			case $s in imgd | link)
				sv=$(grep -o '[0-9]* pages served' "$RUN/imgd.log" 2>/dev/null |
					awk '{ n += $1 } END { print n + 0 }') ;;
			esac
			echo "$s $t $i $RESUME_MS $TOUCH_MS ${DRAIN_MS:--} ${rms:--} $nf $pf $pz $sv $pt" >>"$DATA"
			extra=""
			[ "$nf" = - ] || extra="; criu-lazyd: $nf faults, $pf pages on demand, $pz zero"
			[ "$sv" = - ] || extra="$extra; criu-imgd sent $sv pages for $pt data pages"
			say "round $i $s r$t: resume ${RESUME_MS} ms, total ${TOUCH_MS} ms, daemon exit ${DRAIN_MS:--} ms ($VERIFY)$extra"
			mkdir -p "$OUT/bench-runs/$s-r$t-$i"
			for f in steps stats.json lazy.log daemon.out daemon.exit imgd.log result; do
				[ -f "$RUN/$f" ] && cp "$RUN/$f" "$OUT/bench-runs/$s-r$t-$i/"
			done
			# restore.log (-v4) is large: keep the first round's only.
			[ "$i" != 1 ] || cp "$RUN/restore.log" "$OUT/bench-runs/$s-r$t-$i/" 2>/dev/null || true
		done
	done
	i=$((i + 1))
done
T_END=$(now)
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)
RUN_S=$(( (T_END - T_START) / 1000000000 ))

# ---- medians, ratios, output ----
# med SETUP THREADS COLUMN (4 resume, 5 total, 6 drain, 7 reader)
med() { awk -v s="$1" -v t="$2" -v c="$3" '$1 == s && $2 == t { print $c }' "$DATA" | grep -v '^-$' | median; }
col() { awk -v s="$1" -v t="$2" -v c="$3" '$1 == s && $2 == t { printf "%s%s", n++ ? ", " : "", $c }' "$DATA"; }
# key SETUP: its name in the JSON.
key() {
	case $1 in
	eager) echo eager ;;
	criu) echo criu-lazy-pages ;;
	ours) echo criu-lazyd ;;
	nokeeper) echo criu-lazyd-nokeeper ;;
	imgd) echo criu-lazyd+criu-imgd ;;
	link) echo criu-lazyd+criu-imgd-link ;;
	tcp) echo tcp-same-link ;;
	z*) echo "zstd-$1" ;;
	esac
}
label() {
	case $1 in
	eager) echo 'eager `criu restore` (no --lazy-pages)' ;;
	criu) echo '`criu lazy-pages` (local images)' ;;
	ours) echo 'criu-lazyd (local images)' ;;
	nokeeper) echo 'criu-lazyd --keeper off (local images)' ;;
	imgd) echo 'criu-lazyd + criu-imgd (loopback)' ;;
	link) echo "criu-lazyd + criu-imgd (veth, tbf $RATE, TLS)" ;;
	tcp) echo "plain TCP, the same bytes, the same link" ;;
	zpy-*) echo "python3 ${PY_MB} MB dict, criu-imgd over veth tbf $RATE (TLS), --compress ${1#zpy-}" ;;
	zpylo-*) echo "python3 ${PY_MB} MB dict, criu-imgd on loopback, --compress ${1#zpylo-}" ;;
	zlo-*) echo "memhog, criu-imgd on loopback, --compress ${1#zlo-}" ;;
	zlink-*) echo "memhog, criu-imgd over veth tbf $RATE (TLS), --compress ${1#zlink-}" ;;
	esac
}
ZSTD_PAIRS="zpy-on,zpy-off zpy-auto,zpy-off zpylo-auto,zpylo-off zlo-auto,zlo-off zlink-auto,zlink-off"
DATE=$(date -u '+%Y-%m-%d %H:%M UTC')
KERNEL=$(uname -r)
NPROC=$(nproc)
CPU=$(sed -n 's/^model name[[:space:]]*: *//p' /proc/cpuinfo | head -1)
MEMGB=$(awk '/^MemTotal/ { printf "%d", $2 / 1048576 + 0.5 }' /proc/meminfo)

{
	echo "Native benchmark: ${MB} MB memhog, CRIU $CRIU_VERSION, kernel $KERNEL, $NPROC CPUs ($CPU), ${MEMGB} GB RAM"
	echo "images on $(df -P "$BDIR" | awk 'NR == 2 { print $1 }') ($BDIR); median of $ROUNDS rounds; $DATE; run time ${RUN_S} s"
	echo "load average (1/5/15 min) at the start: $LOAD_START, at the end: $LOAD_END (the host's other work)"
	echo
	echo "| setup | readers | resume | total |"
	echo "| --- | --- | --- | --- |"
	for t in $THREADS; do
		for s in $SETUPS; do
			echo "| $(label "$s") | $t | $(med "$s" "$t" 4) ms | $(med "$s" "$t" 5) ms |"
		done
	done
	echo
	echo "| ratio (medians) | readers | resume | total |"
	echo "| --- | --- | --- | --- |"
	for t in $THREADS; do
		for pair in "ours criu" "ours eager" "ours nokeeper" "imgd criu" "imgd eager" "link tcp" $ZSTD_PAIRS; do
			set -- $(echo "$pair" | tr , ' ')
			case " $SETUPS " in *" $1 "*) ;; *) continue ;; esac
			case " $SETUPS " in *" $2 "*) ;; *) continue ;; esac
			echo "| $(label "$1") / $(label "$2") | $t | $(ratio "$(med "$1" "$t" 4)" "$(med "$2" "$t" 4)") | $(ratio "$(med "$1" "$t" 5)" "$(med "$2" "$t" 5)") |"
		done
	done
	case " $SETUPS " in *" link "*)
		case " $SETUPS " in *" tcp "*)
			for t in $THREADS; do
				echo "| drain alone (restore start -> criu-lazyd exits) / plain TCP | $t | | $(ratio "$(med link "$t" 6)" "$(med tcp "$t" 5)") |"
			done
			;;
		esac
		;;
	esac
	echo
	echo "resume: start of \`criu restore\` -> the workload runs again; total: start of \`criu restore\`"
	echo "-> the workload's reader threads have read every page (verification triggered right after"
	echo "resume). Every round verified all memory (\"verify ok\")."
} | sed 's/| null |/| - |/g; s/| null$/| - |/' >"$OUT/bench.md"
cat "$OUT/bench.md"

# JSON (no jq needed)
{
	printf '{\n  "criu_version": "%s",\n  "date": "%s",\n' "$CRIU_VERSION" "$DATE"
	printf '  "machine": {"nproc": %s, "kernel": "%s", "cpu": "%s", "mem_gb": %s},\n' \
		"$NPROC" "$KERNEL" "$CPU" "$MEMGB"
	printf '  "loadavg_start": "%s",\n  "loadavg_end": "%s",\n' "$LOAD_START" "$LOAD_END"
	printf '  "workload_mb": %s,\n  "rounds": %s,\n  "run_seconds": %s,\n' "$MB" "$ROUNDS" "$RUN_S"
	printf '  "images_dir_fs": "%s",\n' "$(df -P "$BDIR" | awk 'NR == 2 { print $1 }')"
	printf '  "bin_dir": "%s",\n' "$BIN"
	printf '  "tree": "%s",\n  "criu_lazyd_sha256": "%s",\n  "daemon_log_level": %s,\n' "$TREE" "$LAZYD_SUM" "$LOGV"
	printf '  "definitions": {"resume_ms": "start of criu restore -> the workload reports it runs again", "total_ms": "start of criu restore -> the last reader thread has read every page (verify triggered right after resume)", "drain_ms": "start of criu restore -> the lazy daemon exits", "reader_ms": "the readers'"'"' own time (verify ms=)"},\n'
	printf '  "setups": {\n'
	ns=0
	for s in $SETUPS; do
		[ $ns = 0 ] || printf ',\n'
		ns=1
		printf '    "%s": {"label": "%s",\n' "$(key "$s")" "$(label "$s" | sed 's/"/\\"/g')"
		nt=0
		for t in $THREADS; do
			[ $nt = 0 ] || printf ',\n'
			nt=1
			printf '      "%s": {"resume_ms": %s, "total_ms": %s, "drain_ms": %s, "reader_ms": %s,\n' "$t" \
				"$(med "$s" "$t" 4)" "$(med "$s" "$t" 5)" "$(med "$s" "$t" 6 | sed 's/^-$/null/')" \
				"$(med "$s" "$t" 7 | sed 's/^-$/null/')"
			printf '        "rounds": [%s]}' "$(awk -v s="$s" -v t="$t" '
				function v(x) { return x == "-" || x == "" ? "null" : x }
				$1 == s && $2 == t {
				printf "%s{\"round\": %s, \"resume_ms\": %s, \"total_ms\": %s, \"drain_ms\": %s, \"reader_ms\": %s",
					n++ ? ", " : "", $3, $4, $5, v($6), v($7)
				if (v($8) != "null")
					printf ", \"faults\": %s, \"pages_on_demand\": %s, \"pages_zero\": %s, \"data_pages\": %s", $8, v($9), v($10), v($12)
				if (v($11) != "null")
					printf ", \"imgd_pages_sent\": %s", $11
				printf "}" }' "$DATA")"
		done
		printf '}'
	done
	printf '\n  },\n  "ratios": {\n'
	np=0
	for pair in "ours criu" "ours eager" "ours nokeeper" "imgd criu" "imgd eager" "link tcp" $ZSTD_PAIRS; do
		set -- $(echo "$pair" | tr , ' ')
		case " $SETUPS " in *" $1 "*) ;; *) continue ;; esac
		case " $SETUPS " in *" $2 "*) ;; *) continue ;; esac
		[ $np = 0 ] || printf ',\n'
		np=1
		printf '    "%s/%s": {' "$(key "$1")" "$(key "$2")"
		nt=0
		for t in $THREADS; do
			[ $nt = 0 ] || printf ', '
			nt=1
			printf '"%s": {"resume": %s, "total": %s}' "$t" \
				"$(ratio "$(med "$1" "$t" 4)" "$(med "$2" "$t" 4)")" "$(ratio "$(med "$1" "$t" 5)" "$(med "$2" "$t" 5)")"
		done
		printf '}'
	done
	printf '\n  }\n}\n'
} >"$OUT/bench.json"
echo
echo "JSON: $OUT/bench.json; raw: $RAW; logs: $OUT/bench-runs/; run time ${RUN_S} s"
# The dumps live in RAM (tmpfs): drop them unless asked to keep them.
if [ "${NATIVE_BENCH_KEEP:-0}" != 1 ]; then
	trap - EXIT
	cleanup
	rm -rf "${BDIR:?}"
fi
