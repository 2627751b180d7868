#!/bin/sh
# One of many concurrent restores of one image (tests/native/many.sh runs it): pid 1 of a pid
# and mount namespace of its own (`unshare -p -f -m --mount-proc`), so that the restored
# task's pid is free here whatever the other restores of the same image hold.
#   many-ns.sh CASE_DIR RUN_DIR CRIU_V CRIU_LAZYD_COMMAND...
# CASE_DIR is the dumped workload's dir: the workload polls CASE_DIR/ctl and appends to
# CASE_DIR/result. This restore's own RUN_DIR/ctl and RUN_DIR/result are mounted over them
# in this namespace, so each restored copy reports to its own files. RUN_DIR/img is empty:
# criu-lazyd (the command, with --image-server and --image) fetches the image's metadata
# into it before it listens; then `criu restore --lazy-pages -d` (log level CRIU_V) restores
# from it with RUN_DIR as the work dir. The workload verifies all its memory as soon as it
# runs (RUN_DIR/ctl/verify is there beforehand).
# Writes in RUN_DIR: times ("restore NS" when criu restore starts, "restored NS" when it
# returned), daemon.exit (criu-lazyd's exit code), ns.rc (0, or the failing step's words).
# Leaving (as pid 1) ends the namespace: the restored task goes with it. Every process this
# script starts runs 32 times at once in the benchmark and counts in its CPU time: no
# timestamp or check here that nothing reads (each $(date) is two processes).
set -u
C=$1 I=$2 CRIU_V=$3
shift 3
now() { date +%s%N; }
fail() { echo "$*" >"$I/ns.rc"; exit 1; }

mount --bind "$I/ctl" "$C/ctl" && mount --bind "$I/result" "$C/result" ||
	fail "cannot mount the run's ctl and result over the case's"
mkfifo "$I/ready" || fail "mkfifo"
( _r=0
  "$@" -D "$I/img" -W "$I" -o "$I/lazy.log" --stats-file "$I/stats.json" --status-fd 3 \
	3>"$I/ready" >"$I/daemon.out" 2>&1 </dev/null || _r=$?
  echo "$_r" >"$I/daemon.exit" ) &
LPID=$!
# One byte (a NUL) once the socket listens; none (end of file) if criu-lazyd exited before.
[ "$(head -c 1 "$I/ready" | wc -c)" = 1 ] || { wait "$LPID"; fail "criu-lazyd did not listen"; }
echo "restore $(now)" >"$I/times"
criu restore -D "$I/img" -W "$I" --lazy-pages -d -o "$I/restore.log" "-v$CRIU_V" ||
	{ kill "$LPID" 2>/dev/null; wait "$LPID"; fail "criu restore failed"; }
echo "restored $(now)" >>"$I/times"
# criu-lazyd leaves once every page is in (or the task is gone): no polling meanwhile.
wait "$LPID"
# The workload's verdict comes with its last page read: at most a few turns more.
n=0
until grep -q '^verify ' "$I/result"; do
	n=$((n + 1))
	[ "$n" -le 600 ] || fail "the workload reported no verification in 30 s"
	sleep 0.05
done
read -r wpid <"$C/pid" && kill -0 "$wpid" 2>/dev/null || fail "the restored workload died"
echo 0 >"$I/ns.rc"
