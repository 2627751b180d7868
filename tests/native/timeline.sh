#!/bin/sh
# The stream's behaviour over time (issue 11): bytes of a restored task's memory installed,
# sampled every 10 ms from the start of `criu restore`, for two builds of criu-lazyd and
# criu-imgd (as root, from the tree; `make plot-timeline` runs it and renders the plot):
#   sh tests/native/timeline.sh
# A TIMELINE_MB (default 1024) MB memhog with one reader thread (-r 1) is dumped once with
# CRIU 4.2.1 (tests/native/env.sh, suite sid), then restored six times, each one with
# tests/vm/lib.sh restore_run in mode verify-now (the workload checks every byte as soon as it
# runs again), as tests/native/bench.sh does:
#   local     criu-lazyd with the local images
#   loopback  criu-lazyd --image-server 127.0.0.1:P + a fresh criu-imgd -D IMG per restore
#   link      the same with criu-imgd in a network namespace of its own behind a veth pair
#             shaped by tbf to TIMELINE_RATE (1gbit) on the server's side (bench.sh's setup
#             "link"; each build with its defaults: the current one speaks TLS 1.3 beyond
#             loopback, 6cd98b6 has no TLS)
# each with the "before" build (commit TIMELINE_OLD, default 6cd98b6: the code of the first
# native benchmark, before the stream fixes; git archive of that commit into a temp dir, built
# there with make -j2, unless TIMELINE_OLD_BIN names a dir with its criu-lazyd and criu-imgd)
# and the "after" build (TIMELINE_NEW_BIN, default build/bin of this tree), back to back.
# What is sampled: RssAnon of the restored memhog (/proc/PID/status) every 10 ms, from the
# moment `criu restore` starts (restore_run's t0) until the task is killed after its
# verification and the daemon's exit. Before the pid exists, and while it is still CRIU's
# restorer (comm not "memhog"), a sample counts 0 bytes. RssAnon counts the pages the daemon
# copied in (UFFDIO_COPY) and the task's own small non-lazy memory; zero pages mapped by the
# drain or for faults (UFFDIO_ZEROPAGE: the shared zero page) are not RSS and do not count.
# Every run must end with memhog's "verify ok" and the daemon exiting 0, or the script fails.
# Output: TIMELINE_DAT (default docs/img/stream-timeline.dat: one gnuplot block per run, in
# the order local/loopback/link x before/after), a markdown summary on stdout and in
# build/native/timeline.md, the logs of every run under build/native/timeline-runs/.
# The whole run holds /tmp/lazy-bench.lock (flock): other benchmarks on this host wait.
# Env: TIMELINE_MB (1024), TIMELINE_DIR (images and run dirs, /dev/shm/lz-timeline),
# TIMELINE_RATE (1gbit), TIMELINE_OLD (6cd98b6), TIMELINE_OLD_BIN, TIMELINE_NEW_BIN,
# TIMELINE_NEW_DESC (what to call the current build; default the last commit that changed
# lazy-pages/ or proto/), TIMELINE_SETUPS ("local loopback link"), TIMELINE_PERIOD_MS (10),
# NATIVE_SUITE (sid).
set -eu
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
OLD=${TIMELINE_OLD:-6cd98b6}

[ "$(id -u)" = 0 ] || { echo "timeline.sh: run as root (criu dump/restore)" >&2; exit 2; }

# ---- the old build (outside the lock: building is not measured) ----
if [ "${TIMELINE_LOCKED:-}" != 1 ]; then
	if [ -z "${TIMELINE_OLD_BIN:-}" ]; then
		_tmp=$(mktemp -d /tmp/lz-timeline-old.XXXXXX)
		echo "timeline: building $OLD apart in $_tmp" >&2
		git -C "$ROOT" archive "$OLD" | tar -x -C "$_tmp"
		make -C "$_tmp" -j2 build/bin/criu-lazyd build/bin/criu-imgd >"$_tmp/build.log" 2>&1 ||
			{ tail -n 20 "$_tmp/build.log" >&2; echo "timeline: $OLD does not build" >&2; exit 1; }
		TIMELINE_OLD_BIN=$_tmp/build/bin
		export TIMELINE_OLD_TMP="$_tmp"
	fi
	export TIMELINE_OLD_BIN TIMELINE_LOCKED=1
	echo "timeline: waiting for /tmp/lazy-bench.lock" >&2
	_rc=0
	flock -o /tmp/lazy-bench.lock sh "$0" "$@" || _rc=$?
	[ -z "${TIMELINE_OLD_TMP:-}" ] || rm -rf "${TIMELINE_OLD_TMP:?}"
	exit $_rc
fi

MB=${TIMELINE_MB:-1024}
BDIR=${TIMELINE_DIR:-/dev/shm/lz-timeline}
RATE=${TIMELINE_RATE:-1gbit}
SETUPS=${TIMELINE_SETUPS:-local loopback link}
PERIOD_MS=${TIMELINE_PERIOD_MS:-10}
DAT=${TIMELINE_DAT:-$ROOT/docs/img/stream-timeline.dat}
OLD_BIN=$TIMELINE_OLD_BIN
NEW_BIN=${TIMELINE_NEW_BIN:-$ROOT/build/bin}
OUT=$ROOT/build/native
RUNS=$OUT/timeline-runs
LOGV=2

for b in "$OLD_BIN/criu-lazyd" "$OLD_BIN/criu-imgd" "$NEW_BIN/criu-lazyd" "$NEW_BIN/criu-imgd" \
	"$ROOT/build/tests/workloads/memhog"; do
	[ -x "$b" ] || { echo "timeline.sh: $b is not built (make)" >&2; exit 2; }
done
# Both builds must take every option this script passes (the old one is never adapted).
for d in "$OLD_BIN" "$NEW_BIN"; do
	for o in --images-dir --work-dir --log-file --verbosity --stats-file --image-server --image \
		--auth-key; do
		"$d/criu-lazyd" --help 2>&1 | grep -qE -- "${o}[ =[]" ||
			{ echo "timeline.sh: $d/criu-lazyd has no $o" >&2; exit 2; }
	done
	for o in --images-dir --address --port --auth-key --log-file --verbosity --status-fd; do
		"$d/criu-imgd" --help 2>&1 | grep -qE -- "${o}[ =[]" ||
			{ echo "timeline.sh: $d/criu-imgd has no $o" >&2; exit 2; }
	done
done

. "$ROOT/tests/native/env.sh"
native_bench_env "$BDIR"

# The current build: the last commit that changed the daemons' sources (what the binaries are
# built from), "-dirty" if they differ from it; TIMELINE_NEW_DESC if built from elsewhere.
NEW_DESC=${TIMELINE_NEW_DESC:-$(git -C "$ROOT" log -1 --format=%h -- lazy-pages proto 2>/dev/null || echo unknown)}
[ -n "${TIMELINE_NEW_DESC:-}" ] || git -C "$ROOT" diff --quiet HEAD -- lazy-pages proto 2>/dev/null ||
	NEW_DESC=$NEW_DESC-dirty
OLD_DESC=$(git -C "$ROOT" rev-parse --short "$OLD" 2>/dev/null || echo "$OLD")
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
DATE=$(date -u '+%Y-%m-%d %H:%M UTC')
rm -rf "${BDIR:?}" "$RUNS"
mkdir -p "$BDIR" "$RUNS" "$(dirname "$DAT")"
KEY=$BDIR/imgd.key
( umask 077; od -An -tx1 -N32 /dev/urandom | tr -d ' \n' >"$KEY" )
LOG=$OUT/timeline-raw.txt
SUM=$BDIR/summary.txt
: >"$LOG"
: >"$SUM"
IPID="" SPID=""
C=tl

say() { echo "$*" | tee -a "$LOG" >&2; }

# ---- the shaped link: a veth pair, the server's end in a namespace of ours ----
LNS=lztl$$ LHOST=lztlh$$ LSRV=lztls$$ HOST_IP=10.251.83.1 SRV_IP=10.251.83.2
. "$ROOT/tests/native/shaped.sh"

cleanup() {
	[ -z "$SPID" ] || { kill "$SPID" 2>/dev/null; wait "$SPID" 2>/dev/null; } || true
	[ -z "$IPID" ] || { kill "$IPID" 2>/dev/null; wait "$IPID" 2>/dev/null; } || true
	[ -f "$BDIR/$C/pid" ] && kill_case "$C" >/dev/null 2>&1
	link_down || true
	rm -rf "${BDIR:?}"
	return 0
}
trap cleanup EXIT
trap 'exit 143' TERM INT

case " $SETUPS " in *" link "*)
	link_up || { echo "timeline: cannot set up the shaped veth link" >&2; exit 1; } ;;
esac

# sampler_start PID FILE: every PERIOD_MS ms one line "<realtime ns> <RssAnon kB> <state>" of
# PID, state: none (no such pid), criu (the pid is still CRIU's restorer), task (the restored
# memhog). Samples of a task that is exiting (PF_EXITING: killed after the run) are not
# written, nor any after them. Stops on SIGTERM. Sets SPID once it took its first sample.
sampler_start() {
	python3 -c '
import os, signal, sys, time
pid, out, period = sys.argv[1], sys.argv[2], int(sys.argv[3]) / 1000.0
stop = False
def on_term(*_):
    global stop
    stop = True
signal.signal(signal.SIGTERM, on_term)
base = "/proc/%s/" % pid
lines = []
seen = False
t_next = time.monotonic()
while not stop:
    t = time.time_ns()
    state, kb = "none", 0
    try:
        with open(base + "comm") as f:
            comm = f.read().strip()
        if comm != "memhog":
            state = "criu"
        else:
            with open(base + "status") as f:
                st = f.read()
            with open(base + "stat") as f:
                flags = int(f.read().rsplit(")", 1)[1].split()[6])
            if flags & 0x4:  # PF_EXITING: killed, its memory going away
                state = "exit"
            else:
                for l in st.splitlines():
                    if l.startswith("RssAnon:"):
                        kb = int(l.split()[1])
                        state = "task"
                        break
                else:
                    state = "exit"  # no mm any more
    except (OSError, IndexError, ValueError):
        state = "none"
    if state == "task":
        seen = True
    elif seen:
        break  # the task is going or gone (killed after the run): no more samples
    lines.append("%d %d %s\n" % (t, kb, state))
    if len(lines) == 1:
        open(out + ".ready", "w").close()
    t_next += period
    d = t_next - time.monotonic()
    if d > 0:
        time.sleep(d)
    else:
        t_next = time.monotonic()  # late (loaded host): the next sample a period from now
with open(out, "w") as f:
    f.writelines(lines)
' "$1" "$2" "$PERIOD_MS" &
	SPID=$!
	wait_until 30 path_exists "$2.ready"
}
path_exists() { [ -e "$1" ]; }
sampler_stop() {
	kill -TERM "$SPID" 2>/dev/null || true
	wait "$SPID" 2>/dev/null || true
	SPID=""
}

# imgd_up [NS]: criu-imgd of build $BIN for the case's images on loopback (or in the link's
# namespace); sets IPID and PORT.
imgd_up() { IMGD=$BIN/criu-imgd imgd_up_in "$BDIR/$C" ${1:-}; }

# one_run SETUP BUILD: one restore of the case, sampled; its samples in $BDIR/samples.
one_run() {
	_rr=0
	FAIL_WHY=""
	OURS_LAZY=$BIN/criu-lazyd
	case $1 in
	loopback | link)
		_rns="" _a=127.0.0.1
		[ "$1" = loopback ] || { _rns=$LNS _a=$SRV_IP; }
		imgd_up $_rns || { FAIL_WHY="criu-imgd did not start"; imgd_down; return 1; }
		OURS_LAZY="$BIN/criu-lazyd --image-server $_a:$PORT --image img --auth-key $KEY"
		;;
	esac
	rm -f "$BDIR/samples" "$BDIR/samples.ready"
	sampler_start "$(cat "$BDIR/$C/pid")" "$BDIR/samples" ||
		{ FAIL_WHY="the sampler did not start"; RUN=$BDIR/$C; return 1; }
	# restore_run takes t0 (_t0, lib.sh's clock: date +%s%N) right before `criu restore`.
	_t0=""
	restore_run "$C" ours verify-now || _rr=$?
	T0=$_t0
	sampler_stop
	if [ -n "$IPID" ]; then
		imgd_down
		cp "$BDIR/$C/imgd.log" "$RUN/" 2>/dev/null || true
	fi
	return $_rr
}

# ---- dump ----
wl_start "$C" memhog -m "$MB" -s 7 -r 1 >>"$LOG" 2>&1 || { say "memhog did not start"; exit 1; }
wl_dump "$C" >>"$LOG" 2>&1 || { say "criu dump failed (end of $BDIR/$C/dump.log in $LOG)"; exit 1; }
say "${MB} MB memhog -r 1 dumped in ${DUMP_MS} ms ($(du -sm "$BDIR/$C/img" | cut -f1) MB of images)"

# ---- runs ----
BLOCKS=$BDIR/blocks
: >"$BLOCKS"
idx=0
for s in $SETUPS; do
	for b in before after; do
		case $b in before) BIN=$OLD_BIN desc=$OLD_DESC ;; after) BIN=$NEW_BIN desc=$NEW_DESC ;; esac
		case $s in
		local) what="local images" ;;
		loopback) what="criu-imgd, loopback" ;;
		link) what="criu-imgd, $RATE link" ;;
		esac
		title="$what, $b ($desc)"
		if ! one_run "$s" "$b" >>"$LOG" 2>&1; then
			say "FAIL $s $b: $FAIL_WHY"
			excerpt "$RUN" "$C" >>"$LOG" 2>&1 || true
			cp -r "$RUN" "$RUNS/FAIL-$s-$b" 2>/dev/null || true
			say "timeline failed: logs in $RUNS/FAIL-$s-$b, $LOG"
			exit 1
		fi
		case $VERIFY in "verify ok"*) ;; *) say "FAIL $s $b: $VERIFY"; exit 1 ;; esac
		[ -n "$T0" ] || { say "FAIL $s $b: no t0 from restore_run"; exit 1; }
		keep_run "$RUNS/$s-$b" steps stats.json lazy.log daemon.out daemon.exit imgd.log result
		cp "$BDIR/samples" "$RUNS/$s-$b/samples"
		# The block: samples from t0 on, ms since t0 and MB (RssAnon kB / 1024).
		{
			[ "$idx" = 0 ] || printf '\n\n'
			printf '"%s" ""\n' "$title"
			awk -v t0="$T0" '$1 >= t0 { printf "%.1f %.2f\n", ($1 - t0) / 1e6, $2 / 1024 }' "$BDIR/samples"
		} >>"$BLOCKS"
		# Summary: how many samples, the last MB, when 50/90/99 % of that were in.
		stats=$(awk -v t0="$T0" '$1 >= t0 { n++; t[n] = ($1 - t0) / 1e6; m[n] = $2 / 1024 }
			END {
				mx = 0; for (i = 1; i <= n; i++) if (m[i] > mx) mx = m[i]
				split("0.5 0.9 0.99", q, " "); out = ""
				for (j = 1; j <= 3; j++) {
					r = "-"
					for (i = 1; i <= n; i++) if (m[i] >= q[j] * mx) { r = sprintf("%d", t[i]); break }
					out = out " " r
				}
				gap = 0; for (i = 2; i <= n; i++) if (t[i] - t[i-1] > gap) gap = t[i] - t[i-1]
				# The rate from 10 % to 90 % of the last MB, and the least installed between
				# two samples from 1 MiB until 99.9 % (a plateau would show as 0).
				t10 = t90 = -1
				for (i = 1; i <= n; i++) {
					if (t10 < 0 && m[i] >= 0.1 * mx) t10 = t[i]
					if (t90 < 0 && m[i] >= 0.9 * mx) t90 = t[i]
				}
				rate = t90 > t10 && t10 >= 0 ? sprintf("%.0f", 0.8 * mx / ((t90 - t10) / 1000)) : "-"
				least = -1
				for (i = 2; i <= n; i++)
					if (m[i-1] >= 1 && m[i] <= 0.999 * mx && (least < 0 || m[i] - m[i-1] < least))
						least = m[i] - m[i-1]
				printf "%d %.0f%s %d %s %.2f\n", n, mx, out, gap, rate, least
			}' "$BDIR/samples")
		sv=$(grep -o '[0-9]* pages served' "$RUN/imgd.log" 2>/dev/null | awk '{ n += $1 } END { print n + 0 }')
		[ "$s" != local ] || sv=-
		pt=$(stat_of "$RUN/stats.json" pages_total)
		pf=$(stat_of "$RUN/stats.json" pages_fault)
		set -- $stats
		echo "$s $b $desc $RESUME_MS $TOUCH_MS $DRAIN_MS $1 $2 $3 $4 $5 $6 $7 $8 $sv $pt $pf" >>"$SUM"
		say "$s $b ($desc): resume $RESUME_MS ms, total $TOUCH_MS ms, daemon exit $DRAIN_MS ms; $1 samples (longest gap $6 ms), max $2 MiB, 50/90/99% at $3/$4/$5 ms, $7 MiB/s from 10% to 90%, at least $8 MiB per sample; criu-imgd sent $sv pages for $pt data pages, $pf on demand; $VERIFY"
		idx=$((idx + 1))
	done
done
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)

{
	echo "Stream timeline: ${MB} MB memhog, 1 reader, verify right after resume; CRIU $CRIU_VERSION, kernel $(uname -r), $(nproc) CPUs"
	echo "$DATE; tree $(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo unknown); before: $OLD_DESC ($OLD_BIN), after: $NEW_DESC ($NEW_BIN); load average at the start: $LOAD_START, at the end: $LOAD_END"
	echo
	echo "| setup | build | resume | total | daemon exit | RssAnon max | 50% / 90% / 99% of it at | MiB/s, 10% to 90% | least MiB per sample | criu-imgd pages sent / data pages | pages on demand | samples (longest gap) |"
	echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
	while read -r s b d r t x n mx p50 p90 p99 gap rate least sv pt pf; do
		case $sv in -) ratio="" ;; *) ratio=$(awk -v a="$sv" -v b="$pt" 'BEGIN { if (b > 0) printf "%.2f (%d / %d)", a / b, a, b }') ;; esac
		echo "| $s | $b ($d) | $r ms | $t ms | $x ms | $mx MiB | $p50 / $p90 / $p99 ms | $rate | $least | $ratio | $pf | $n ($gap ms) |"
	done <"$SUM"
	echo
	echo "Data: $DAT; logs: $RUNS/"
} >"$OUT/timeline.md"
cat "$OUT/timeline.md"
{
	echo "# MiB of a restored ${MB} MB memhog's memory installed over time: RssAnon of the task"
	echo "# (/proc/PID/status) sampled every ${PERIOD_MS} ms from the start of \`criu restore\`; 0 until the"
	echo "# pid is the restored task. Zero pages mapped (UFFDIO_ZEROPAGE) are not RSS."
	echo "# Written by tests/native/timeline.sh; every data point below is a sample of this one run, summed up here:"
	sed 's/^/# /' "$OUT/timeline.md" | sed '$d'
	echo "# link: veth + tbf $RATE, criu-imgd in a network namespace; one memhog reader, verify at resume."
	echo "# One block per run (gnuplot index 0..), its title on its first line; columns: ms MiB"
	cat "$BLOCKS"
} >"$DAT.new"
mv "$DAT.new" "$DAT"
