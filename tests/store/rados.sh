# shellcheck shell=bash
# make storetest's scenarios of the rados backend (criu-imgd --store rados://POOL/PREFIX),
# sourced by tests/store/run.sh after the cluster is up: its helpers (imgd_up, result, ...),
# RADOS (the store options of the pool "imgd", user client.imgd) and ADMIN_CONF (the
# cluster's conf, client.admin, for listing the pool behind criu-imgd's back).

# pool_objects PREFIX: how many objects of the pool start with PREFIX.
pool_objects() {
	rados -c "$ADMIN_CONF" -p "$RADOS_POOL" ls 2>/dev/null | grep -c "^$1"
}

s_rados() {
	[ -d "$D/pub-local" ] || { WHY="needs publish"; return 1; }
	local c=pub t0 put_ms
	t0=$(date +%s%N)
	# shellcheck disable=SC2086
	"$IMGD" store put "$D/pub-local" rpub1 $RADOS >"$D/rput.out" 2>&1 ||
		{ WHY="store put into the pool: $(tail -n1 "$D/rput.out")"; return 1; }
	put_ms=$((($(date +%s%N) - t0) / 1000000))
	[ "$(pool_objects "run$$/rpub1/")" -ge 3 ] || { WHY="no objects in the pool after the put"; return 1; }
	rm -rf "$VM/$c/img"
	mkdir -p "$VM/$c/img"
	SARGS=$RADOS imgd_up $P2 "$D/imgd-rados.log" ||
		{ WHY="the rados-backed criu-imgd did not listen: $(tail -n1 "$D/imgd-rados.log")"; return 1; }
	local srv=$IPID rc gets
	"$LAZYD" --image-server 127.0.0.1:$P2 --image rpub1 --auth-key "$D/key" -D "$VM/$c/img" \
		--fetch-only -v4 >"$D/rfetch.out" 2>&1 ||
		{ WHY="criu-lazyd --fetch-only: $(tail -n1 "$D/rfetch.out")"; imgd_down $srv; return 1; }
	OURS_LAZY="$LAZYD --image-server 127.0.0.1:$P2 --image rpub1 --auth-key $D/key" \
		restore_run $c ours verify-now
	rc=$?
	WHY=$FAIL_WHY
	gets=$(status_json $P2 | jq -r '.store.chunk_reads')
	imgd_down $srv
	[ $rc = 0 ] || return 1
	# shellcheck disable=SC2086
	"$IMGD" store get rpub1 "$D/rgot" $RADOS >"$D/rget.out" 2>&1 ||
		{ WHY="store get from the pool: $(tail -n1 "$D/rget.out")"; return 1; }
	for f in "$D"/pub-local/*; do
		b=$(basename "$f")
		case $b in *.log | stats-dump) continue ;; esac
		cmp -s "$f" "$D/rgot/$b" || { WHY="$b differs after store get from the pool"; return 1; }
	done
	WHY="put in ${put_ms} ms; restored by id through a rados-backed criu-imgd: $VERIFY; resume ${RESUME_MS} ms, drain ${DRAIN_MS} ms; $gets chunk reads; store get: every file back"
}

daemon_down() { kill "$1" 2>/dev/null; wait_until 10 pid_gone "$1"; }

# Detached (-d): the connection of the start-up check is dropped before the fork, and the
# daemon connects again (librados' threads do not survive a fork).
s_radoscache() {
	[ -d "$D/pub-local" ] || { WHY="needs publish"; return 1; }
	rm -f "$D/rcache.pid"
	SARGS=$RADOS imgd_up $P3 "$D/imgd-rcache.log" -d --pidfile "$D/rcache.pid" ||
		{ WHY="criu-imgd -d did not listen"; return 1; }
	wait "$IPID" 2>/dev/null
	local i st reads hits chunks=0
	i=$(cat "$D/rcache.pid") || { WHY="no pidfile"; return 1; }
	PIDS="$PIDS $i"
	if ! "$NETLOAD" --server 127.0.0.1:$P3 --dir "$D/pub-local" --image rpub1 --key "$D/key" \
		--clients 8 >"$D/rnetload.out" 2>&1; then
		WHY="netload: $(tail -n 2 "$D/rnetload.out" | tr '\n' ' ')"
		daemon_down "$i"
		return 1
	fi
	st=$(status_json $P3)
	daemon_down "$i"
	reads=$(echo "$st" | jq -r '.store.chunk_reads')
	hits=$(echo "$st" | jq -r '.store.cache_hits')
	for f in "$D"/pub-local/pages-*.img; do
		chunks=$((chunks + ($(stat -c %s "$f") + 4194303) / 4194304))
	done
	[ "$reads" -ge 1 ] && [ "$reads" -le "$chunks" ] ||
		{ WHY="$reads chunk reads for 8 clients of an image of $chunks chunks"; return 1; }
	WHY="8 clients verified byte for byte through a detached instance; $reads chunk reads from the pool ($chunks chunks in the image), $hits cache hits"
}

s_radoshalf() {
	[ -d "$D/pub-local" ] || { WHY="needs publish"; return 1; }
	mkdir -p "$D/rhalf"
	cp "$D"/pub-local/* "$D/rhalf/"
	for f in "$D"/rhalf/pages-*.img; do
		truncate -s 1G "$f"
	done
	# shellcheck disable=SC2086
	"$IMGD" store put "$D/rhalf" rhalf1 $RADOS >"$D/rhalf.out" 2>&1 &
	local p=$! objs=0 i rc
	for _ in $(seq 200); do
		objs=$(pool_objects "run$$/rhalf1/")
		[ "$objs" -ge 8 ] && break
		sleep 0.02
	done
	kill -9 $p 2>/dev/null
	wait $p 2>/dev/null
	grep -q "written to" "$D/rhalf.out" && { WHY="the put finished before it was killed"; return 1; }
	[ "$objs" -ge 8 ] || { WHY="not enough objects seen before the kill ($objs)"; return 1; }
	[ "$(pool_objects "run$$/rhalf1/manifest")" = 0 ] || { WHY="a manifest was written"; return 1; }
	SARGS=$RADOS imgd_up $P3 "$D/imgd-rhalf.log" || { WHY="criu-imgd did not listen"; return 1; }
	i=$IPID
	mkdir -p "$D/rhalfimg"
	"$LAZYD" --image-server 127.0.0.1:$P3 --image rhalf1 --auth-key "$D/key" -D "$D/rhalfimg" \
		--fetch-only >"$D/rhalffetch.out" 2>&1
	rc=$?
	imgd_down $i
	[ $rc != 0 ] || { WHY="criu-lazyd fetched a half-uploaded image"; return 1; }
	[ -z "$(ls "$D/rhalfimg")" ] || { WHY="files of the half-uploaded image were written"; return 1; }
	grep -q "no image 'rhalf1'.*no manifest" "$D/imgd-rhalf.log" ||
		{ WHY="criu-imgd's log does not say why: $(grep -m1 rhalf1 "$D/imgd-rhalf.log")"; return 1; }
	# shellcheck disable=SC2086
	"$IMGD" store put "$D/pub-local" rhalf1 $RADOS >"$D/rhalf2.out" 2>&1 ||
		{ WHY="a complete put of the id failed: $(cat "$D/rhalf2.out")"; return 1; }
	WHY="$objs objects written, no manifest: refused ($(grep -o "no image 'rhalf1'[^)]*)" "$D/imgd-rhalf.log" | head -1)); a complete put of the id then works"
}

s_radosrace() {
	[ -d "$D/pub-local" ] || { WHY="needs publish"; return 1; }
	local a b ra rb
	# shellcheck disable=SC2086
	"$IMGD" store put "$D/pub-local" race1 $RADOS >"$D/race-a.out" 2>&1 &
	a=$!
	# shellcheck disable=SC2086
	"$IMGD" store put "$D/pub-local" race1 $RADOS >"$D/race-b.out" 2>&1 &
	b=$!
	wait $a
	ra=$?
	wait $b
	rb=$?
	[ $((ra == 0)) != $((rb == 0)) ] ||
		{ WHY="put exit codes $ra and $rb: exactly one must win ($(tail -qn1 "$D"/race-?.out | tr '\n' ' '))"; return 1; }
	grep -qE "appeared meanwhile|exists in" "$D/race-a.out" "$D/race-b.out" ||
		{ WHY="the loser does not say why: $(tail -qn1 "$D"/race-?.out | tr '\n' ' ')"; return 1; }
	WHY="one put won, the other: $(grep -hoE "image race1 (appeared meanwhile|exists in)[^;]*" "$D"/race-?.out | head -1)"
}

# rrefused CONF PATTERN WHAT: criu-imgd over the pool with CONF must refuse to start, saying
# PATTERN.
rrefused() {
	# shellcheck disable=SC2086
	if timeout 60 "$IMGD" ${RADOS%--ceph-conf*} --ceph-conf "$1" --ceph-id "$RADOS_ID" \
		--port $P3 --auth-key "$D/key" >"$1.out" 2>&1; then
		WHY="criu-imgd started with $3"
		return 1
	fi
	grep -q "$2" "$1.out" || { WHY="unclear error: $(cat "$1.out")"; return 1; }
	WHY="$(grep -o "${2%%.*}.*" "$1.out" | head -1)"
}

s_radoskey() {
	# Another user's valid-looking key under client.imgd's name.
	(umask 077 && printf '[client.%s]\n\tkey = %s\n' "$RADOS_ID" "$(ceph-authtool --gen-print-key)" \
		>"$D/wrong.keyring")
	sed "s|^keyring = .*|keyring = $D/wrong.keyring|" "$RADOS_CONF" >"$D/wrong.conf"
	rrefused "$D/wrong.conf" "refused this user or its key" "a wrong key"
}

s_radosperm() {
	local kr why
	kr=$(sed -n 's/^keyring = //p' "$RADOS_CONF")
	cp "$kr" "$D/perm.keyring"
	chmod 640 "$D/perm.keyring"
	sed "s|^keyring = .*|keyring = $D/perm.keyring|" "$RADOS_CONF" >"$D/perm.conf"
	rrefused "$D/perm.conf" "mode 640 lets group or others read it" "a group-readable keyring" ||
		return 1
	why=$WHY
	# The key in the conf itself (no keyring), the conf readable by all.
	{
		grep -v '^keyring' "$RADOS_CONF"
		printf '[client.%s]\nkey = %s\n' "$RADOS_ID" "$(sed -n 's/^[[:space:]]*key = //p' "$kr")"
	} >"$D/keyconf.conf"
	chmod 644 "$D/keyconf.conf"
	rrefused "$D/keyconf.conf" "it sets key) holds a secret and its mode 644" \
		"a world-readable conf holding the key" || return 1
	WHY="$why; $WHY"
}

s_radospool() {
	# shellcheck disable=SC2086
	if timeout 60 "$IMGD" --store rados://nopool$$ ${RADOS#--store * } --port $P3 \
		--auth-key "$D/key" >"$D/nopool.out" 2>&1; then
		WHY="criu-imgd started over a pool that does not exist"
		return 1
	fi
	grep -q "rados://nopool$$: no such pool" "$D/nopool.out" ||
		{ WHY="unclear error: $(cat "$D/nopool.out")"; return 1; }
	WHY=$(grep -o "rados://nopool$$: no such pool" "$D/nopool.out" | head -1)
}
