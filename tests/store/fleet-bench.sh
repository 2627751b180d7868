#!/bin/bash
# make bench-fleet: N concurrent clients of one image through 1 and through 2 S3-backed
# criu-imgd instances (issue 15), over the run's own Ceph cluster (tests/store/ceph.sh), on
# loopback, as figures of one run. The image: a memhog of STORE_FLEET_MB (default 256) dumped
# by real CRIU 4.2.1 and put in the store. The clients: tests/net/netload --clients, each
# reading every lazy page of the image through criu-lazyd's page source and checking it byte
# for byte against the dump (not installing pages: CRIU restores would make CRIU, not the
# instances, the measure). Per setup, each instance fresh (empty chunk cache): the wall time
# of all clients, aggregate page data / wall, the store's chunk reads per chunk of the image
# for each instance (goal: 1), each instance's peak RSS (VmHWM) against its --store-cache.
# Setups alternate within a round (ROUNDS, default 2): one instance serving all CLIENTS
# (default 16); two serving CLIENTS/2 each at once. Holds /tmp/lazy-bench.lock.
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
export ROOT
[ -n "${STORE_BENCH_LOCKED:-}" ] ||
	exec env STORE_BENCH_LOCKED=1 flock -o /tmp/lazy-bench.lock bash "$0" "$@"
. "$ROOT/tests/native/env.sh"
native_env "${NATIVE_SUITE:-sid}" || exit 1
D=${NATIVE_BENCH_DIR:-/dev/shm/fleet-bench}
MB=${STORE_FLEET_MB:-256}
N=${CLIENTS:-16}
ROUNDS=${ROUNDS:-2}
CACHE=${FLEET_CACHE:-512M}
rm -rf "$D"
mkdir -p "$D/vm"
chmod 700 "$D"
export VM=$D/vm
. "$ROOT/tests/vm/lib.sh"
VM=$D/vm
IMGD=$ROOT/build/bin/criu-imgd
NETLOAD=$ROOT/build/tests/net/netload
PA=27161 PB=27162
PIDS=""
cleanup() {
	for p in $PIDS; do kill "$p" 2>/dev/null; done
	for p in $PIDS; do wait "$p" 2>/dev/null; done
	bash "$ROOT/tests/store/ceph.sh" stop "$D/ceph" >/dev/null 2>&1
	rm -rf "$D"
}
trap cleanup EXIT
listening() { ss -ltnH "sport = :$1" 2>/dev/null | grep -q .; }
up() { # PORT: a fresh S3-backed criu-imgd; sets IPID
	"$IMGD" "${S3[@]}" --store-cache "$CACHE" --address 127.0.0.1 --port "$1" \
		--auth-key "$D/key" -o "$D/imgd-$1.log" -v2 --status-socket "$D/st-$1.sock" &
	IPID=$!
	PIDS="$PIDS $IPID"
	wait_until 60 listening "$1" || { echo "bench-fleet: criu-imgd did not listen" >&2; exit 1; }
}
reads() { "$IMGD" status --status-socket "$D/st-$1.sock" --json | jq -r .store.chunk_reads; }
hwm() { awk '/^VmHWM/ { print $2 }' "/proc/$1/status"; }
load() { # PORT CLIENTS: "ok", or "fail"
	"$NETLOAD" --server "127.0.0.1:$1" --dir "$D/img" --image fleet --key "$D/key" \
		--clients "$2" >"$D/load-$1.out" 2>&1 && echo ok || echo fail
}
secs() { awk -v t="$(date +%s%N)" -v t0="$1" 'BEGIN { printf "%.3f", (t - t0) / 1e9 }'; }

CEPH_MON_PORT=${CEPH_MON_PORT:-3330} RGW_PORT=${RGW_PORT:-8030} \
	bash "$ROOT/tests/store/ceph.sh" start "$D/ceph" >"$D/ceph.out" 2>&1 ||
	{ cat "$D/ceph.out"; exit 1; }
. "$D/ceph/s3.env"
S3=(--store "s3://$S3_BUCKET/fleet" --s3-endpoint "$S3_ENDPOINT" --s3-credentials "$S3_CREDENTIALS")
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$D/key"
chmod 600 "$D/key"
wl_start fleet memhog -m "$MB" -s 11 && wl_dump fleet || exit 1
mv "$VM/fleet/img" "$D/img"
"$IMGD" store put "$D/img" fleet "${S3[@]}" -v1 || exit 1
data=$(du -b --apparent-size "$D"/img/pages-*.img | awk '{ s += $1 } END { print s }')
chunks=0
for f in "$D"/img/pages-*.img; do chunks=$((chunks + ($(stat -c %s "$f") + 4194303) / 4194304)); done
lazy=$("$ROOT/build/tests/host/img-dump" "$D/img" | jq '[.tasks[].lazy_pages] | add')
echo "bench-fleet: image of $MB MB memhog: $lazy lazy data pages, $chunks chunks of 4 MiB; $N clients; cache $CACHE"

for r in $(seq "$ROUNDS"); do
	for setup in one two; do
		if [ $setup = one ]; then
			up $PA
			a=$IPID
			t0=$(date +%s%N)
			wall=$(load $PA "$N")
			[ "$wall" = fail ] || wall=$(secs "$t0")
			ra=$(reads $PA) ha=$(hwm $a) rb=- hb=-
			kill $a
			wait $a 2>/dev/null
		else
			up $PA
			a=$IPID
			up $PB
			b=$IPID
			t0=$(date +%s%N)
			load $PA $((N / 2)) >"$D/wa" &
			la=$!
			load $PB $((N - N / 2)) >"$D/wb" &
			lb=$!
			wait $la $lb
			wall=$(secs "$t0")
			grep -q fail "$D/wa" "$D/wb" && wall=fail
			ra=$(reads $PA) ha=$(hwm $a) rb=$(reads $PB) hb=$(hwm $b)
			kill $a $b
			wait $a $b 2>/dev/null
		fi
		if [ "$wall" = fail ]; then
			echo "bench-fleet: round $r $setup: a client failed: $(tail -n 2 "$D"/load-*.out)"
			exit 1
		fi
		awk -v r="$r" -v s="$setup" -v w="$wall" -v n="$N" -v p="$lazy" -v c="$chunks" \
			-v ra="$ra" -v rb="$rb" -v ha="$ha" -v hb="$hb" 'BEGIN {
			printf "bench-fleet: round %s, %s instance(s): %d clients verified in %.3f s, %.0f MiB/s aggregate; chunk reads per chunk: A %.2f%s; VmHWM A %d MiB%s\n",
				r, s == "one" ? "1" : "2", n, w, n * p * 4096 / 1048576 / w, ra / c,
				rb == "-" ? "" : sprintf(", B %.2f", rb / c), ha / 1024,
				hb == "-" ? "" : sprintf(", B %d MiB", hb / 1024) }'
	done
done
