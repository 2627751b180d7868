# Native restores by image id from criu-imgd (run by tests/native/run.sh with a suite's criu
# on PATH): net.sh ROOT [SCENARIO...]
#   byid   criu dump; criu-imgd --root serves the image on loopback (with a key); criu-lazyd
#          --image-server --image ID is started by hand on an EMPTY images dir, fetches the
#          metadata, and criu restore --lazy-pages restores from that dir; lazy-pages.socket
#          must not appear before inventory.img is there
#   veth   the same with criu-imgd in a network namespace of its own, across a veth pair
#          (the "source host"), the key required
# Each scenario runs first with that CRIU's own `criu lazy-pages` on a local copy of the
# images (proves the workload and the test), then with criu-lazyd by id.
# Writes "PASS|FAIL scenario (daemon) ..." to $VMRUN_RESULTS/summary.
set -u
ROOT=$1
shift
. "$ROOT/tests/vm/lib.sh"
R=$VMRUN_RESULTS
: >"$R/summary"
LAZYD=$ROOT/build/bin/criu-lazyd
IMGD=$ROOT/build/bin/criu-imgd
PORT=27037
NS=lzn-src$$
VA=lznv$$a VB=lznv$$b
ADDR_DST=10.231.$(($$ % 200)).1 ADDR_SRC=10.231.$(($$ % 200)).2
[ $# -gt 0 ] || set -- byid veth

record() { echo "$1 $2 ($3)${4:+ $4}" | tee -a "$R/summary"; }
listening() { ${NSEXEC:-} ss -ltnH "sport = :$1" 2>/dev/null | grep -q .; }

net_up() {
	ip netns add "$NS" && ip link add "$VA" type veth peer name "$VB" &&
		ip link set "$VB" netns "$NS" && ip addr add "$ADDR_DST/24" dev "$VA" &&
		ip link set "$VA" up && ip -n "$NS" addr add "$ADDR_SRC/24" dev "$VB" &&
		ip -n "$NS" link set "$VB" up && ip -n "$NS" link set lo up
}
net_down() {
	ip link del "$VA" 2>/dev/null
	ip netns del "$NS" 2>/dev/null
	return 0
}
trap net_down EXIT

# imgd_up ADDR LOG: criu-imgd --root $VM/$c/root with the key; sets IPID.
imgd_up() {
	${NSEXEC:-} "$IMGD" --root "$VM/$_c/root" --address "$1" --port "$PORT" \
		--auth-key "$VM/$_c/key" -o "$2" -v4 &
	IPID=$!
	wait_until 30 listening "$PORT"
}
imgd_down() { kill "$IPID" 2>/dev/null; wait "$IPID" 2>/dev/null; IPID=""; }

# prepare CASE: dump memhog; the images go to CASE/root/job1 (served) and CASE/local (for
# criu lazy-pages); CASE/img is left empty for each restore.
prepare() {
	_c=$1
	wl_start "$_c" memhog -m 32 -s 31 && wl_dump "$_c" || return 1
	mkdir -p "$VM/$_c/root"
	cp -a "$VM/$_c/img" "$VM/$_c/local"
	mv "$VM/$_c/img" "$VM/$_c/root/job1"
	chmod 700 "$VM/$_c/root"
	head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$VM/$_c/key"
	chmod 600 "$VM/$_c/key"
}

# by_id CASE ADDR: restore by id with criu-lazyd from criu-imgd at ADDR (sets RUN etc.).
by_id() {
	_c=$1
	rm -rf "$VM/$_c/img"
	mkdir -p "$VM/$_c/img"
	imgd_up "$2" "$VM/$_c/imgd.log" || { FAIL_WHY="criu-imgd did not listen"; RUN=$VM/$_c; return 1; }
	# The socket appears only once the images' metadata is in (a restore started when it
	# appears reads inventory.img first): watched as closely as a shell can.
	_w=$VM/$_c/ready-check
	rm -rf "$_w" && mkdir -p "$_w/img" "$_w/work"
	"$LAZYD" --image-server "$2:$PORT" --image job1 --auth-key "$VM/$_c/key" -D "$_w/img" \
		-W "$_w/work" -o "$_w/lazy.log" >/dev/null 2>&1 &
	_lp=$!
	_n=0
	while [ ! -S "$_w/work/lazy-pages.socket" ] && [ $_n -lt 3000 ] && kill -0 $_lp 2>/dev/null; do
		_n=$((_n + 1))
	done
	_inv=0
	[ -f "$_w/img/inventory.img" ] && _inv=1
	kill $_lp 2>/dev/null
	wait $_lp 2>/dev/null
	if [ "$_inv" != 1 ]; then
		FAIL_WHY="lazy-pages.socket appeared before the metadata was fetched (no inventory.img)"
		RUN=$_w
		imgd_down
		return 1
	fi
	OURS_LAZY="$LAZYD --image-server $2:$PORT --image job1 --auth-key $VM/$_c/key" \
		restore_run "$_c" ours verify-now
	_rc=$?
	imgd_down
	cp "$VM/$_c/imgd.log" "$RUN/" 2>/dev/null
	if [ $_rc = 0 ] && ! grep -q "fetched the .* metadata files" "$RUN/lazy.log"; then
		FAIL_WHY="criu-lazyd did not fetch the metadata (its log says nothing of it)"
		_rc=1
	fi
	return $_rc
}

# local_criu CASE: the same workload restored by criu lazy-pages from the local copy.
local_criu() {
	rm -rf "$VM/$1/img"
	cp -a "$VM/$1/local" "$VM/$1/img"
	restore_run "$1" criu verify-now
}

for s in "$@"; do
	c=net-$s
	case $s in
	byid) addr=127.0.0.1 NSEXEC="" ;;
	veth)
		addr=$ADDR_SRC NSEXEC="ip netns exec $NS"
		net_up || { record FAIL "$s" - "cannot make the netns and veth pair"; continue; }
		;;
	*) record FAIL "$s" - "unknown scenario"; continue ;;
	esac
	if ! prepare "$c"; then
		record FAIL "$s" - "workload start or criu dump failed"
		continue
	fi
	if local_criu "$c"; then
		record PASS "$s" criu "resume ${RESUME_MS} ms, drain ${DRAIN_MS} ms (local images)"
	else
		record FAIL "$s" criu "$FAIL_WHY"
		excerpt "$RUN" "$c" >"$R/fail-$s-criu.txt"
	fi
	if by_id "$c" "$addr"; then
		record PASS "$s" ours "resume ${RESUME_MS} ms, drain ${DRAIN_MS} ms (by id from $addr)"
	else
		record FAIL "$s" ours "$FAIL_WHY"
		excerpt "$RUN" "$c" >"$R/fail-$s-ours.txt"
	fi
	mkdir -p "$R/$s"
	cp -r "$VM/$c"/run-* "$R/$s/" 2>/dev/null
	[ "$s" = veth ] && net_down
	rm -rf "${VM:?}/$c"
done
! grep -q '^FAIL' "$R/summary"
