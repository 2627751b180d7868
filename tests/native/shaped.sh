# Sourced by tests/native/bench.sh and timeline.sh (POSIX sh): the shaped link, a veth pair
# whose server end lives in a network namespace of its own behind tbf at RATE, and criu-imgd
# serving a case's images on loopback or in that namespace.
# Needs: LNS LHOST LSRV (names of the caller's own, e.g. with $$), HOST_IP SRV_IP (a /30),
# RATE, and for criu-imgd IMGD (the binary), KEY (its --auth-key file), LOGV (its -v level);
# PORT_WANT (default 0: any free port).
LINK=0

# link_up: the pair, addressed and up, tbf on the server's end. Nonzero if any step failed
# (link_down then takes away whatever was made).
link_up() {
	ip netns add "$LNS" && LINK=1 && ip link add "$LHOST" type veth peer name "$LSRV" &&
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

# imgd_up_in DIR [NS]: criu-imgd for DIR/img on loopback (or in namespace NS on SRV_IP), its
# log in DIR/imgd.log; sets IPID and PORT.
imgd_up_in() {
	rm -f "$1/imgd.port" "$1/imgd.log"
	_ns="" _addr=127.0.0.1
	[ -z "${2:-}" ] || { _ns="ip netns exec $2" _addr=$SRV_IP; }
	$_ns "$IMGD" -D "$1/img" --address "$_addr" --port "${PORT_WANT:-0}" --auth-key "$KEY" \
		-o "$1/imgd.log" "-v$LOGV" --status-fd 3 3>"$1/imgd.port" &
	IPID=$!
	wait_until 30 file_nonempty "$1/imgd.port" || return 1
	PORT=$(cat "$1/imgd.port")
	case $PORT in '' | *[!0-9]*) return 1 ;; esac
}
imgd_down() {
	kill "$IPID" 2>/dev/null || true
	wait "$IPID" 2>/dev/null || true
	IPID=""
}

# link_tcp_ms BYTES PORTFILE: a plain TCP transfer of BYTES from the link's namespace to here
# (the yardstick of a restore over the link); prints its time in ms, -1 if it failed.
link_tcp_ms() {
	rm -f "$2"
	ip netns exec "$LNS" python3 -c '
import socket, sys
s = socket.socket(); s.bind((sys.argv[1], 0)); s.listen(1)
open(sys.argv[2], "w").write("%d" % s.getsockname()[1])
c, _ = s.accept(); left = int(sys.argv[3]); buf = bytes(1 << 20)
while left > 0:
    n = min(left, len(buf)); c.sendall(buf[:n]); left -= n
c.close()' "$SRV_IP" "$2" "$1" &
	_tp=$!
	wait_until 30 file_nonempty "$2" || { kill "$_tp" 2>/dev/null; echo -1; return; }
	python3 -c '
import socket, sys, time
c = socket.create_connection((sys.argv[1], int(sys.argv[2]))); t0 = time.monotonic()
left = int(sys.argv[3]); got = 0
while got < left:
    b = c.recv(1 << 20)
    if not b: break
    got += len(b)
print(int((time.monotonic() - t0) * 1000) if got == left else -1)' "$SRV_IP" "$(cat "$2")" "$1"
	wait "$_tp" 2>/dev/null || true
}
