#!/bin/bash
# make storetest: criu-imgd over a real S3 store and a real RADOS pool, a single-node Ceph
# cluster with its radosgw (tests/store/ceph.sh) started for the run on 127.0.0.1 and stopped
# at its end, with real CRIU 4.2.1 natively (tests/native/env.sh). Scenarios:
#   publish    criu dump with the plugin's `publish` into criu-imgd --store --accept-uploads
#              (objects, manifest last); a SECOND S3-backed criu-imgd (empty spool, nothing
#              local) serves it: criu-lazyd by id into an empty dir, criu restore --lazy-pages,
#              every byte verified in the task
#   cache      8 clients at once read every lazy page of the image through a third instance,
#              each checked byte for byte (tests/net/netload); the store saw each chunk once
#   fleet      16 real restores of the image at once (each in its own pid namespace), 8
#              through each of two instances: every byte verified in each, each instance
#              read each chunk from the store at most once
#   failover   criu-lazyd by id through two instances (--image-server A,B): A SIGKILLed as
#              the drain starts, the restore finishes through B, every byte verified, each
#              page received once
#   halfput    `criu-imgd store put` SIGKILLed after some of its objects are written: the
#              image is never served ("no manifest"), and a complete put of the id works after
#   getput     `criu-imgd store get` gives back the dumped files byte for byte
#   badcred    a wrong secret: criu-imgd refuses to start, saying the store refused them
#   credperm   a credentials file readable by group: refused, saying so
#   rados      the published dump `store put` into rados://imgd/... (librados, client.imgd);
#              a rados-backed criu-imgd serves it: criu-lazyd by id into an empty dir, real
#              criu restore --lazy-pages, every byte verified in the task; `store get` gives
#              every file back byte for byte
#   radoscache 8 clients at once through one rados-backed instance (detached, -d), each
#              verified byte for byte (netload); the pool saw each chunk once
#   radoshalf  a `store put` into the pool SIGKILLed half-way: never served ("no manifest"),
#              and a complete put of the id works after
#   radosrace  two `store put` of one new id at once: exactly one wins (the manifest is an
#              exclusive create), the other says the image appeared meanwhile or exists
#   radoskey   a wrong key in the keyring: criu-imgd refuses to start, saying the cluster
#              refused the user or its key
#   radosperm  a keyring readable by group, or a conf readable by all that holds the key:
#              refused, saying so
#   radospool  a pool that does not exist: criu-imgd refuses to start, saying so
# Writes "PASS|FAIL scenario: ..." lines, and "N passed, N failed"; exit 0 when all passed.
# STORE_DIR (default /tmp/criu-lazy-store-$$) holds the cluster and the workloads.
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
export ROOT
. "$ROOT/tests/native/env.sh"
native_env "${NATIVE_SUITE:-sid}" || exit 1
D=${STORE_DIR:-/tmp/criu-lazy-store-$$}
export VM=$D/vm
. "$ROOT/tests/vm/lib.sh"
. "$ROOT/tests/native/many.sh"
VM=$D/vm
IMGD=$ROOT/build/bin/criu-imgd
LAZYD=$ROOT/build/bin/criu-lazyd
NETLOAD=$ROOT/build/tests/net/netload
LIB=$ROOT/build/lib/criu
P1=27141 P2=27142 P3=27143
pass=0 fail=0 PIDS=""

mkdir -p "$VM"
chmod 700 "$D"
cleanup() {
	for p in $PIDS; do kill "$p" 2>/dev/null; done
	for p in $PIDS; do wait "$p" 2>/dev/null; done
	bash "$ROOT/tests/store/ceph.sh" stop "$D/ceph" >/dev/null 2>&1
	[ -n "${STORE_KEEP:-}" ] || rm -rf "$D"
}
trap cleanup EXIT

result() { # PASS|FAIL NAME TEXT
	echo "$1 $2: $3"
	if [ "$1" = PASS ]; then pass=$((pass + 1)); else fail=$((fail + 1)); fi
}

log "starting the Ceph cluster and radosgw in $D/ceph"
if ! CEPH_MON_PORT=${CEPH_MON_PORT:-3310} RGW_PORT=${RGW_PORT:-8010} \
	bash "$ROOT/tests/store/ceph.sh" start "$D/ceph" >"$D/ceph.out" 2>&1; then
	cat "$D/ceph.out"
	result FAIL cluster "the Ceph cluster did not start"
	echo "0 passed, 1 failed"
	exit 1
fi
. "$D/ceph/s3.env"
. "$D/ceph/rados.env"
S3="--store s3://$S3_BUCKET/run$$ --s3-endpoint $S3_ENDPOINT --s3-region $S3_REGION"
S3="$S3 --s3-credentials $S3_CREDENTIALS"
RADOS="--store rados://$RADOS_POOL/run$$ --ceph-conf $RADOS_CONF --ceph-id $RADOS_ID"
ADMIN_CONF=$D/ceph/cluster/ceph.conf
key() { head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$1" && chmod 600 "$1"; }
key "$D/key"
key "$D/upkey"
listening() { ss -ltnH "sport = :$1" 2>/dev/null | grep -q .; }

# imgd_up PORT LOG [ARGS...]: an S3-backed criu-imgd (rados-backed with SARGS=$RADOS); sets
# IPID.
imgd_up() {
	_p=$1 _l=$2
	shift 2
	# shellcheck disable=SC2086
	"$IMGD" ${SARGS:-$S3} --address 127.0.0.1 --port "$_p" --auth-key "$D/key" -o "$_l" -v4 \
		--status-socket "$D/status-$_p.sock" "$@" &
	IPID=$!
	PIDS="$PIDS $IPID"
	wait_until 30 listening "$_p"
}
imgd_down() { kill "$1" 2>/dev/null; wait "$1" 2>/dev/null; }
status_json() { "$IMGD" status --status-socket "$D/status-$1.sock" --json; }

s_publish() {
	c=pub
	imgd_up $P1 "$D/imgd-pub.log" --accept-uploads --upload-key "$D/upkey" ||
		{ WHY="the publishing criu-imgd did not listen"; return 1; }
	PUB=$IPID
	wl_start $c memhog -m 32 -s 31 || { WHY="workload start failed"; return 1; }
	printf '%s\n' "publish 127.0.0.1:$P1" "publish-key $D/upkey" "image pub1" \
		"verbosity 3" >"$D/publish.conf"
	_pid=$(cat "$VM/$c/pid")
	if ! CRIU_LAZY_RESTORE_CONF=$D/publish.conf timeout 120 criu dump -t "$_pid" \
		-D "$VM/$c/img" -o "$VM/$c/dump.log" -v4 --lib "$LIB"; then
		WHY="criu dump failed: $(grep -m1 Error "$VM/$c/dump.log")"
		return 1
	fi
	wait "$_pid" 2>/dev/null || true
	wait_until 30 pid_gone "$_pid"
	touch "$VM/$c/ctl/restored"
	imgd_down $PUB
	grep -q "published image pub1 into the store" "$D/imgd-pub.log" ||
		{ WHY="criu-imgd did not publish into the store: $(grep -m1 -i error "$D/imgd-pub.log")"; return 1; }
	cp -a "$VM/$c/img" "$D/pub-local" # the dump's own files, for getput and cache
	rm -rf "$VM/$c/img"
	mkdir -p "$VM/$c/img"
	imgd_up $P2 "$D/imgd-serve.log" || { WHY="the serving criu-imgd did not listen"; return 1; }
	SRV=$IPID
	# By id into the empty dir first (--fetch-only): criu-lazyd's keeper listens before its
	# worker has fetched the metadata, and criu restore would find no inventory.img.
	"$LAZYD" --image-server 127.0.0.1:$P2 --image pub1 --auth-key "$D/key" -D "$VM/$c/img" \
		--fetch-only -v4 >"$D/fetch.out" 2>&1 ||
		{ WHY="criu-lazyd --fetch-only: $(tail -n1 "$D/fetch.out")"; return 1; }
	grep -q "fetched the .* metadata files" "$D/fetch.out" ||
		{ WHY="criu-lazyd did not say it fetched the metadata by id"; return 1; }
	OURS_LAZY="$LAZYD --image-server 127.0.0.1:$P2 --image pub1 --auth-key $D/key" \
		restore_run $c ours verify-now
	_rc=$?
	WHY=$FAIL_WHY
	GETS=$(status_json $P2 | jq -r '.store.chunk_reads')
	imgd_down $SRV
	[ $_rc = 0 ] || return 1
	WHY="restored by id through a second S3-backed criu-imgd: $VERIFY; resume ${RESUME_MS} ms, drain ${DRAIN_MS} ms; $GETS chunk reads"
}

s_cache() {
	[ -d "$D/pub-local" ] || { WHY="needs publish"; return 1; }
	imgd_up $P3 "$D/imgd-cache.log" || { WHY="criu-imgd did not listen"; return 1; }
	_i=$IPID
	if ! "$NETLOAD" --server 127.0.0.1:$P3 --dir "$D/pub-local" --image pub1 --key "$D/key" \
		--clients 8 >"$D/netload.out" 2>&1; then
		WHY="netload: $(tail -n 2 "$D/netload.out" | tr '\n' ' ')"
		imgd_down $_i
		return 1
	fi
	_st=$(status_json $P3)
	imgd_down $_i
	_reads=$(echo "$_st" | jq -r '.store.chunk_reads')
	_hits=$(echo "$_st" | jq -r '.store.cache_hits')
	_chunks=0
	for f in "$D"/pub-local/pages-*.img; do
		_chunks=$((_chunks + ($(stat -c %s "$f") + 4194303) / 4194304))
	done
	[ "$_reads" -ge 1 ] && [ "$_reads" -le "$_chunks" ] ||
		{ WHY="$_reads chunk reads for 8 clients of an image of $_chunks chunks"; return 1; }
	WHY="8 clients verified byte for byte; $_reads chunk reads from the store ($_chunks chunks in the image), $_hits cache hits"
}

s_getput() {
	[ -d "$D/pub-local" ] || { WHY="needs publish"; return 1; }
	# shellcheck disable=SC2086
	"$IMGD" store get pub1 "$D/got" $S3 >"$D/get.out" 2>&1 || { WHY="store get: $(tail -n1 "$D/get.out")"; return 1; }
	for f in "$D"/pub-local/*; do
		b=$(basename "$f")
		# stats-dump: CRIU writes it after the plugin's exit hook published the image
		case $b in *.log | stats-dump) continue ;; esac
		cmp -s "$f" "$D/got/$b" || { WHY="$b differs after store get"; return 1; }
	done
	# shellcheck disable=SC2086
	if "$IMGD" store put "$D/got" pub1 $S3 >"$D/put.out" 2>&1 ||
		! grep -q "exists.*not replaced" "$D/put.out"; then
		WHY="a put of an existing id was not refused: $(cat "$D/put.out")"
		return 1
	fi
	WHY="every file back byte for byte; an existing id is not replaced"
}

s_halfput() {
	[ -d "$D/pub-local" ] || { WHY="needs publish"; return 1; }
	# A large pages file, so that the put takes long enough to be killed half-way.
	mkdir -p "$D/half"
	cp "$D"/pub-local/* "$D/half/"
	for f in "$D"/half/pages-*.img; do
		truncate -s 512M "$f"
	done
	# shellcheck disable=SC2086
	"$IMGD" store put "$D/half" half1 $S3 >"$D/half.out" 2>&1 &
	_p=$!
	A=$(awk '/access_key/{print $3}' "$S3_CREDENTIALS")
	K=$(awk '/secret_key/{print $3}' "$S3_CREDENTIALS")
	_objs=0
	for _ in $(seq 200); do
		_objs=$(curl -s --aws-sigv4 "aws:amz:$S3_REGION:s3" -u "$A:$K" \
			-H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' \
			"$S3_ENDPOINT/$S3_BUCKET?prefix=run$$%2Fhalf1%2F" | tee "$D/half.list" |
			grep -o "<Key>[^<]*" | sort -u | wc -l)
		[ "$_objs" -ge 4 ] && break
		sleep 0.05
	done
	kill -9 $_p 2>/dev/null
	wait $_p 2>/dev/null
	grep -q "written to" "$D/half.out" && { WHY="the put finished before it was killed"; return 1; }
	[ "$_objs" -ge 4 ] || { WHY="no objects seen before the kill ($_objs)"; return 1; }
	imgd_up $P3 "$D/imgd-half.log" || { WHY="criu-imgd did not listen"; return 1; }
	_i=$IPID
	mkdir -p "$D/halfimg"
	"$LAZYD" --image-server 127.0.0.1:$P3 --image half1 --auth-key "$D/key" -D "$D/halfimg" \
		--fetch-only >"$D/halffetch.out" 2>&1
	_rc=$?
	imgd_down $_i
	[ $_rc != 0 ] || { WHY="criu-lazyd fetched a half-uploaded image"; return 1; }
	[ -z "$(ls "$D/halfimg")" ] || { WHY="files of the half-uploaded image were written"; return 1; }
	grep -q "no image 'half1'.*no manifest" "$D/imgd-half.log" ||
		{ WHY="criu-imgd's log does not say why: $(grep -m1 half1 "$D/imgd-half.log")"; return 1; }
	# shellcheck disable=SC2086
	"$IMGD" store put "$D/pub-local" half1 $S3 >"$D/half2.out" 2>&1 ||
		{ WHY="a complete put of the id failed: $(cat "$D/half2.out")"; return 1; }
	WHY="$_objs objects written, no manifest: refused ($(grep -o "no image 'half1'[^)]*)" "$D/imgd-half.log" | head -1)); a complete put of the id then works"
}

s_failover() {
	[ -d "$D/pub-local" ] || { WHY="needs publish"; return 1; }
	c=pub
	rm -rf "$VM/$c/img" "$VM/$c/run-ours"
	mkdir -p "$VM/$c/img"
	imgd_up $P2 "$D/imgd-a.log" || { WHY="instance A did not listen"; return 1; }
	_a=$IPID
	imgd_up $P3 "$D/imgd-b.log" || { WHY="instance B did not listen"; return 1; }
	_b=$IPID
	_list=127.0.0.1:$P2,127.0.0.1:$P3
	"$LAZYD" --image-server $_list --image pub1 --auth-key "$D/key" -D "$VM/$c/img" \
		--fetch-only -v4 >"$D/fo-fetch.out" 2>&1 ||
		{ WHY="criu-lazyd --fetch-only: $(tail -n1 "$D/fo-fetch.out")"; return 1; }
	# A dies (SIGKILL) as soon as the drain starts; the drain runs one small read at a time
	# so that most of the image is still to come then.
	( wait_until 60 grep -qs "background prefetch starts" "$VM/$c/run-ours/lazy.log" &&
		kill -9 $_a ) &
	_k=$!
	OURS_LAZY="$LAZYD --image-server $_list --image pub1 --auth-key $D/key --prefetch-window 1 --drain-chunk 16" \
		restore_run $c ours drain-first
	_rc=$?
	WHY=$FAIL_WHY
	kill $_k 2>/dev/null
	wait $_k 2>/dev/null
	imgd_down $_a
	imgd_down $_b
	[ $_rc = 0 ] || return 1
	_l=$VM/$c/run-ours/lazy.log
	grep -q "failed over from 127.0.0.1:$P2 to 127.0.0.1:$P3" "$_l" ||
		{ WHY="no failover in criu-lazyd's log (A killed too late?)"; return 1; }
	_got=$(jq -r .source_pages "$VM/$c/run-ours/stats.json")
	_tot=$(jq -r .pages_total "$VM/$c/run-ours/stats.json")
	[ "${_tot:-0}" -gt 0 ] 2>/dev/null && [ "$_got" = "$_tot" ] ||
		{ WHY="'$_got' pages received for '$_tot': not each once"; return 1; }
	WHY="A killed as the drain started, the restore finished through B: $VERIFY; each of $_tot pages received once; $(grep -o 'first pages [0-9.]* ms after' "$_l" | head -1) A failed"
}

s_fleet() {
	[ -d "$D/pub-local" ] || { WHY="needs publish"; return 1; }
	imgd_up $P2 "$D/imgd-fa.log" || { WHY="instance A did not listen"; return 1; }
	_a=$IPID
	imgd_up $P3 "$D/imgd-fb.log" || { WHY="instance B did not listen"; return 1; }
	_b=$IPID
	# 16 real restores at once, each in its own pid namespace (tests/native/many.sh): half
	# through A (B as its fallback), half through B (A as its fallback).
	KEY=$D/key LOGV=2 MANY_IMAGE=pub1 MANY_RUNS=$D/fleet \
		MANY_SERVERS="127.0.0.1:$P2,127.0.0.1:$P3 127.0.0.1:$P3,127.0.0.1:$P2" \
		many_restores "$VM/pub" 16 0
	_rc=$?
	WHY=$FAIL_WHY
	_ra=$(status_json $P2 | jq -r '.store.chunk_reads')
	_rb=$(status_json $P3 | jq -r '.store.chunk_reads')
	_ha=$(proc_kb $_a VmHWM) _hb=$(proc_kb $_b VmHWM)
	imgd_down $_a
	imgd_down $_b
	[ $_rc = 0 ] || return 1
	_chunks=0
	for f in "$D"/pub-local/pages-*.img; do
		_chunks=$((_chunks + ($(stat -c %s "$f") + 4194303) / 4194304))
	done
	for _s in "$D"/fleet/*/stats.json; do
		[ "$(jq -r .source_pages "$_s")" = "$(jq -r .pages_total "$_s")" ] ||
			{ WHY="$_s: pages not received once each"; return 1; }
	done
	[ "$_ra" -ge 1 ] && [ "$_ra" -le "$_chunks" ] && [ "$_rb" -ge 1 ] && [ "$_rb" -le "$_chunks" ] ||
		{ WHY="chunk reads A $_ra, B $_rb for an image of $_chunks chunks"; return 1; }
	WHY="16 restores at once through 2 instances, each verified every byte in ${MANY_WALL_MS} ms; chunk reads A $_ra, B $_rb ($_chunks chunks); peak RSS A $((_ha / 1024)) MiB, B $((_hb / 1024)) MiB"
}

# refused CREDFILE PATTERN WHAT: criu-imgd with CREDFILE must refuse to start, saying PATTERN.
refused() {
	# shellcheck disable=SC2086
	if timeout 30 "$IMGD" ${S3%--s3-credentials*} --s3-credentials "$1" --port $P3 \
		--auth-key "$D/key" >"$1.out" 2>&1; then
		WHY="criu-imgd started with $3"
		return 1
	fi
	grep -q "$2" "$1.out" || { WHY="unclear error: $(cat "$1.out")"; return 1; }
	WHY="$(grep -o "${2%%.*}.*" "$1.out" | head -1)"
}

s_badcred() {
	printf 'access_key = %s\nsecret_key = wrong\n' "$(awk '/access_key/{print $3}' "$S3_CREDENTIALS")" >"$D/bad.cred"
	chmod 600 "$D/bad.cred"
	refused "$D/bad.cred" "HTTP 403.*refused these credentials" "a wrong secret"
}

s_credperm() {
	cp "$S3_CREDENTIALS" "$D/perm.cred"
	chmod 640 "$D/perm.cred"
	refused "$D/perm.cred" "mode 640 lets group or others read it" \
		"a group-readable credentials file"
}

. "$ROOT/tests/store/rados.sh"

for s in ${STORE_TESTS:-publish cache failover fleet getput halfput badcred credperm rados radoscache radoshalf radosrace radoskey radosperm radospool}; do
	WHY=""
	if "s_$s"; then result PASS "$s" "$WHY"; else result FAIL "$s" "$WHY"; fi
done
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
