#!/bin/sh
# Working-set replay end to end (issue 13), natively with real CRIU 4.x: ws.sh ROOT
# (run by tests/native/run.sh's e2e part with the suite's criu on PATH and VM set).
#   record   a memhog -w (it reads a fixed random tenth of its pages first) restored with
#            criu-lazyd --working-set auto --working-set-hold 5000 (as every case here):
#            memory verified, lazy-workset.img written beside
#            the images, private (0600);
#   replay   the same images again: verified, the record replayed (ws_replayed > 0 in the
#            stats), the record now of 2 restores;
#   foreign  another dump's images with the first one's record copied in: the record is
#            refused ("other images"), nothing replayed, memory verified, and a record of its
#            own written in its place;
#   imgd     the same images through criu-imgd on loopback: the record replayed over the
#            network, several of its scattered runs to a read (stream_ranges > stream_reads);
#   corrupt  that record cut in half: refused ("checksum"), verified;
#   seq      a 256 MB memhog that reads its memory in order, restored three times
#            without the hold: the record after them has at most 256 entries (its trails
#            of faults joined);
#   chaos    the chaos workload (mremap, madvise and munmap storms while pages are pending)
#            restored twice: its record names pages it has since moved or dropped; the replay
#            must install none of them wrong (every byte verified).
# Writes "PASS|FAIL ws-CASE (ours) ..." lines to $VMRUN_RESULTS/summary.
set -u
ROOT=$1
. "$ROOT/tests/vm/lib.sh"
R=$VMRUN_RESULTS
: >"$R/summary"
LAZYD=$ROOT/build/bin/criu-lazyd

result() { echo "$1 ws-$2 (ours)${3:+ $3}" | tee -a "$R/summary"; }

# restore_ws CASE NAME: one restore of CASE with criu-lazyd --working-set auto, verified.
restore_ws() {
	OURS_LAZY="$LAZYD --working-set auto --working-set-hold 5000 ${OURS_WS_EXTRA:-}"
	if ! restore_run "$1" ours verify-now; then
		result FAIL "$2" "$FAIL_WHY"
		excerpt "$RUN" "$1" >"$R/fail-ws-$2.txt" 2>&1 || true
		return 1
	fi
	cp "$RUN/lazy.log" "$R/ws-$2.log" 2>/dev/null || true
	STATS=$RUN/stats.json
	LOGF=$RUN/lazy.log
}

prepare() { # CASE SEED
	wl_start "$1" memhog -m 64 -s "$2" -w 100 >/dev/null && wl_dump "$1" >/dev/null
}

if ! prepare wsa 3 || ! prepare wsb 4; then
	result FAIL record "the workloads did not start or dump"
	exit 1
fi
REC=$VM/wsa/img/lazy-workset.img

if restore_ws wsa record; then
	mode=$(stat -c %a "$REC" 2>/dev/null)
	if [ "$mode" != 600 ]; then
		result FAIL record "no private record beside the images (mode '${mode:-none}')"
	elif ! grep -q "record of 1 restores written" "$LOGF"; then
		result FAIL record "the log does not say the record was written"
	else
		result PASS record "$(stat -c %s "$REC") bytes, $(stat_of "$STATS" faults) faults"
	fi
fi

if restore_ws wsa replay; then
	n=$(stat_of "$STATS" ws_replayed)
	if [ "${n:-0}" -gt 0 ] && grep -q "record of 2 restores written" "$LOGF"; then
		result PASS replay "$n pages replayed, $(stat_of "$STATS" faults) faults"
	else
		result FAIL replay "replayed '${n:-}' pages, or the record was not merged"
	fi
fi

# The same images through criu-imgd on loopback: the record beside them is replayed over
# the network, its scattered pages many ranges to a read (one GET each).
IMGD=$ROOT/build/bin/criu-imgd KEY=$VM/ws-imgd.key LOGV=2 IPID=""
. "$ROOT/tests/native/shaped.sh"
( umask 077; od -An -tx1 -N32 /dev/urandom | tr -d ' \n' >"$KEY" )
if ! imgd_up_in "$VM/wsa"; then
	result FAIL imgd "criu-imgd did not start"
else
	OURS_WS_EXTRA="--image-server 127.0.0.1:$PORT --image img --auth-key $KEY"
	if restore_ws wsa imgd; then
		n=$(stat_of "$STATS" ws_replayed) reads=$(stat_of "$STATS" stream_reads)
		ranges=$(stat_of "$STATS" stream_ranges)
		if [ "${n:-0}" -gt 0 ] && [ "${ranges:-0}" -gt "${reads:-0}" ]; then
			result PASS imgd "$n pages replayed over criu-imgd, $ranges ranges in $reads reads, every byte verified"
		else
			result FAIL imgd "replayed '${n:-}' pages, $ranges ranges in $reads reads"
		fi
	fi
	OURS_WS_EXTRA=""
	imgd_down
fi

cp "$REC" "$VM/wsb/img/lazy-workset.img"
if restore_ws wsb foreign; then
	n=$(stat_of "$STATS" ws_replayed)
	if ! grep -q "record ignored.*other images" "$LOGF"; then
		result FAIL foreign "another dump's record was not refused"
	elif [ "${n:-0}" != 0 ]; then
		result FAIL foreign "$n pages replayed from another dump's record"
	elif ! grep -q "record of 1 restores written" "$LOGF"; then
		result FAIL foreign "no record of its own written in its place"
	else
		result PASS foreign "refused, replaced"
	fi
fi

B=$VM/wsb/img/lazy-workset.img
truncate -s $(($(stat -c %s "$B") / 2)) "$B"
if restore_ws wsb corrupt; then
	if grep -q "record ignored.*checksum" "$LOGF" && [ "$(stat_of "$STATS" ws_replayed)" = 0 ]; then
		result PASS corrupt "refused"
	else
		result FAIL corrupt "a truncated record was not refused"
	fi
fi

# A task that reads all its memory in order, restored WS_SEQ_RESTORES times with the
# default hold (none): each restore faults where the task overtakes the stream, and the
# record must join those trails rather than pile them up (before the join a 1 GB reader's
# record held 2,761 first touches after one restore and 55,079 after three).
SEQ_N=${WS_SEQ_RESTORES:-3}
if wl_start wsd memhog -m 256 -s 5 >/dev/null && wl_dump wsd >/dev/null; then
	OURS_WS_EXTRA="--working-set-hold 0" i=0 ok=1
	while [ $i -lt "$SEQ_N" ] && [ $ok = 1 ]; do
		i=$((i + 1))
		restore_ws wsd "seq-$i" || ok=0
	done
	OURS_WS_EXTRA=""
	if [ $ok = 1 ]; then
		n=$(sed -n "s/.*record of $SEQ_N restores written.*(\([0-9]*\) first touches).*/\1/p" "$LOGF")
		# 256 MB is 65,536 pages: a record of 1 entry per 256 of them or fewer.
		if [ -n "$n" ] && [ "$n" -le 256 ]; then
			result PASS seq "$SEQ_N restores of an in-order reader: a record of $n entries"
		else
			result FAIL seq "the record after $SEQ_N restores holds '${n:-?}' entries (at most 256)"
		fi
	fi
else
	result FAIL seq "memhog did not start or dump"
fi

if wl_start wsc chaos -k 1024 -s 7 >/dev/null && wl_dump wsc >/dev/null; then
	if restore_ws wsc chaos-record && restore_ws wsc chaos; then
		result PASS chaos "$(stat_of "$STATS" ws_replayed) pages replayed, every byte verified"
	fi
else
	result FAIL chaos "chaos did not start or dump"
fi
! grep -q '^FAIL' "$R/summary"
