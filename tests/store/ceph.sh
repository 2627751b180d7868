#!/bin/bash
# A real single-node Ceph cluster (one mon, one mgr, one bluestore OSD on a sparse file) and its
# S3 gateway (radosgw), Debian 12's packages, 127.0.0.1 only, no systemd (docs/store.md).
#
#   tests/store/ceph.sh start DIR   start it under DIR (wiped first); prints the endpoint
#   tests/store/ceph.sh stop DIR    stop it: rgw, osd, mgr, mon by pid, in that order
#
# After start, DIR/s3.env holds S3_ENDPOINT, S3_REGION, S3_BUCKET and S3_CREDENTIALS (a 0600
# file: access key and secret of the user "imgd", who owns the bucket "images"), and DIR/rados.env
# RADOS_POOL, RADOS_CONF and RADOS_ID (the pool "imgd", a client conf without secrets naming
# the 0600 keyring of client.imgd, who may read and write that pool only). Ports:
# CEPH_MON_PORT (3300; v1 is 6789 + the same offset) and RGW_PORT (8000) if set.
set -euo pipefail
CMD=${1:-}
D=${2:-}
[ -n "$CMD" ] && [ -n "$D" ] || {
	echo "usage: $0 start|stop DIR" >&2
	exit 2
}
D=$(realpath -m "$D")
C=$D/cluster
export CEPH_CONF=$C/ceph.conf
MON=${CEPH_MON_PORT:-3300}
# v1 below 6789 for other mon ports: OSDs take their ports from 6800 up
MON1=$((6789 - (MON - 3300)))
RGW=${RGW_PORT:-8000}
GB=${CEPH_OSD_GB:-20}
t0=$(date +%s%N)
ts() { echo "ceph: [$((($(date +%s%N) - t0) / 1000000)) ms] $*"; }

stop() {
	[ -f "$D/pids" ] || return 0
	for p in $(tac "$D/pids"); do
		kill "$p" 2>/dev/null || continue
		for _ in $(seq 300); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
		kill -9 "$p" 2>/dev/null || true
	done
	rm -f "$D/pids"
}

# wait_for SECONDS WHAT CMD...: until CMD succeeds, or fail naming WHAT and the logs.
wait_for() {
	local s=$1 what=$2
	shift 2
	for _ in $(seq $((s * 2))); do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.5
	done
	echo "ceph: $what did not come up within $s s (logs in $C/log)" >&2
	tail -5 "$C"/log/*.out >&2 || true
	grep -h "error:" "$C"/log/*.log 2>/dev/null | tail -5 >&2 || true
	return 1
}

start() {
	stop
	local free_mb
	free_mb=$(df -Pm "$(dirname "$D")" | awk 'NR == 2 { print $4 }')
	[ "$free_mb" -ge 4096 ] || {
		echo "ceph: only $free_mb MiB free under $(dirname "$D"); the cluster needs 4 GiB" >&2
		return 1
	}
	rm -rf "$C" "$D/s3.env" "$D/s3.cred" "$D/rados.env" "$D/rados.conf" "$D/imgd.keyring"
	mkdir -p "$C"/{mon/a,mgr/x,osd/0,rgw,run,log}
	chmod 700 "$D" "$C"
	local fsid osd_uuid key
	fsid=$(uuidgen)
	osd_uuid=$(uuidgen)
	cat >"$CEPH_CONF" <<CONF
[global]
fsid = $fsid
mon_host = [v2:127.0.0.1:$MON,v1:127.0.0.1:$MON1]
public_network = 127.0.0.1/32
run_dir = $C/run
log_file = $C/log/\$name.log
osd_pool_default_size = 1
osd_pool_default_min_size = 1
osd_pool_default_pg_autoscale_mode = off
osd_pool_default_pg_num = 8
mon_data_avail_warn = 10
# the mon shuts itself down under this % free (default 5): a 250 GB disk with 12 GB free is fine
mon_data_avail_crit = 1
osd_crush_chooseleaf_type = 0
mon_allow_pool_size_one = true
mon_warn_on_pool_no_redundancy = false
auth_allow_insecure_global_id_reclaim = false
[client.admin]
keyring = $C/keyring
[mon.a]
mon_data = $C/mon/a
[mgr.x]
mgr_data = $C/mgr/x
keyring = $C/mgr/x/keyring
[osd.0]
osd_data = $C/osd/0
keyring = $C/osd/0/keyring
osd_objectstore = bluestore
osd_memory_target = 1073741824
bluestore_block_create = true
bluestore_block_size = $((GB << 30))
[client.rgw.gw]
keyring = $C/rgw/keyring
rgw_data = $C/rgw
rgw_frontends = beast endpoint=127.0.0.1:$RGW
CONF
	ceph-authtool --create-keyring "$C/mon.keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
	ceph-authtool --create-keyring "$C/keyring" --gen-key -n client.admin \
		--cap mon 'allow *' --cap osd 'allow *' --cap mgr 'allow *' --cap mds 'allow *' >/dev/null
	ceph-authtool "$C/mon.keyring" --import-keyring "$C/keyring" >/dev/null
	monmaptool --create --fsid "$fsid" --addv a "[v2:127.0.0.1:$MON,v1:127.0.0.1:$MON1]" \
		"$C/monmap" >/dev/null
	ceph-mon --mkfs -i a --monmap "$C/monmap" --keyring "$C/mon.keyring"
	ceph-mon -f -i a >"$C/log/mon.a.out" 2>&1 &
	echo $! >>"$D/pids"
	wait_for 60 "the mon" ceph -s --connect-timeout 3
	ts "mon up"
	ceph auth get-or-create mgr.x mon 'allow profile mgr' osd 'allow *' mds 'allow *' \
		>"$C/mgr/x/keyring"
	ceph-mgr -f -i x >"$C/log/mgr.x.out" 2>&1 &
	echo $! >>"$D/pids"
	key=$(ceph-authtool --gen-print-key)
	printf '[osd.0]\n\tkey = %s\n' "$key" >"$C/osd/0/keyring"
	echo "{\"cephx_secret\": \"$key\"}" >"$C/osd/0/new.json"
	[ "$(ceph osd new "$osd_uuid" -i "$C/osd/0/new.json")" = 0 ]
	ceph-osd -i 0 --mkfs --osd-uuid "$osd_uuid" >"$C/log/osd.0.mkfs" 2>&1
	ceph-osd -f -i 0 >"$C/log/osd.0.out" 2>&1 &
	echo $! >>"$D/pids"
	wait_for 120 "the OSD" sh -c "ceph osd stat | grep -q '1 up'"
	ts "osd up"
	# librados' view (criu-imgd --store rados://): a pool and a user for it alone
	ceph osd pool create imgd 8 >/dev/null 2>&1
	ceph osd pool application enable imgd criu-imgd >/dev/null 2>&1
	(umask 077 && ceph auth get-or-create client.imgd mon 'allow r' osd 'allow rwx pool=imgd' \
		>"$D/imgd.keyring")
	cat >"$D/rados.conf" <<CONF
[global]
fsid = $fsid
mon_host = [v2:127.0.0.1:$MON,v1:127.0.0.1:$MON1]
keyring = $D/imgd.keyring
log_file = $C/log/\$name.log
CONF
	cat >"$D/rados.env" <<ENV
RADOS_POOL=imgd
RADOS_CONF=$D/rados.conf
RADOS_ID=imgd
ENV
	ts "pool imgd, user client.imgd: $D/rados.env"
	ceph auth get-or-create client.rgw.gw mon 'allow rw' osd 'allow rwx' mgr 'allow rw' \
		>"$C/rgw/keyring"
	radosgw -f -n client.rgw.gw >"$C/log/rgw.out" 2>&1 &
	echo $! >>"$D/pids"
	wait_for 120 "radosgw" curl -s -o /dev/null "http://127.0.0.1:$RGW/"
	ts "rgw up"
	local access secret
	access=$(head -c 10 /dev/urandom | od -An -tx1 | tr -d ' \n')
	secret=$(head -c 20 /dev/urandom | od -An -tx1 | tr -d ' \n')
	radosgw-admin user create --uid=imgd --display-name=imgd --access-key="$access" \
		--secret="$secret" >/dev/null
	(umask 077 && printf 'access_key = %s\nsecret_key = %s\n' "$access" "$secret" >"$D/s3.cred")
	wait_for 60 "the bucket" curl -sf --aws-sigv4 aws:amz:us-east-1:s3 -u "$access:$secret" \
		-H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' -X PUT "http://127.0.0.1:$RGW/images"
	cat >"$D/s3.env" <<ENV
S3_ENDPOINT=http://127.0.0.1:$RGW
S3_REGION=us-east-1
S3_BUCKET=images
S3_CREDENTIALS=$D/s3.cred
ENV
	ts "user imgd, bucket images: $D/s3.env"
}

case $CMD in
start)
	trap 'stop' ERR
	start
	;;
stop) stop ;;
*)
	echo "usage: $0 start|stop DIR" >&2
	exit 2
	;;
esac
