# One image, many restores (run by tests/native/run.sh, part "many", with a suite's criu on
# PATH): many-test.sh ROOT
# A MANY_TEST_MB (16) MB memhog is dumped once into $VM (a real filesystem: run.sh's is
# /tmp). One criu-imgd on loopback serves that image first to one restore, then to
# MANY_TEST_N (8) restores at once (tests/native/many.sh: each its own criu-lazyd fetching
# the metadata into an empty dir, its own `criu restore --lazy-pages` in a pid and mount
# namespace of its own). Before each, the image's files are evicted from the page cache.
# Passes if every restore verified every byte and its criu-lazyd exited 0, each restore got
# each of its data pages once (criu-lazyd's source_pages = pages_total), criu-imgd read the
# pages file from disk once for all the restores (0.9-1.2x its size; /proc/PID/io
# read_bytes) and its peak RSS grew by at most 2 MiB per extra restore (VmHWM).
# Writes "PASS|FAIL many (ours) ..." to $VMRUN_RESULTS/summary.
set -u
ROOT=$1
. "$ROOT/tests/vm/lib.sh"
R=$VMRUN_RESULTS
: >"$R/summary"
IMGD=$ROOT/build/bin/criu-imgd
LAZYD=$ROOT/build/bin/criu-lazyd
LOGV=2
N=${MANY_TEST_N:-8}
MB=${MANY_TEST_MB:-16}
C=$VM/many
KEY=$VM/many.key
. "$ROOT/tests/native/shaped.sh"
. "$ROOT/tests/native/many.sh"

record() { echo "$1 many (ours) $2" | tee -a "$R/summary"; }
fail() {
	record FAIL "$1"
	mkdir -p "$R/many"
	cp -r "$C/many" "$C/imgd.log" "$R/many/" 2>/dev/null
	for d in "$C"/many/*/; do
		[ -f "$d/ns.rc" ] && [ "$(cat "$d/ns.rc")" = 0 ] && continue
		excerpt "$d" many >"$R/fail-many-ours.txt" # the first that failed
		for f in "$d/ns.rc" "$d/ns.out"; do [ -s "$f" ] && tail -n 5 "$f" >>"$R/fail-many-ours.txt"; done
		break
	done
	imgd_down
	exit 1
}
trap imgd_down EXIT

(umask 077; od -An -tx1 -N32 /dev/urandom | tr -d ' \n' >"$KEY")
wl_start many memhog -m "$MB" -s 11 && wl_dump many || fail "memhog did not start or dump"
PAGES_FILE=$(ls "$C"/img/pages-*.img)
[ "$(echo "$PAGES_FILE" | wc -l)" = 1 ] || fail "expected one pages image, have: $PAGES_FILE"
PAGES_SIZE=$(stat -c %s "$PAGES_FILE")
ONDISK=1
case $(stat -f -c %T "$C/img") in tmpfs | ramfs) ONDISK=0 ;; esac

# round K: K restores through a fresh criu-imgd; sets HWM (kB) and READ (bytes from disk).
round() {
	if [ "$ONDISK" = 1 ]; then
		evict "$C"/img/* || fail "cannot evict the image from the page cache"
		LEFT=$EVICT_LEFT
	fi
	imgd_up_in "$C" || fail "criu-imgd did not start"
	many_restores "$C" "$1" "$PORT" || fail "$1 restores: $FAIL_WHY"
	for s in "$C"/many/*/stats.json; do
		pt=$(stat_num "$s" pages_total) sp=$(stat_num "$s" source_pages)
		[ -n "$pt" ] && [ "$pt" = "$sp" ] ||
			fail "$s: $sp pages came from criu-imgd for $pt lazy data pages"
	done
	HWM=$(proc_kb "$IPID" VmHWM) READ=$(proc_io "$IPID" read_bytes)
	[ -n "$HWM" ] && [ -n "$READ" ] || fail "criu-imgd is gone after $1 restores"
	imgd_down
}
stat_num() { sed -n "s/^ *\"$2\": *\([0-9]*\).*/\1/p" "$1" | head -1; }

round 1
HWM1=$HWM READ1=$READ T1=$MANY_WALL_MS LEFT1=${LEFT:-0}
round "$N"
awk -v h1="$HWM1" -v hn="$HWM" -v n="$N" 'BEGIN { exit !((hn - h1) / (n - 1) <= 2048) }' ||
	fail "criu-imgd's peak RSS grew from $HWM1 kB (1 restore) to $HWM kB ($N restores)"
# Against the bytes that had to come from disk (what stayed in the page cache did not).
read_x=$(awk -v r="$READ" -v s="$PAGES_SIZE" -v l="${LEFT:-0}" 'BEGIN { printf "%.2f", r / (s - l) }')
if [ "$ONDISK" = 1 ]; then
	awk -v x="$read_x" 'BEGIN { exit !(x >= 0.9 && x <= 1.2) }' ||
		fail "criu-imgd read $READ bytes from disk for $N restores of a $PAGES_SIZE-byte pages image (${read_x}x)"
	reads="criu-imgd read ${read_x}x the pages image from disk (1 restore: $(awk -v r="$READ1" -v s="$PAGES_SIZE" -v l="$LEFT1" 'BEGIN { printf "%.2f", r / (s - l) }')x; $LEFT bytes stayed cached)"
else
	reads="disk reads not checked: $VM is on tmpfs"
fi
record PASS "$N x $MB MB restores at once in $MANY_WALL_MS ms (1 alone: $T1 ms), each p50 $(pct "$MANY_TOTALS" 50) ms max $(pct "$MANY_TOTALS" 100) ms, all verified; criu-imgd VmHWM $HWM1 kB -> $HWM kB; $reads"
rm -rf "${C:?}"
