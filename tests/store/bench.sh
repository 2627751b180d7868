#!/bin/bash
# make bench-store: page throughput from an S3-backed and a RADOS-backed criu-imgd against a
# directory-backed one on loopback, for a 1 GB image dumped by real CRIU 4.2.1 (memhog), as
# ratios in one run.
# The client is tests/net/netload --throughput: criu-lazyd's page source (source_imgd.c) on
# the bulk path, as criu-lazyd drains, without installing pages. Each figure is the best of
# RUNS (default 3) runs. cold: a fresh store-backed instance (empty chunk cache); warm: the same
# instance again (--store-cache 2G holds the image). The S3 store is the cluster's radosgw,
# the RADOS one its pool "imgd" through librados (client.imgd). The Ceph cluster (tests/store/ceph.sh)
# and the image live in NATIVE_BENCH_DIR (default /dev/shm/s3-bench); the run holds
# /tmp/lazy-bench.lock. Prints "dir N MiB/s, s3-cold N MiB/s (Rx), s3-warm N MiB/s (Rx),
# rados-cold N MiB/s (Rx), rados-warm N MiB/s (Rx)". STORE_BENCH=s3 or rados: that one only.
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
export ROOT
# The lock's fd is not passed on (-o): CRIU refuses to dump a task that holds a file lock.
[ -n "${STORE_BENCH_LOCKED:-}" ] ||
	exec env STORE_BENCH_LOCKED=1 flock -o /tmp/lazy-bench.lock bash "$0" "$@"
. "$ROOT/tests/native/env.sh"
native_env "${NATIVE_SUITE:-sid}" || exit 1
D=${NATIVE_BENCH_DIR:-/dev/shm/s3-bench}
MB=${STORE_BENCH_MB:-1024}
RUNS=${RUNS:-3}
rm -rf "$D"
mkdir -p "$D/vm"
chmod 700 "$D"
export VM=$D/vm
. "$ROOT/tests/vm/lib.sh"
VM=$D/vm
IMGD=$ROOT/build/bin/criu-imgd
NETLOAD=$ROOT/build/tests/net/netload
PORT=27151
PIDS=""
cleanup() {
	for p in $PIDS; do kill "$p" 2>/dev/null; done
	for p in $PIDS; do wait "$p" 2>/dev/null; done
	bash "$ROOT/tests/store/ceph.sh" stop "$D/ceph" >/dev/null 2>&1
	rm -rf "$D"
}
trap cleanup EXIT
listening() { ss -ltnH "sport = :$1" 2>/dev/null | grep -q .; }
up() { # ARGS...: a criu-imgd on PORT; sets IPID
	"$IMGD" "$@" --address 127.0.0.1 --port $PORT --auth-key "$D/key" -o "$D/imgd.log" -v2 &
	IPID=$!
	PIDS="$PIDS $IPID"
	wait_until 60 listening $PORT || { echo "bench-store: criu-imgd did not listen" >&2; exit 1; }
}
down() { kill "$IPID" 2>/dev/null; wait "$IPID" 2>/dev/null; }
# ticks PID: its user + system CPU time so far, in clock ticks (0 when gone).
ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0; }
# rate LABEL: the MiB/s of one netload --throughput run, or 0; the CPU seconds that the OSD,
# radosgw, criu-imgd and netload spent on it go to $D/cpu as a line "LABEL osd S rgw S imgd S
# netload S".
rate() {
	local o0 g0 i0 o1 g1 i1 mibs
	o0=$(ticks "$OSD") g0=$(ticks "$RGW") i0=$(ticks "$IPID")
	mibs=$(/usr/bin/time -f '%U %S' -o "$D/netload.cpu" "$NETLOAD" --server 127.0.0.1:$PORT \
		--dir "$D/root/big" --image big --key "$D/key" --throughput 2>>"$D/netload.err" |
		sed -n 's/^throughput: \([0-9.]*\) MiB.*/\1/p')
	o1=$(ticks "$OSD") g1=$(ticks "$RGW") i1=$(ticks "$IPID")
	awk -v l="$1" -v hz="$(getconf CLK_TCK)" -v o=$((o1 - o0)) -v g=$((g1 - g0)) \
		-v i=$((i1 - i0)) -v n="$(awk '{ print $1 + $2 }' "$D/netload.cpu")" -v r="${mibs:-0}" \
		'BEGIN { printf "%s %s MiB/s: cpu s osd %.2f rgw %.2f imgd %.2f netload %.2f\n", l, r, o / hz, g / hz, i / hz, n }' >>"$D/cpu"
	echo "${mibs:-0}"
}
best() { printf '%s\n' "$@" | sort -g | tail -1; }

CEPH_MON_PORT=3320 RGW_PORT=8020 bash "$ROOT/tests/store/ceph.sh" start "$D/ceph" >"$D/ceph.out" 2>&1 ||
	{ cat "$D/ceph.out"; exit 1; }
. "$D/ceph/s3.env"
. "$D/ceph/rados.env"
# ceph.sh's pids: mon, mgr, osd, rgw
OSD=$(sed -n 3p "$D/ceph/pids") RGW=$(sed -n 4p "$D/ceph/pids")
# shellcheck disable=SC2034 # used through declare -n below
S3=(--store "s3://$S3_BUCKET/bench" --s3-endpoint "$S3_ENDPOINT" --s3-credentials "$S3_CREDENTIALS")
# shellcheck disable=SC2034
RADOS=(--store "rados://$RADOS_POOL/bench" --ceph-conf "$RADOS_CONF" --ceph-id "$RADOS_ID")
WHICH=${STORE_BENCH:-s3 rados}
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$D/key"
chmod 600 "$D/key"
wl_start big memhog -m "$MB" -s 7 && wl_dump big || exit 1
mkdir -p "$D/root"
mv "$VM/big/img" "$D/root/big"
for b in $WHICH; do
	declare -n args=${b^^}
	t0=$(date +%s%N)
	"$IMGD" store put "$D/root/big" big "${args[@]}" -v1 || exit 1
	echo "bench-store: $b: store put of $(du -sm "$D/root/big" | cut -f1) MB in $((($(date +%s%N) - t0) / 1000000)) ms"
	unset -n args
done

up --root "$D/root"
dir=()
for _ in $(seq "$RUNS"); do dir+=("$(rate dir)"); done
down
d=$(best "${dir[@]}")
line="dir $d MiB/s"
echo "bench-store: runs: dir ${dir[*]} (MiB/s)"
for b in $WHICH; do
	declare -n args=${b^^}
	cold=() warm=()
	for _ in $(seq "$RUNS"); do
		up "${args[@]}" --store-cache 2G
		cold+=("$(rate "$b-cold")")
		warm+=("$(rate "$b-warm")")
		down
	done
	unset -n args
	c=$(best "${cold[@]}") w=$(best "${warm[@]}")
	echo "bench-store: runs: $b-cold ${cold[*]}; $b-warm ${warm[*]} (MiB/s)"
	line="$line, $(awk -v b="$b" -v d="$d" -v c="$c" -v w="$w" 'BEGIN { printf "%s-cold %s MiB/s (%.2fx), %s-warm %s MiB/s (%.2fx)", b, c, (d > 0 ? c / d : 0), b, w, (d > 0 ? w / d : 0) }')"
done
sed 's/^/bench-store: /' "$D/cpu"
echo "bench-store: $MB MB image: $line"
