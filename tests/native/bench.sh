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
#   onethread the same with --fill-threads 1 (what the fill threads give, issue 13)
#   link   criu-lazyd --image-server across a veth pair shaped to NATIVE_BENCH_RATE (tbf on
#          the server's side; criu-imgd in a network namespace of its own; TLS 1.3 as beyond
#          loopback by default): `make bench-net`
#   tcp    not a restore: a plain TCP transfer of the images' non-zero page bytes over that link
#          (the yardstick of "link": total and the drain alone against it)
#   imgd   criu-lazyd --image-server 127.0.0.1:P --image img, criu-imgd -D IMG on loopback
#          (a fresh criu-imgd per restore, as tests/vm/guest-net.sh run_imgd does)
#   imgd1  imgd with --fill-threads 1: the event loop installs what the stream brings (issue
#          13: what the fill threads give over the network)
#   imgdfix, linkfix   imgd and link with criu-lazyd --prefetch-window 8: the fixed window
#          of reads that the default (auto, a window that follows the reads' delay) replaced
#   latency  issue 11's latency targets, not in the rotation: after the other setups' rounds,
#          ROUNDS rounds per round trip time of NATIVE_BENCH_RTT_MS ("1 10"): the "link" link,
#          its tbf queue made shallow (NATIVE_BENCH_LAT_TBF), with tests/net/delayproxy in the
#          host's namespace between criu-lazyd and criu-imgd (RTT/2 each way). Per round and
#          RTT, in a rotating order: (a) a NATIVE_BENCH_MB faultprobe (random touches of
#          missing pages, one a ms, while the stream runs): fault latency p50/p99 as the task
#          sees it; (b) a memhog -r 1 of the same size: total; (c) plain TCP through the same
#          relay and link: the same bytes (bytes/rate) and the idle path's round trip (ping).
#          Targets (issue 11): p50 <= RTT + one page at the link rate + 100 us, p99 <= 3 RTT,
#          sequential total <= 1.1 x TCP + 10 RTT. Output: a section of its own in bench.md,
#          "latency" in bench.json.
#   zpy-off, zpy-on, zpy-auto   compression (issue 11): criu-lazyd --compress off|on|auto and
#          criu-imgd over the shaped link (NATIVE_BENCH_RATE, e.g. 100mbit), restoring a python3
#          process that holds a NATIVE_BENCH_PY_MB (256) MB dict of strings
#          (tests/workloads/pydict.py: it checks the SHA-256 of its dict against the one it
#          printed before the dump); once per round whatever NATIVE_BENCH_THREADS says
#   zpylo-off, zpylo-auto  the python3 dict through criu-imgd on loopback, --compress off|auto
#   zlo-off, zlo-auto      the memhog through criu-imgd on loopback, --compress off|auto
#   zlink-off, zlink-auto  the memhog over the shaped link (e.g. 10gbit), --compress off|auto
#   many   issue 13, not in the rotation: one image, NATIVE_BENCH_MANY (32) restores at once
#          through one criu-imgd on loopback, each in a pid namespace of its own, against
#          plain TCP; criu-imgd's RSS and disk reads (tests/native/many-bench.sh). Its own
#          NATIVE_BENCH_MANY_MB (64) MB memhog, in NATIVE_BENCH_MANY_DIR
#          (/var/tmp/criu-lazy-many: a real filesystem). A section of its own in bench.md,
#          "many" in bench.json.
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
# restore_run for every setup but many: NATIVE_BENCH_MANY_CRIU_V, default 2), NATIVE_BENCH_PORT (criu-imgd port, default 0: any free one),
# NATIVE_BENCH_THREADS ("1 2"), NATIVE_BENCH_SETUPS ("eager criu ours nokeeper imgd"),
# NATIVE_SUITE (sid), NATIVE_BENCH_BIN (where criu-lazyd and criu-imgd are; default build/bin),
# NATIVE_BENCH_TREE (what to call the build in the JSON; default git describe of the tree),
# NATIVE_BENCH_KEEP=1 (keep the images and run dirs in NATIVE_BENCH_DIR after a good run),
# NATIVE_BENCH_WS (fresh: every restore without the working-set record of the ones before;
# keep: records merge from restore to restore, as for a user who restores one image again),
# NATIVE_BENCH_RATE (the link's rate, 1gbit), NATIVE_BENCH_RTT_MS ("1 10", setup latency),
# NATIVE_BENCH_LAT_TBF (the link's tbf queue in setup latency, "burst 64kb limit 256kb"),
# NATIVE_BENCH_LAT_QDISC (latency: a qdisc under that tbf, e.g. pfifo_fast, whose first band
# takes the fault connections criu-imgd marks; default none: the tbf's one FIFO),
# NATIVE_BENCH_LAT_CC (latency: net.ipv4.tcp_congestion_control in criu-imgd's namespace, e.g.
# bbr; default: the kernel's), NATIVE_BENCH_LAT_LAZYD (latency: more criu-lazyd options).
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
WS_MODE=${NATIVE_BENCH_WS:-fresh}
OUT=$ROOT/build/native
BIN=${NATIVE_BENCH_BIN:-$ROOT/build/bin}
IMGD=$BIN/criu-imgd
LAZYD=$BIN/criu-lazyd
PROXY=$ROOT/build/tests/net/delayproxy
# The setups of the rotation, and whether the latency block runs after them.
MAIN_SETUPS=$(echo $SETUPS | tr ' ' '\n' | grep -vx 'latency\|many' | tr '\n' ' ')
LAT=0 MANY=0
case " $SETUPS " in *" latency "*) LAT=1 ;; esac
case " $SETUPS " in *" many "*) MANY=1 ;; esac
RTTS=${NATIVE_BENCH_RTT_MS:-1 10}
LAT_TBF=${NATIVE_BENCH_LAT_TBF:-burst 64kb limit 256kb}
LAT_QDISC=${NATIVE_BENCH_LAT_QDISC:-} # a qdisc under that tbf (e.g. pfifo_fast); default: its FIFO
LAT_CC=${NATIVE_BENCH_LAT_CC:-}         # a TCP congestion control for the server's namespace
LAT_EXTRA=${NATIVE_BENCH_LAT_LAZYD:-}   # more criu-lazyd options in setup latency
# The dumps: a memhog per reader count for the rotation; latency needs r1 and a faultprobe.
CASES=""
[ -z "$MAIN_SETUPS" ] || for t in $THREADS; do CASES="$CASES r$t"; done
if [ "$LAT" = 1 ]; then
	case " $CASES " in *" r1 "*) ;; *) CASES="$CASES r1" ;; esac
	CASES="$CASES probe"
	for r in $RTTS; do
		case $r in '' | *[!0-9.]* | *.*.*) echo "bench.sh: NATIVE_BENCH_RTT_MS: '$r' is not a number of ms" >&2; exit 2 ;; esac
	done
fi

case $ROUNDS in '' | *[!0-9]* | 0) echo "bench.sh: ROUNDS must be a positive number" >&2; exit 2 ;; esac
[ "$(id -u)" = 0 ] || { echo "bench.sh: run as root (criu dump/restore)" >&2; exit 2; }
for b in "$IMGD" "$LAZYD" "$ROOT/build/tests/workloads/memhog" "$ROOT/build/tests/workloads/faultprobe" \
	"$PROXY"; do
	[ -x "$b" ] || { echo "bench.sh: $b is not built (make)" >&2; exit 2; }
done

. "$ROOT/tests/native/env.sh"
native_bench_env "$BDIR"
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
RPID=""
LATDATA=$OUT/bench-latency.txt
: >"$LATDATA"

say() { echo "$*" | tee -a "$RAW" >&2; }

cleanup() {
	[ -z "$IPID" ] || { kill "$IPID" 2>/dev/null; wait "$IPID" 2>/dev/null; } || true
	[ -z "$RPID" ] || { kill "$RPID" 2>/dev/null; wait "$RPID" 2>/dev/null; } || true
	link_down
	kill_cases $CASES
}
trap cleanup EXIT
trap 'exit 143' TERM INT

# ---- the shaped link (setups link, tcp): a veth pair, the server's end in a namespace ----
RATE=${NATIVE_BENCH_RATE:-1gbit}
LNS=lzbench$$ LHOST=lzbh$$ LSRV=lzbs$$ HOST_IP=10.251.79.1 SRV_IP=10.251.79.2
. "$ROOT/tests/native/shaped.sh"
case " $SETUPS " in
*" link "* | *" tcp "* | *" latency "*)
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

# page_bytes CASE: what criu-imgd has to send for CASE: the pages that are not all zeros (it
# sends zero pages as a bit), so that a plain TCP transfer moves the same bytes of data.
# page_bytes_of IMGDIR: the same for the images in IMGDIR.
page_bytes() { page_bytes_of "$BDIR/$1/img"; }
page_bytes_of() {
	python3 -c '
import sys
z = bytes(4096); n = 0
for f in sys.argv[1:]:
    with open(f, "rb") as h:
        while True:
            b = h.read(4096)
            if not b: break
            n += b != z[:len(b)]
print(n * 4096)' "$1"/pages-*.img
}

# tcp_run CASE: a plain TCP transfer of CASE's page bytes from the server's namespace; sets
# TOUCH_MS (its time), RESUME_MS (0), VERIFY, RUN.
tcp_run() {
	RUN=$BDIR/$1
	_bytes=$(page_bytes "$1")
	TOUCH_MS=$(link_tcp_ms "$_bytes" "$RUN/tcp.port")
	RESUME_MS=0 DRAIN_MS=- VERIFY="tcp: $_bytes bytes"
	[ "${TOUCH_MS:--1}" -ge 0 ] 2>/dev/null || { FAIL_WHY="tcp transfer incomplete"; return 1; }
}

# imgd_up CASE [NS]: criu-imgd for CASE's images on loopback (or in the link's namespace on
# its veth address); sets IPID and PORT.
imgd_up() { imgd_up_in "$BDIR/$1" ${2:-}; }

# imgd_restore CASE [NS [OPTS]]: criu-imgd for CASE (on loopback, or in the link's namespace
# NS on its veth address) and one restore through it (OPTS: more criu-lazyd options).
imgd_restore() {
	imgd_up "$1" ${2:-} || { FAIL_WHY="criu-imgd did not start"; RUN=$BDIR/$1; imgd_down; return 1; }
	_addr=127.0.0.1
	[ -z "${2:-}" ] || _addr=$SRV_IP
	OURS_LAZY="$LAZYD --image-server $_addr:$PORT --image img --auth-key $KEY ${3:-}"
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

# ours_with OPTIONS CASE: a restore of CASE by criu-lazyd (local images) with more options.
ours_with() {
	OURS_LAZY="$OURS_LAZY_LOCAL $1"
	_or=0
	restore_run "$2" ours verify-now || _or=$?
	OURS_LAZY=$OURS_LAZY_LOCAL
	return $_or
}

# one_restore SETUP CASE: one restore_run of CASE with SETUP (verify-now); 0 if verified.
# Each restore is a first one (NATIVE_BENCH_WS=fresh): the working-set record an earlier
# restore left beside the images is removed, so that rounds and setups meet the same images.
one_restore() {
	[ "$WS_MODE" = keep ] || rm -f "$BDIR/$2/img/lazy-workset.img"
	case $1 in
	eager) restore_run "$2" full verify-now ;;
	criu) restore_run "$2" criu verify-now ;;
	ours)
		OURS_LAZY=$OURS_LAZY_LOCAL
		restore_run "$2" ours verify-now
		;;
	nokeeper) ours_with "--keeper off" "$2" ;;
	onethread) ours_with "--fill-threads 1" "$2" ;;
	imgd) imgd_restore "$2" ;;
	imgdfix) imgd_restore "$2" "" "--prefetch-window 8" ;;
	imgd1) imgd_restore "$2" "" "--fill-threads 1" ;;
	link) imgd_restore "$2" "$LNS" ;;
	linkfix) imgd_restore "$2" "$LNS" "--prefetch-window 8" ;;
	tcp) tcp_run "$2" ;;
	zpy-off | zpy-on | zpy-auto) zstd_restore py "$LNS" "${1#zpy-}" ;;
	zpylo-off | zpylo-auto) zstd_restore py "" "${1#zpylo-}" ;;
	zlo-off | zlo-auto) zstd_restore "$2" "" "${1#zlo-}" ;;
	zlink-off | zlink-auto) zstd_restore "$2" "$LNS" "${1#zlink-}" ;;
	esac
}

# ---- latency (issue 11): tests/net/delayproxy between criu-lazyd and criu-imgd ----
# relay_up DEST_PORT RTT_MS: the relay on the host's end of the link (HOST_IP: criu-lazyd sees
# an address beyond loopback, so TLS is on as in "link"), to SRV_IP:DEST_PORT, RTT_MS/2 each
# way; sets RPID and RPORT.
relay_up() {
	rm -f "$BDIR/relay.port"
	"$PROXY" --listen "$HOST_IP:0" --to "$SRV_IP:$1" \
		--delay-us "$(awk -v r="$2" 'BEGIN { printf "%d", r * 500 }')" --status-fd 3 \
		3>"$BDIR/relay.port" 2>>"$BDIR/relay.log" &
	RPID=$!
	wait_until 10 file_nonempty "$BDIR/relay.port" || return 1
	RPORT=$(cat "$BDIR/relay.port")
	case $RPORT in '' | *[!0-9]*) return 1 ;; esac
}
relay_down() {
	[ -z "$RPID" ] || { kill "$RPID" 2>/dev/null; wait "$RPID" 2>/dev/null; } || true
	RPID=""
}

# lat_restore CASE RTT_MS: criu-imgd for CASE in the link's namespace, the relay before it, one
# restore through both (restore_run, verify-now).
lat_restore() {
	RUN=$BDIR/$1
	imgd_up "$1" "$LNS" || { FAIL_WHY="criu-imgd did not start"; imgd_down; return 1; }
	relay_up "$PORT" "$2" || { FAIL_WHY="delayproxy did not start"; relay_down; imgd_down; return 1; }
	OURS_LAZY="$LAZYD --image-server $HOST_IP:$RPORT --image img --auth-key $KEY $LAT_EXTRA"
	_or=0
	restore_run "$1" ours verify-now || _or=$?
	OURS_LAZY=$OURS_LAZY_LOCAL
	relay_down
	imgd_down
	cp "$BDIR/$1/imgd.log" "$RUN/" 2>/dev/null || true
	return $_or
}

# lat_tcp CASE RTT_MS: through the relay and the link, 50 ping-pongs of 64 bytes (the idle
# path's round trip: PING_US, median), then CASE's page bytes as in tcp_run (TOUCH_MS).
lat_tcp() {
	RUN=$BDIR/$1/run-tcp
	rm -rf "$RUN"
	mkdir -p "$RUN"
	_bytes=$(page_bytes "$1")
	ip netns exec "$LNS" python3 -c '
import socket, sys
s = socket.socket(); s.bind((sys.argv[1], 0)); s.listen(2)
open(sys.argv[2], "w").write("%d" % s.getsockname()[1])
c, _ = s.accept(); c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
while True:
    b = c.recv(64)
    if not b: break
    c.sendall(b)
c.close()
c, _ = s.accept(); left = int(sys.argv[3]); buf = bytes(1 << 20)
while left > 0:
    n = min(left, len(buf)); c.sendall(buf[:n]); left -= n
c.close()' "$SRV_IP" "$RUN/tcp.port" "$_bytes" &
	_tp=$!
	wait_until 30 file_nonempty "$RUN/tcp.port" || { FAIL_WHY="tcp sender did not start"; kill $_tp; wait $_tp; return 1; }
	relay_up "$(cat "$RUN/tcp.port")" "$2" || { FAIL_WHY="delayproxy did not start"; relay_down; kill $_tp; wait $_tp; return 1; }
	_out=$(python3 -c '
import socket, sys, time
a = (sys.argv[1], int(sys.argv[2])); left = int(sys.argv[3])
c = socket.create_connection(a); c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
rtt = []
for i in range(50):
    t0 = time.monotonic(); c.sendall(b"p" * 64); got = 0
    while got < 64:
        b = c.recv(64 - got)
        if not b: sys.exit(1)
        got += len(b)
    rtt.append(time.monotonic() - t0)
c.close(); rtt.sort()
c = socket.create_connection(a); t0 = time.monotonic(); got = 0
while got < left:
    b = c.recv(1 << 20)
    if not b: break
    got += len(b)
ms = int((time.monotonic() - t0) * 1000) if got == left else -1
print(int(rtt[len(rtt) // 2] * 1e6), ms)' "$HOST_IP" "$RPORT" "$_bytes")
	wait "$_tp" 2>/dev/null
	relay_down
	PING_US=${_out% *} TOUCH_MS=${_out#* } LAT_BYTES=$_bytes
	[ "${TOUCH_MS:--1}" -ge 0 ] 2>/dev/null || { FAIL_WHY="tcp transfer through the relay incomplete"; return 1; }
}

# ns_counters: criu-imgd's namespace's TCP retransmitted segments, RTO timeouts, tail loss
# probes, and the link's tbf drops ("R T P D"), to take differences around a run.
ns_counters() {
	ip netns exec "$LNS" sh -c 'cat /proc/net/snmp /proc/net/netstat' | awk '
		/^Tcp:/ { if (!th) { for (i = 1; i <= NF; i++) tn[i] = $i; th = 1 } else for (i = 1; i <= NF; i++) if (tn[i] == "RetransSegs") r = $i }
		/^TcpExt:/ { if (!eh) { for (i = 1; i <= NF; i++) en[i] = $i; eh = 1 } else for (i = 1; i <= NF; i++) { if (en[i] == "TCPTimeouts") t = $i; if (en[i] == "TCPLossProbes") p = $i } }
		END { printf "%d %d %d ", r, t, p }'
	ip netns exec "$LNS" tc -s qdisc show dev "$LSRV" | sed -n 's/.*(dropped \([0-9]*\),.*/\1/p' | head -1
}
# counters_diff BEFORE AFTER: "retransmits R, RTO timeouts T, loss probes P, tbf drops D".
counters_diff() {
	echo "$1 $2" | awk '{ printf "%d %d %d %d", $5 - $1, $6 - $2, $7 - $3, $8 - $4 }'
}

median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{a[NR]=$1} END {if (NR) print a[int((NR+1)/2)]; else print "-"}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a ~ /^[0-9]+$/ && b ~ /^[0-9]+$/ && b > 0) printf "%.2f", a / b; else print "null" }'; }

# ---- dump one memhog per reader config (rN), and the faultprobe of setup latency ----
for c in $CASES; do
	case $c in
	probe) w=faultprobe; wl_start "$c" faultprobe -m "$MB" -s 7 -n 2000 ;;
	*) w="memhog -r ${c#r}"; wl_start "$c" memhog -m "$MB" -s 7 -r "${c#r}" ;;
	esac >>"$RAW" 2>&1 || { say "$c: $w did not start"; exit 1; }
	wl_dump "$c" >>"$RAW" 2>&1 || { say "$c: criu dump failed (end of $BDIR/$c/dump.log above)"; exit 1; }
	say "$c: ${MB} MB $w dumped in ${DUMP_MS} ms ($(du -sm "$BDIR/$c/img" | cut -f1) MB of images)"
done
case " $SETUPS " in *" zpy-"* | *" zpylo-"*)
	py_dump >>"$RAW" 2>&1 || { say "py: the python3 workload did not start or dump"; exit 1; }
	say "py: python3 with a ${PY_MB} MB dict of strings dumped in ${DUMP_MS} ms ($(du -sm "$BDIR/py/img" | cut -f1) MB of images; $(line_of py "ready " | cut -d' ' -f3-4))"
	;;
esac

# ---- rounds ----
nset=$(echo $MAIN_SETUPS | wc -w)
i=1
[ "$nset" -gt 0 ] || i=$((ROUNDS + 1)) # latency alone: its block below
while [ "$i" -le "$ROUNDS" ]; do
	# This round's order: MAIN_SETUPS rotated by i-1.
	order=$(echo $MAIN_SETUPS | awk -v k=$(((i - 1) % nset)) '{ for (j = 0; j < NF; j++) printf "%s ", $((j + k) % NF + 1) }')
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
			keep_run "$OUT/bench-runs/$s-r$t-$i" steps stats.json lazy.log daemon.out daemon.exit imgd.log result
			# restore.log (-v4) is large: keep the first round's only.
			[ "$i" != 1 ] || cp "$RUN/restore.log" "$OUT/bench-runs/$s-r$t-$i/" 2>/dev/null || true
		done
	done
	i=$((i + 1))
done

# ---- latency (issue 11): rounds per RTT, the relay between criu-lazyd and criu-imgd ----
# One line per measurement in LATDATA:
#   probe RTT ROUND p50_us p99_us max_us probes drain_ms faults lazyd_p50_us lazyd_p99_us
#         source_pages_fault source_pages_stream
#   seq   RTT ROUND total_ms resume_ms drain_ms faults pages_fault source_pages_fault source_pages_stream
#   tcp   RTT ROUND bulk_ms ping_us bytes
# lazyd_lat FILE p50|p99: criu-lazyd's own fault latency (--stats-file), in us.
lazyd_lat() { sed -n "s/.*\"fault_latency_us\".*\"$2\": *\([0-9]*\).*/\1/p" "$1" 2>/dev/null | head -1; }
rot() { echo $2 | awk -v k="$1" '{ for (j = 0; j < NF; j++) printf "%s ", $((j + k) % NF + 1) }'; }
if [ "$LAT" = 1 ]; then
	# A shallow queue before the link, as a switch port has (docs/benchmarks.md).
	ip netns exec "$LNS" tc qdisc replace dev "$LSRV" root handle 1: tbf rate "$RATE" $LAT_TBF ||
		{ say "latency: cannot set the link's tbf to '$LAT_TBF'"; exit 1; }
	# The queue's discipline: the tbf's own FIFO, or LAT_QDISC (pfifo_fast: the fault
	# connection's priority, --fault-dscp, goes first).
	[ -z "$LAT_QDISC" ] || ip netns exec "$LNS" tc qdisc add dev "$LSRV" parent 1:1 $LAT_QDISC ||
		{ say "latency: cannot put '$LAT_QDISC' under the link's tbf"; exit 1; }
	[ -z "$LAT_CC" ] || ip netns exec "$LNS" sysctl -qw net.ipv4.tcp_congestion_control="$LAT_CC" ||
		{ say "latency: cannot set congestion control $LAT_CC in criu-imgd's namespace"; exit 1; }
	say "latency: TCP congestion control in criu-imgd's namespace: $(ip netns exec "$LNS" sysctl -n net.ipv4.tcp_congestion_control); criu-lazyd options: ${LAT_EXTRA:-(defaults)}"
	say "latency: link $RATE, tbf $LAT_TBF: $(ip netns exec "$LNS" tc qdisc show dev "$LSRV")"
	nrtt=$(echo $RTTS | wc -w)
	i=1
	while [ "$i" -le "$ROUNDS" ]; do
		for rtt in $(rot $(((i - 1) % nrtt)) "$RTTS"); do
			for k in $(rot $(((i - 1) % 3)) "probe seq tcp"); do
				c=r1
				cnt0=$(ns_counters)
				case $k in
				probe) c=probe; lat_restore probe "$rtt" ;;
				seq) lat_restore r1 "$rtt" ;;
				tcp) lat_tcp r1 "$rtt" ;;
				esac >>"$RAW" 2>&1 || {
					say "FAIL latency round $i, $k, RTT $rtt ms: $FAIL_WHY"
					excerpt "$RUN" "$c" >>"$RAW" 2>&1 || true
					cp -r "$RUN" "$OUT/bench-runs/FAIL-lat-$k-$rtt-$i" 2>/dev/null || true
					say "benchmark failed: logs in $OUT/bench-runs/FAIL-lat-$k-$rtt-$i, $RAW"
					exit 1
				}
				# retransmits, RTO timeouts, loss probes of the server's side, tbf drops
				cnt=$(counters_diff "$cnt0" "$(ns_counters)")
				echo "net $rtt $i $k $cnt" >>"$LATDATA"
				st=$RUN/stats.json
				nf=$(stat_of "$st" faults) pf=$(stat_of "$st" pages_fault)
				sf=$(stat_of "$st" source_data_pages_fault) ss=$(stat_of "$st" source_data_pages_stream)
				case $k in
				probe)
					pl=$(line_of probe probes)
					p50=$(echo "$pl" | sed -n 's/.* p50_us=\([0-9]*\).*/\1/p')
					p99=$(echo "$pl" | sed -n 's/.* p99_us=\([0-9]*\).*/\1/p')
					pmax=$(echo "$pl" | sed -n 's/.* max_us=\([0-9]*\).*/\1/p')
					pn=$(echo "$pl" | sed -n 's/.* n=\([0-9]*\).*/\1/p')
					[ -n "$p50" ] && [ -n "$p99" ] || { say "FAIL latency round $i: no probes line in $RUN/result"; exit 1; }
					l50=$(lazyd_lat "$st" p50) l99=$(lazyd_lat "$st" p99)
					echo "probe $rtt $i $p50 $p99 $pmax $pn $DRAIN_MS $nf ${l50:--} ${l99:--} $sf $ss" >>"$LATDATA"
					say "latency round $i RTT $rtt ms probe: server side: retransmits, RTO timeouts, loss probes, tbf drops: $cnt"
					say "latency round $i RTT $rtt ms probe: $pn faults, p50 $p50 us, p99 $p99 us, max $pmax us (criu-lazyd's own: p50 ${l50:--} us, p99 ${l99:--} us); drain $DRAIN_MS ms; pages from criu-imgd: $sf for faults, $ss by the stream"
					;;
				seq)
					echo "seq $rtt $i $TOUCH_MS $RESUME_MS $DRAIN_MS $nf $pf $sf $ss" >>"$LATDATA"
					say "latency round $i RTT $rtt ms seq: server side: retransmits, RTO timeouts, loss probes, tbf drops: $cnt"
					say "latency round $i RTT $rtt ms seq: resume $RESUME_MS ms, total $TOUCH_MS ms, drain $DRAIN_MS ms; $nf faults, $pf pages on demand; pages from criu-imgd: $sf for faults, $ss by the stream"
					;;
				tcp)
					echo "tcp $rtt $i $TOUCH_MS $PING_US $LAT_BYTES" >>"$LATDATA"
					say "latency round $i RTT $rtt ms tcp: $LAT_BYTES bytes in $TOUCH_MS ms; idle ping $PING_US us"
					;;
				esac
				d=$OUT/bench-runs/lat-$k-$rtt-$i
				keep_run "$d" steps stats.json lazy.log daemon.out daemon.exit imgd.log result
			done
		done
		i=$((i + 1))
	done
fi
# ---- many (issue 13): one image, many restores at once ----
. "$ROOT/tests/native/many.sh"
. "$ROOT/tests/native/many-bench.sh"
[ "$MANY" = 0 ] || many_bench
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
	onethread) echo criu-lazyd-one-fill-thread ;;
	imgd) echo criu-lazyd+criu-imgd ;;
	imgdfix) echo criu-lazyd+criu-imgd-fixed-window ;;
	imgd1) echo criu-lazyd+criu-imgd-one-fill-thread ;;
	linkfix) echo criu-lazyd+criu-imgd-link-fixed-window ;;
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
	onethread) echo 'criu-lazyd --fill-threads 1 (local images)' ;;
	imgd) echo 'criu-lazyd + criu-imgd (loopback)' ;;
	imgdfix) echo 'criu-lazyd + criu-imgd (loopback), --prefetch-window 8 (the fixed window)' ;;
	imgd1) echo 'criu-lazyd + criu-imgd (loopback), --fill-threads 1' ;;
	linkfix) echo "criu-lazyd + criu-imgd (veth, tbf $RATE, TLS), --prefetch-window 8" ;;
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

# ---- latency: medians and targets per RTT ----
# lmed KIND RTT COLUMN: the median over the rounds; lcol: the rounds' values.
lmed() { awk -v k="$1" -v r="$2" -v c="$3" '$1 == k && $2 == r { print $c }' "$LATDATA" | grep -v '^-$' | median; }
lcol() { awk -v k="$1" -v r="$2" -v c="$3" '$1 == k && $2 == r { printf "%s%s", n++ ? ", " : "", $c }' "$LATDATA"; }
# One page (4096 bytes) at the link's rate, in us (tc units: bit, kbit, mbit, gbit, bps = bytes/s).
PAGE_US=$(echo "$RATE" | awk '{
	n = $0 + 0; u = tolower(substr($0, length(n "") + 1)); m = 1
	if (u ~ /^k/) m = 1e3; else if (u ~ /^m/) m = 1e6; else if (u ~ /^g/) m = 1e9; else if (u ~ /^t/) m = 1e12
	if (u ~ /bps$/) m *= 8
	printf "%.1f", 4096 * 8 / (n * m) * 1e6 }')
# lat_fig RTT: sets the medians and targets of that RTT (L_*; "-" when missing).
lat_fig() {
	L_PING=$(lmed tcp "$1" 5) L_TCP=$(lmed tcp "$1" 4) L_P50=$(lmed probe "$1" 4)
	L_P99=$(lmed probe "$1" 5) L_N=$(lmed probe "$1" 7) L_SEQ=$(lmed seq "$1" 4)
	L_DP50=$(lmed probe "$1" 10) L_DP99=$(lmed probe "$1" 11) L_PDRAIN=$(lmed probe "$1" 8)
	L_SDRAIN=$(lmed seq "$1" 6)
	L_T50=$(awk -v r="$1" -v p="$PAGE_US" 'BEGIN { printf "%d", r * 1000 + p + 100 }')
	L_T99=$(awk -v r="$1" 'BEGIN { printf "%d", 3 * r * 1000 }')
	# The same with the path's measured round trip (the relay's own delay included).
	L_T50P=$(awk -v r="$L_PING" -v p="$PAGE_US" 'BEGIN { if (r ~ /^[0-9]+$/) printf "%d", r + p + 100; else print "-" }')
	L_TSEQ=$(awk -v r="$1" -v t="$L_TCP" 'BEGIN { if (t ~ /^[0-9]+$/) printf "%d", 1.1 * t + 10 * r; else print "-" }')
}
# met VALUE TARGET: yes / no / - (nothing measured).
met() { awk -v v="$1" -v t="$2" 'BEGIN { if (v !~ /^[0-9]+$/ || t !~ /^[0-9]+$/) print "-"; else print (v + 0 <= t + 0 ? "yes" : "no") }'; }
lat_md() {
	echo
	echo "Latency (issue 11): ${MB} MB workloads, link $RATE (tbf $LAT_TBF${LAT_QDISC:+, $LAT_QDISC under it}), tests/net/delayproxy"
	echo "between criu-lazyd and criu-imgd (RTT/2 each way), TLS; median of $ROUNDS rounds per RTT."
	echo "One page at the link rate: $PAGE_US us. idle ping: 64-byte round trip through the relay and"
	echo "the link, nothing else running (the path's real RTT). TCP congestion control of criu-imgd's"
	echo "namespace: $(ip netns exec "$LNS" sysctl -n net.ipv4.tcp_congestion_control 2>/dev/null); criu-lazyd options: ${LAT_EXTRA:-(defaults)}."
	echo
	echo "| RTT | idle ping | fault p50 | target p50 (RTT + page + 100 us) | met | with the idle ping as RTT | met | fault p99 | target p99 (3 RTT) | met | faults/round |"
	echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
	for r in $RTTS; do
		lat_fig "$r"
		echo "| $r ms | $L_PING us | $L_P50 us | $L_T50 us | $(met "$L_P50" "$L_T50") | $L_T50P us | $(met "$L_P50" "$L_T50P") | $L_P99 us | $L_T99 us | $(met "$L_P99" "$L_T99") | $L_N |"
	done
	echo
	echo "| RTT | sequential total (memhog -r 1) | plain TCP, same bytes | target (1.1 x TCP + 10 RTT) | met | total / TCP |"
	echo "| --- | --- | --- | --- | --- | --- |"
	for r in $RTTS; do
		lat_fig "$r"
		echo "| $r ms | $L_SEQ ms | $L_TCP ms | $L_TSEQ ms | $(met "$L_SEQ" "$L_TSEQ") | $(ratio "$L_SEQ" "$L_TCP") |"
	done
	echo
	echo "| RTT | rounds: fault p50 / p99 (us) | criu-lazyd's own p50 / p99 (us) | drain: faultprobe, memhog (ms) | rounds: total / TCP (ms) | faultprobe runs: retransmits, RTO timeouts, tbf drops (server side) |"
	echo "| --- | --- | --- | --- | --- | --- |"
	for r in $RTTS; do
		lat_fig "$r"
		nc=$(awk -v r="$r" '$1 == "net" && $2 == r && $4 == "probe" { printf "%s%s/%s/%s", n++ ? ", " : "", $5, $6, $8 }' "$LATDATA")
		echo "| $r ms | $(lcol probe "$r" 4) / $(lcol probe "$r" 5) | $L_DP50 / $L_DP99 | $L_PDRAIN, $L_SDRAIN | $(lcol seq "$r" 4) / $(lcol tcp "$r" 4) | $nc |"
	done
}

{
	echo "Native benchmark: ${MB} MB memhog, CRIU $CRIU_VERSION, kernel $KERNEL, $NPROC CPUs ($CPU), ${MEMGB} GB RAM"
	echo "images on $(df -P "$BDIR" | awk 'NR == 2 { print $1 }') ($BDIR); median of $ROUNDS rounds; $DATE; run time ${RUN_S} s; working-set records: $WS_MODE"
	echo "load average (1/5/15 min) at the start: $LOAD_START, at the end: $LOAD_END (the host's other work)"
	echo
	if [ -n "$MAIN_SETUPS" ]; then
		echo "| setup | readers | resume | total |"
		echo "| --- | --- | --- | --- |"
		for t in $THREADS; do
			for s in $MAIN_SETUPS; do
				echo "| $(label "$s") | $t | $(med "$s" "$t" 4) ms | $(med "$s" "$t" 5) ms |"
			done
		done
		echo
		echo "| ratio (medians) | readers | resume | total |"
		echo "| --- | --- | --- | --- |"
		for t in $THREADS; do
			for pair in "ours criu" "ours eager" "ours nokeeper" "ours onethread" "imgd criu" "imgd eager" "imgd ours" "imgd imgd1" "link tcp" $ZSTD_PAIRS; do
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
	fi
	[ "$LAT" = 0 ] || lat_md
	[ "$MANY" = 0 ] || many_md
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
	for s in $MAIN_SETUPS; do
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
	printf '\n  }'
	if [ "$LAT" = 1 ]; then
		printf ',\n  "latency": {"rate": "%s", "tbf": "%s", "page_us": %s, "rtt_ms": {' "$RATE" "$LAT_TBF" "$PAGE_US"
		nr=0
		for r in $RTTS; do
			lat_fig "$r"
			[ $nr = 0 ] || printf ','
			nr=1
			printf '\n    "%s": {"idle_ping_us": %s, "tcp_ms": %s, "fault_p50_us": %s, "target_p50_us": %s, "p50_met": "%s",' \
				"$r" "$L_PING" "$L_TCP" "$L_P50" "$L_T50" "$(met "$L_P50" "$L_T50")"
			printf ' "fault_p99_us": %s, "target_p99_us": %s, "p99_met": "%s", "seq_total_ms": %s, "target_seq_ms": %s, "seq_met": "%s",\n' \
				"$L_P99" "$L_T99" "$(met "$L_P99" "$L_T99")" "$L_SEQ" "$L_TSEQ" "$(met "$L_SEQ" "$L_TSEQ")"
			printf '      "rounds": [%s]}' "$(awk -v r="$r" '
				function v(x) { return x == "-" || x == "" ? "null" : x }
				$2 == r && $1 == "probe" { printf "%s{\"kind\": \"faultprobe\", \"round\": %s, \"p50_us\": %s, \"p99_us\": %s, \"max_us\": %s, \"faults\": %s, \"drain_ms\": %s, \"lazyd_faults\": %s, \"lazyd_p50_us\": %s, \"lazyd_p99_us\": %s, \"source_pages_fault\": %s, \"source_pages_stream\": %s}", n++ ? ", " : "", $3, v($4), v($5), v($6), v($7), v($8), v($9), v($10), v($11), v($12), v($13) }
				$2 == r && $1 == "seq" { printf "%s{\"kind\": \"memhog-r1\", \"round\": %s, \"total_ms\": %s, \"resume_ms\": %s, \"drain_ms\": %s, \"lazyd_faults\": %s, \"pages_fault\": %s, \"source_pages_fault\": %s, \"source_pages_stream\": %s}", n++ ? ", " : "", $3, v($4), v($5), v($6), v($7), v($8), v($9), v($10) }
				$2 == r && $1 == "tcp" { printf "%s{\"kind\": \"tcp\", \"round\": %s, \"tcp_ms\": %s, \"idle_ping_us\": %s, \"bytes\": %s}", n++ ? ", " : "", $3, v($4), v($5), v($6) }' "$LATDATA")"
		done
		printf '\n  }}'
	fi
	[ "$MANY" = 0 ] || many_json
	printf '\n}\n'
} | sed 's/: -,/: null,/g; s/: -}/: null}/g' >"$OUT/bench.json"
echo
echo "JSON: $OUT/bench.json; raw: $RAW; logs: $OUT/bench-runs/; run time ${RUN_S} s"
# The dumps live in RAM (tmpfs): drop them unless asked to keep them.
if [ "${NATIVE_BENCH_KEEP:-0}" != 1 ]; then
	trap - EXIT
	cleanup
	rm -rf "${BDIR:?}"
	[ "$MANY" = 0 ] || rm -rf "${MDIR:?}"
fi
