#!/bin/sh
# Host network tests: criu-imgd, the lazy-wire client, criu-lazyd --image-server.
#   sh tests/net/run.sh [BUILD_DIR]      (default build; build-san for SANITIZE=1)
# Only loopback, and veth pairs inside network namespaces this script creates.
# Needs root for the netns and restore cases (userfaultfd, ip netns); those are
# skipped otherwise, as are the restore cases when criu-lazyd lacks --image-server.
# Env: NET_LAZYD (criu-lazyd to test, default BUILD/bin/criu-lazyd), NET_ONLY (case names).
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
. "$ROOT/tests/net/stop.sh"
B=${1:-build}
case $B in /*) ;; *) B=$ROOT/$B ;; esac
export NET_BUILD=$B
T=$B/tests/net
OUT=$B/net
rm -rf "$OUT"
mkdir -p "$T" "$OUT"
IMGD=$B/bin/criu-imgd
export NET_LAZYD=${NET_LAZYD:-$B/bin/criu-lazyd}
SIM=$B/tests/host/restore-sim
pass=0 fail=0 skip=0

say() { printf '%s\n' "$*"; }
ok() { say "PASS $1"; pass=$((pass + 1)); }
bad() { say "FAIL $1${2:+: $2}"; fail=$((fail + 1)); }
skipped() { say "SKIP $1: $2"; skip=$((skip + 1)); }
want() { [ -z "${NET_ONLY:-}" ] || case " $NET_ONLY " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }

# The test programs are built by make (tests/net/*.c -> BUILD/tests/net/).
for p in netload hostile flipproxy metafetch attacker; do
	[ -x "$T/$p" ] || { say "net: $T/$p missing: run make first"; exit 2; }
done
[ -x "$IMGD" ] || { say "net: $IMGD missing: run make first"; exit 2; }

root=false
[ "$(id -u)" = 0 ] && root=true
remote_lazyd=false
"$NET_LAZYD" --help 2>/dev/null | grep -q -- --image-server && remote_lazyd=true
why_no_lazyd="criu-lazyd has no --image-server (apply the issue-3 integration patch)"

# A private image to serve: written by restore-sim --images-only (needs crit).
mk_image() { # $1 scenario, $2 dir
	rm -rf "$2"
	mkdir -p "$2"
	"$SIM" --scenario "$1" --dir "$2" --images-only >"$2.out" 2>&1
}

start_imgd() { # $1 name, rest: criu-imgd args; sets port, ipid
	n=$1
	shift
	"$IMGD" "$@" --port 0 -o "$OUT/$n-imgd.log" -v4 --status-fd 3 3>"$OUT/$n.port" &
	ipid=$!
	i=0
	while [ ! -s "$OUT/$n.port" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
	port=$(cat "$OUT/$n.port" 2>/dev/null)
}

stop_imgd() { kill "$ipid" 2>/dev/null; wait "$ipid" 2>/dev/null; }

# criu-imgd always needs the readers' key (--auth-key), uploads the publishers' (--upload-key).
key=$OUT/key
head -c 48 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$key"
chmod 600 "$key"
badkey=$OUT/badkey
head -c 48 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$badkey"
chmod 600 "$badkey"
upkey=$OUT/upkey
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$upkey"
chmod 600 "$upkey"

# ---- server-side cases (no criu-lazyd needed) ----
if mk_image large "$OUT/img-large"; then
	IMG=$OUT/img-large/img
	if want concurrent32; then
		start_imgd c32 -D "$IMG" --auth-key "$key"
		"$T/netload" --server "127.0.0.1:$port" --dir "$IMG" --key "$key" --clients 32 \
			>"$OUT/c32.out" 2>&1 &
		lp=$!
		rss=0 fds=0
		while kill -0 $lp 2>/dev/null; do
			r=$(awk '/VmRSS/ {print $2}' "/proc/$ipid/status" 2>/dev/null)
			[ "${r:-0}" -gt "$rss" ] && rss=$r
			f=$(ls "/proc/$ipid/fd" 2>/dev/null | wc -l)
			[ "$f" -gt "$fds" ] && fds=$f
			sleep 0.05
		done
		wait $lp && r=0 || r=1
		stop_imgd
		# Each page is read and hashed once, by the first session that sends it; the 31
		# others take its checksum and zero bit from the image's sum cache (sumcache.c).
		hits=$(sed -n 's/.* \([0-9]*\) pages were sent with the checksums of an earlier read.*/\1/p' \
			"$OUT/c32-imgd.log" | tail -1)
		each=$(sed -n 's/.*each read \([0-9]*\) data pages.*/\1/p' "$OUT/c32.out")
		if [ $r = 0 ] && [ "${hits:-0}" -ge $((31 * ${each:-1} * 9 / 10)) ]; then
			ok "concurrent32: $(cat "$OUT/c32.out") (imgd peak RSS ${rss} kB, $fds fds; $hits pages sent with cached checksums)"
		else
			bad concurrent32 "$(tail -3 "$OUT/c32.out"); ${hits:-no} pages sent with cached checksums, want >= 90% of 31 x ${each:-?}"
		fi
	fi
	if want fdlimit; then
		# At its fd limit criu-imgd rests its listening socket (no busy loop on EMFILE) and
		# takes the waiting connections as sessions end: 40 idle connections against a
		# limit of 24 fds, its CPU time over one second of that, then 8 clients read all.
		printf '#!/bin/sh\nulimit -n 24\nexec "%s" "$@"\n' "$IMGD" >"$OUT/imgd-fd24"
		chmod +x "$OUT/imgd-fd24"
		_imgd=$IMGD IMGD=$OUT/imgd-fd24
		start_imgd fd24 -D "$IMG" --auth-key "$key" --status-socket none
		IMGD=$_imgd
		python3 -c '
import socket, sys, time
cs = [socket.create_connection(("127.0.0.1", int(sys.argv[1]))) for _ in range(40)]
time.sleep(2.5)' "$port" &
		hp=$!
		sleep 0.5
		c0=$(cut -d' ' -f14,15 "/proc/$ipid/stat")
		sleep 1
		c1=$(cut -d' ' -f14,15 "/proc/$ipid/stat")
		wait $hp
		ticks=$(echo "$c0 $c1" | awk '{ print $3 + $4 - $1 - $2 }')
		"$T/netload" --server "127.0.0.1:$port" --dir "$IMG" --key "$key" --clients 8 \
			>"$OUT/fd24.out" 2>&1 && r=0 || r=1
		stop_imgd
		if [ $r = 0 ] && [ "$ticks" -le 20 ] &&
			grep -q "cannot accept a connection .*Too many open files" "$OUT/fd24-imgd.log"; then
			ok "fdlimit: at its fd limit $ticks CPU ticks in 1 s, then: $(cat "$OUT/fd24.out")"
		else
			bad fdlimit "netload rc $r, $ticks CPU ticks in 1 s at the limit (at most 20), log: $(grep -c 'cannot accept' "$OUT/fd24-imgd.log") accept warnings; $(tail -2 "$OUT/fd24.out")"
		fi
	fi
	if want bench-host; then
		start_imgd bench -D "$IMG" --auth-key "$key"
		if "$T/netload" --server "127.0.0.1:$port" --dir "$IMG" --key "$key" --bench \
			>"$OUT/bench.out" 2>&1; then
			ok "bench-host (loopback): $(cat "$OUT/bench.out")"
		else
			bad bench-host "$(tail -3 "$OUT/bench.out")"
		fi
		stop_imgd
	fi
	if want dscp; then
		# The fault connection carries DSCP AF21 (tos 0x48) and the interactive priority
		# (class_id 6, pfifo_fast's first band) at both ends; the stream's carries neither.
		# criu-imgd --fault-dscp off leaves its own end unmarked. netload --bench keeps its
		# connections open after its figures (--linger-ms) so that ss sees them.
		marks() { # $1: ss filter; the tos/class_id pairs of its established sockets, sorted
			ss -tnH --tos state established "$1" 2>/dev/null |
				sed -n 's/.*tos:\([0-9a-fx]*\) class_id:\([0-9a-fx]*\).*/\1\/\2/p' | sort | tr '\n' ' '
		}
		dscp_case() { # $1 name, $2 expected imgd-side marks, rest: criu-imgd options
			n=$1 want_srv=$2
			shift 2
			start_imgd "$n" -D "$IMG" --auth-key "$key" "$@"
			"$T/netload" --server "127.0.0.1:$port" --dir "$IMG" --key "$key" --bench \
				--linger-ms 20000 >"$OUT/$n.out" 2>&1 &
			lp=$!
			srv="" cli="" i=0
			while [ $i -lt 400 ] && kill -0 $lp 2>/dev/null; do
				if grep -q '^bench:' "$OUT/$n.out"; then
					srv=$(marks "sport = :$port") cli=$(marks "dport = :$port")
					break
				fi
				sleep 0.05
				i=$((i + 1))
			done
			kill $lp 2>/dev/null
			wait $lp 2>/dev/null
			stop_imgd
			if [ "$srv" = "$want_srv" ] && [ "$cli" = "0/0 0x48/0x6 " ]; then
				ok "$n: criu-imgd's sockets: $srv; the client's: $cli"
			else
				bad "$n" "criu-imgd's sockets '$srv' (want '$want_srv'), the client's '$cli' (want '0/0 0x48/0x6 '): $(tail -2 "$OUT/$n.out")"
			fi
		}
		dscp_case dscp "0/0 0x48/0x6 "
		dscp_case dscp-off "0/0 0/0 " --fault-dscp off
	fi
	if want sums; then
		# Dump-time checksum index, then a damaged page: the server refuses to send it.
		cp -r "$OUT/img-large" "$OUT/img-sums"
		S=$OUT/img-sums/img
		"$IMGD" -D "$S" --make-sums -o "$OUT/sums.log" -v4
		start_imgd sums -D "$S" --auth-key "$key"
		"$T/netload" --server "127.0.0.1:$port" --dir "$S" --key "$key" --clients 2 \
			>"$OUT/sums-clean.out" 2>&1
		r1=$?
		stop_imgd
		# Flip every bit of one byte inside a page the server serves (a lazy data page).
		f=$(ls -S "$S"/pages-*.img | head -1)
		off=$("$B/tests/host/img-dump" "$S" | jq '[.tasks[].extents[] |
			select(.zero == false and .remote == false)][0].pages_off + 100')
		byte=$(od -An -tu1 -j "$off" -N1 "$f" | tr -d ' ')
		# shellcheck disable=SC2059
		printf "\\$(printf %o $((255 - byte)))" | dd of="$f" bs=1 seek="$off" conv=notrunc 2>/dev/null
		start_imgd sums2 -D "$S" --auth-key "$key"
		"$T/netload" --server "127.0.0.1:$port" --dir "$S" --key "$key" --clients 1 \
			>"$OUT/sums-bad.out" 2>&1
		r2=$?
		stop_imgd
		if [ $r1 = 0 ] && [ $r2 != 0 ] && grep -q "dump-time checksum" "$OUT/sums2-imgd.log"; then
			ok "sums: dump-time index served clean, a damaged page refused at serve time"
		else
			bad sums "clean rc $r1, damaged rc $r2"
		fi
	fi
else
	skipped "server cases" "restore-sim --images-only failed (crit?): $(tail -1 "$OUT/img-large.out")"
fi

if mk_image seq "$OUT/img-seq"; then
	IMG=$OUT/img-seq/img
	if want hostile; then
		# With uploads on: the role cases use both keys.
		mkdir -p "$OUT/hostile-root"
		rm -rf "$OUT/hostile-root/img"
		cp -r "$IMG" "$OUT/hostile-root/img"
		start_imgd hostile --root "$OUT/hostile-root" --accept-uploads --auth-key "$key" \
			--upload-key "$upkey"
		"$T/hostile" --server "127.0.0.1:$port" --image img --key "$key" --upload-key "$upkey" \
			>"$OUT/hostile.out" 2>&1 && r=0 || r=1
		kill -0 "$ipid" 2>/dev/null || r=1
		stop_imgd
		[ $r = 0 ] && ok "hostile (uploads on): $(grep -c PASS "$OUT/hostile.out") cases refused" ||
			bad hostile "$(grep FAIL "$OUT/hostile.out" | head -3)"
		start_imgd hostile-key -D "$IMG" --auth-key "$key"
		"$T/hostile" --server "127.0.0.1:$port" --image img --key "$key" \
			>"$OUT/hostile-key.out" 2>&1 && r=0 || r=1
		# A client with the wrong key or none reads nothing.
		"$T/netload" --server "127.0.0.1:$port" --dir "$IMG" --image img --key "$badkey" \
			>"$OUT/nokey.out" 2>&1 && r=1
		"$T/netload" --server "127.0.0.1:$port" --dir "$IMG" --image img \
			>>"$OUT/nokey.out" 2>&1 && r=1
		"$T/netload" --server "127.0.0.1:$port" --dir "$IMG" --image img --key "$key" \
			>>"$OUT/nokey.out" 2>&1 || r=1
		stop_imgd
		[ $r = 0 ] && ok "hostile (key): refused without or with a wrong key, served with it" ||
			bad hostile-key "$(grep FAIL "$OUT/hostile-key.out" | head -3) $(tail -2 "$OUT/nokey.out")"
	fi
	if want root; then
		# --root: ids are entries below the root; ../ and symlinks lead nowhere.
		mkdir -p "$OUT/root"
		cp -r "$IMG" "$OUT/root/one"
		ln -s "$OUT/img-seq/img" "$OUT/root/link"
		start_imgd root --root "$OUT/root" --auth-key "$key"
		r=0
		"$T/netload" --server "127.0.0.1:$port" --dir "$OUT/root/one" --image one --key "$key" \
			>"$OUT/root.out" 2>&1 || r=1
		for id in link .. nonexistent; do
			"$T/netload" --server "127.0.0.1:$port" --dir "$IMG" --image "$id" --key "$key" \
				>>"$OUT/root.out" 2>&1 && r=1
		done
		stop_imgd
		[ $r = 0 ] && ok "root: --root serves 'one', refuses a symlink, '..' and unknown ids" ||
			bad root "$(tail -3 "$OUT/root.out")"
	fi
	if want nokey; then
		# A key is always required, on loopback too: refuse to start without one.
		r=0 why=""
		for a in 0.0.0.0 127.0.0.1; do
			"$IMGD" -D "$IMG" --address $a --port 0 >"$OUT/nokey-$a.out" 2>&1 &&
				r=1 why="criu-imgd started on $a without --auth-key"
			grep -q "needs --auth-key" "$OUT/nokey-$a.out" ||
				{ r=1 why="${why:-$(tail -1 "$OUT/nokey-$a.out")}"; }
		done
		[ $r = 0 ] && ok "nokey: criu-imgd refuses to start without a key, on loopback too" ||
			bad nokey "$why"
	fi
fi

# ---- restores through criu-lazyd --image-server (restore-sim checks every byte) ----
sim() { # $1 name, $2 scenario, rest: env for lazyd-remote.sh; expects success
	name=$1 sc=$2
	shift 2
	d=$OUT/r-$name
	mkdir -p "$d"
	env NET_KEY="$key" "$@" timeout 300 "$SIM" --scenario "$sc" \
		--daemon "$ROOT/tests/net/lazyd-remote.sh" \
		--dir "$d" >"$d.out" 2>&1
	_r=$?
	# restore-sim SIGKILLs a daemon that fails: the wrapper's own cleanup did not run then.
	for f in "$d/imgd.pid" "$d/imgd-b.pid"; do
		[ -f "$f" ] && stop_server "$(cat "$f")" "$d/stop.err"
	done
	return $_r
}

if ! $root; then
	skipped restores "not root (userfaultfd and network namespaces)"
elif ! $remote_lazyd; then
	skipped restores "$why_no_lazyd"
else
	# crash-*: the worker SIGKILLed mid-read from criu-imgd; a new one connects and resumes.
	for sc in seq threads writes fork mremap madvise munmap tree large exit-early drain criu42 \
		daemonize exit-faulting adjacent fork-remap bad-magic truncated short-pages hangup \
		crash-large crash-fork-storm crash-mremap crash-early; do
		want "loopback-$sc" || want loopback || continue
		if sim "lo-$sc" "$sc"; then ok "loopback-$sc"; else bad "loopback-$sc" "$(tail -2 "$OUT/r-lo-$sc.out")"; fi
	done
	if want compress; then
		# zstd on: the memory restore-sim checks byte for byte came compressed (the image is
		# made compressible), and the client decompressed and checked every page.
		if sim compress large SIM_COMPRESSIBLE=1 NET_LAZYD_ARGS="--compress on" &&
			grep -q "zstd on: [1-9][0-9]* frames" "$OUT/r-compress/imgd.log" &&
			grep -q "compressed frames" "$OUT/r-compress/lazyd.log"; then
			ok "compress: restore with --compress on, every byte checked ($(grep -o 'zstd on: [0-9]* frames, [0-9]* of [0-9]* bytes' "$OUT/r-compress/imgd.log" | tail -1))"
		else
			bad compress "$(tail -2 "$OUT/r-compress.out")"
		fi
		# auto on loopback: no link to spare, only CPU: criu-imgd never tries (and sends the
		# pages from the file). Across a veth pair it does: case netns.
		if sim compress-auto-lo large SIM_COMPRESSIBLE=1 NET_LAZYD_ARGS="--compress auto" &&
			grep -q "pages served" "$OUT/r-compress-auto-lo/imgd.log" &&
			! grep -q "zstd auto:" "$OUT/r-compress-auto-lo/imgd.log"; then
			ok "compress-auto-lo: on loopback criu-imgd compressed nothing, not even tried, every byte checked"
		else
			bad compress-auto-lo "$(grep -o 'zstd auto: .*' "$OUT/r-compress-auto-lo/imgd.log" | head -1); $(tail -2 "$OUT/r-compress-auto-lo.out")"
		fi
		# --compress off talks to criu-imgd as an older client: nothing compressed.
		if sim compress-off seq SIM_COMPRESSIBLE=1 NET_LAZYD_ARGS="--compress off" &&
			! grep -q "zstd \(on\|auto\):" "$OUT/r-compress-off/imgd.log"; then
			ok "compress-off: no compression asked, none used"
		else
			bad compress-off "$(tail -2 "$OUT/r-compress-off.out")"
		fi
	fi
	if want key; then
		sim key seq NET_KEY="$key" && grep -q "authenticated" "$OUT/r-key/imgd.log" &&
			ok "key: restore with --auth-key" || bad key "$(tail -2 "$OUT/r-key.out")"
	fi
	if want restart; then
		# Kill -9 criu-imgd mid-restore and start it again: the restore completes, memory exact.
		if sim restart large NET_RESTART=0.02 NET_LAZYD_ARGS="--prefetch-window 1" &&
			[ -f "$OUT/r-restart/imgd-restart.log" ] &&
			grep -q "reconnects" "$OUT/r-restart/lazyd.log"; then
			ok "restart: $(grep -o '[0-9]* reconnects' "$OUT/r-restart/lazyd.log") after kill -9 and restart of criu-imgd"
		else
			bad restart "$(tail -2 "$OUT/r-restart.out")"
		fi
	fi
	if want unavailable; then
		# The server dies for good: the tasks are killed, never served zeros.
		sim gone large NET_KILL=0.02 NET_LAZYD_ARGS="--prefetch-window 1 --source-retries 3"
		if grep -q "killing the task" "$OUT/r-gone/lazyd.log" &&
			grep -q "signal 9" "$OUT/r-gone.out" && ! grep -qi "mismatch\|wrong byte" "$OUT/r-gone.out"; then
			ok "unavailable: tasks killed with a clear log line when criu-imgd stays away"
		else
			bad unavailable "$(tail -2 "$OUT/r-gone.out")"
		fi
	fi
	if want failover; then
		# Two servers of one image (--image-server A,B): A dies for good mid-stream, the
		# restore goes on through B, every byte checked by restore-sim.
		d=$OUT/r-failover
		if sim failover large NET_FAILOVER=1 NET_KILL=0.02 NET_LAZYD_ARGS="--prefetch-window 1" &&
			grep -q "failed over from" "$d/lazyd.log" &&
			[ "$(jq -r .source_failovers "$d/stats.json" 2>/dev/null)" -ge 1 ] 2>/dev/null &&
			[ "$(jq -r .source_pages "$d/stats.json")" = "$(jq -r .pages_total "$d/stats.json")" ]; then
			ok "failover: A killed mid-restore, completed through B, each page received once ($(grep -o 'first pages [0-9.]* ms after' "$d/lazyd.log" | head -1) A failed)"
		else
			bad failover "$(tail -2 "$d.out"; grep -m2 'Error\|failed over' "$d/lazyd.log")"
		fi
	fi
	if want failover-hang; then
		# A hangs (SIGSTOP: its connections stay open, nothing comes): after --source-timeout
		# without a byte the stream's reads and the faults go to B.
		d=$OUT/r-hang
		if sim hang large NET_FAILOVER=1 NET_STOP=0.02 \
			NET_LAZYD_ARGS="--prefetch-window 1 --source-timeout 1000" &&
			grep -q "failed over from" "$d/lazyd.log" &&
			[ "$(jq -r .source_pages "$d/stats.json")" = "$(jq -r .pages_total "$d/stats.json")" ]; then
			ok "failover-hang: A hung mid-restore, completed through B after --source-timeout, each page once ($(grep -o 'first pages [0-9.]* ms after' "$d/lazyd.log" | head -1) A was given up)"
		else
			bad failover-hang "$(tail -2 "$d.out"; grep -m3 'Error\|failed over\|nothing received' "$d/lazyd.log")"
		fi
	fi
	if want failover-heal; then
		# A serves a damaged page (its dump-time checksums catch it, LW_E_CHECKSUM) on the
		# stream's path; B holds a good copy with the same checksums: the read goes to B.
		d=$OUT/r-heal
		if sim heal drain NET_SUMS=1 NET_CORRUPT=1 NET_FAILOVER=good &&
			grep -q "failed over from" "$d/lazyd.log"; then
			ok "failover-heal: a page damaged on A is read from B, every byte checked"
		else
			bad failover-heal "$(tail -2 "$d.out"; grep -m3 'Error\|failed over' "$d/lazyd.log")"
		fi
	fi
	for fo in nosums rot; do
		# A has dump-time checksums; B a copy of the same dump without them (nosums), or
		# one whose page data differs, checksums made from it (rot): when A dies, B is
		# refused and the tasks are killed, never given B's pages.
		want "failover-$fo" || continue
		d=$OUT/r-$fo
		sim "$fo" large NET_SUMS=1 NET_FAILOVER=$fo NET_KILL=0.02 \
			NET_LAZYD_ARGS="--prefetch-window 1 --source-retries 1"
		if grep -q "no dump-time checksums\|holds other page data" "$d/lazyd.log" &&
			grep -q "killing the task" "$d/lazyd.log" &&
			! grep -q "failed over from" "$d/lazyd.log" &&
			! grep -qi "mismatch\|wrong byte\|wrong memory" "$d.out"; then
			ok "failover-$fo: $(grep -o 'has no dump-time checksums\|holds other page data' "$d/lazyd.log" | head -1): refused, tasks killed"
		else
			bad "failover-$fo" "$(tail -2 "$d.out"; grep -m3 'Error\|failed over' "$d/lazyd.log")"
		fi
	done
	if want failover-liar; then
		# B serves another dump under the same id (same sizes, other core image and pages):
		# when A dies, B is refused by its fingerprint and the tasks are killed, never
		# given B's pages.
		d=$OUT/r-liar
		sim liar large NET_FAILOVER=liar NET_KILL=0.02 \
			NET_LAZYD_ARGS="--prefetch-window 1 --source-retries 1"
		if grep -q "serves another image as" "$d/lazyd.log" &&
			grep -q "killing the task" "$d/lazyd.log" &&
			! grep -q "failed over from" "$d/lazyd.log" &&
			! grep -qi "mismatch\|wrong byte" "$d.out"; then
			ok "failover-liar: a server of another dump under the same id is refused, tasks killed"
		else
			bad failover-liar "$(tail -2 "$d.out"; grep -m2 'Error' "$d/lazyd.log")"
		fi
	fi
	if want flip; then
		# A bit flipped on the wire: the checksum catches it, the page is fetched again.
		if sim flip large NET_FLIP=5 && grep -q "fails its checksum" "$OUT/r-flip/lazyd.log"; then
			ok "flip: a corrupted payload on the wire is detected and re-fetched"
		else
			bad flip "$(tail -2 "$OUT/r-flip.out")"
		fi
	fi
	if want twice; then
		# No page crosses the wire twice: the pages criu-lazyd received (its stats file; an
		# all-zero page comes as a bit, not sent) against the images' lazy data pages, and
		# against what criu-imgd says it served (its session lines).
		for sc in seq threads fork fork-storm fork-remap; do
			d=$OUT/r-twice-$sc
			sim "twice-$sc" "$sc"
			r=$?
			total=$(jq -r .pages_total "$d/stats.json" 2>/dev/null)
			got=$(jq -r .source_pages "$d/stats.json" 2>/dev/null)
			sent=$(sed -n 's/.* \([0-9]*\) pages served in .*/\1/p' "$d/imgd.log" |
				awk '{ s += $1 } END { print s + 0 }')
			ratio=$(awk -v g="${got:-0}" -v t="${total:-0}" 'BEGIN { if (t > 0) printf "%.3f", g / t; else print "?" }')
			what="$sc: $got pages received for $total lazy data pages (${ratio}x), criu-imgd served $sent"
			if [ $r != 0 ] || [ -z "$got" ] || [ "$got" != "$sent" ]; then
				bad "twice-$sc" "$what; $(tail -1 "$d.out")"
			elif [ "$got" = "$total" ]; then
				ok "twice-$sc: $what"
			else
				bad "twice-$sc" "$what: a page crossed the wire twice (or not at all)"
			fi
		done
	fi
	if want cut; then
		# A relay cuts the connection in the middle of a page, three times: the daemon
		# reconnects and fetches what was in flight again; restore-sim checks every byte.
		if sim cut large NET_CUT=5 NET_CUTS=3 && [ "$(grep -c "cut a connection" "$OUT/r-cut/proxy.log")" = 3 ] &&
			grep -q "reconnects" "$OUT/r-cut/lazyd.log"; then
			ok "cut: $(grep -o '[0-9]* reconnects' "$OUT/r-cut/lazyd.log") after 3 connections cut mid-page by a relay"
		else
			bad cut "$(tail -2 "$OUT/r-cut.out")"
		fi
	fi
	if want corrupt; then
		# A page damaged in the image after its dump-time checksum: the task is killed.
		sim corrupt large NET_SUMS=1 NET_CORRUPT=1
		if grep -q "dump-time checksum" "$OUT/r-corrupt/imgd.log" &&
			grep -q "killing the task" "$OUT/r-corrupt/lazyd.log"; then
			ok "corrupt: a damaged image page is refused by the server and the task killed"
		else
			bad corrupt "$(tail -2 "$OUT/r-corrupt.out")"
		fi
	fi
	if want netns; then
		# Client and server in two namespaces of our own, joined by a veth pair.
		ns_s=lzs$$ ns_c=lzc$$ vs=lzvs$$ vc=lzvc$$
		if ip netns add "$ns_s" && ip netns add "$ns_c" &&
			ip link add "$vs" type veth peer name "$vc" &&
			ip link set "$vs" netns "$ns_s" && ip link set "$vc" netns "$ns_c" &&
			ip -n "$ns_s" addr add 10.251.77.1/30 dev "$vs" &&
			ip -n "$ns_c" addr add 10.251.77.2/30 dev "$vc" &&
			ip -n "$ns_s" link set "$vs" up && ip -n "$ns_c" link set "$vc" up &&
			ip -n "$ns_s" link set lo up && ip -n "$ns_c" link set lo up; then
			d=$OUT/r-netns
			mkdir -p "$d"
			ip netns exec "$ns_c" env NET_SRV_NS="$ns_s" NET_SRV_ADDR=10.251.77.1 \
				NET_KEY="$key" timeout 300 "$SIM" --scenario large \
				--daemon "$ROOT/tests/net/lazyd-remote.sh" --dir "$d" >"$d.out" 2>&1
			r=$?
			[ -f "$d/imgd.pid" ] && stop_server "$(cat "$d/imgd.pid")" "$d/stop.err"
			# Beyond loopback TLS is on by default, on both sides, with nothing configured.
			if [ $r = 0 ] && grep -q "10.251.77.2" "$d/imgd.log" &&
				grep -q "TLS 1.3, PSK" "$d/imgd.log"; then
				ok "netns: 256 MB restore across a veth pair between two namespaces, with a key, TLS 1.3 by default"
			else
				bad netns "$(tail -2 "$d.out")"
			fi
			# auto across the pair, with criu-lazyd's delay window keeping criu-imgd's
			# socket from filling: criu-imgd tries compressing blind (and keeps it or not
			# by what the client then takes).
			d=$OUT/r-compress-auto
			mkdir -p "$d"
			ip netns exec "$ns_c" env NET_SRV_NS="$ns_s" NET_SRV_ADDR=10.251.77.1 \
				NET_KEY="$key" SIM_COMPRESSIBLE=1 NET_LAZYD_ARGS="--compress auto" \
				timeout 300 "$SIM" --scenario large \
				--daemon "$ROOT/tests/net/lazyd-remote.sh" --dir "$d" >"$d.out" 2>&1
			r=$?
			[ -f "$d/imgd.pid" ] && stop_server "$(cat "$d/imgd.pid")" "$d/stop.err"
			if [ $r = 0 ] && grep -q "the socket never full: trying compression" "$d/imgd.log"; then
				ok "compress-auto: across a veth pair criu-imgd probed compression blind, every byte checked ($(grep -o 'compressing delivers [0-9]* MB/s of pages, raw [0-9]*: o[nf]*' "$d/imgd.log" | head -1))"
			else
				bad compress-auto "$(tail -2 "$d.out")"
			fi
		else
			skipped netns "cannot create namespaces and a veth pair"
		fi
		ip netns del "$ns_s" 2>/dev/null
		ip netns del "$ns_c" 2>/dev/null
	fi
fi

# ---- restore by image id: metadata files (META connections) ----
if want metafetch && [ -d "$OUT/img-seq/img" ]; then
	M=$OUT/meta-src/img
	rm -rf "$OUT/meta-src" "$OUT/meta-dst"
	mkdir -p "$M" "$OUT/meta-dst"
	cp -a "$OUT/img-seq/img/." "$M/"
	# Hostile entries in the served dir: never listed, never served.
	echo secret >"$OUT/meta-secret"
	ln -s "$OUT/meta-secret" "$M/evil-link.img"
	mkfifo "$M/evil-fifo.img"
	mkdir "$M/evil-dir.img"
	echo log >"$M/dump.log"
	start_imgd meta -D "$M" --auth-key "$key"
	d=$OUT/meta-dst
	r=0 why=""
	"$T/metafetch" fetch "127.0.0.1:$port" img "$d" "$key" >"$OUT/meta-fetch.out" 2>&1 ||
		{ r=1 why="fetch: $(tail -1 "$OUT/meta-fetch.out")"; }
	want_names=$(cd "$M" && for f in *; do
		[ -f "$f" ] && [ ! -L "$f" ] || continue
		case $f in pages-*.img.* | *.log) continue ;; esac
		echo "$f"
	done)
	got_names=$(cd "$d" && ls -A)
	[ "$want_names" = "$got_names" ] || { r=1 why="${why:-names differ: $(echo $got_names)}"; }
	for f in $want_names; do
		case $f in pages-*) continue ;; esac
		cmp -s "$M/$f" "$d/$f" || { r=1 why="${why:-$f differs}"; }
	done
	# Pages files: the same size, what was sent equal to the source, the lazy data not sent
	# (holes: at most the non-lazy part of the file is allocated).
	for f in "$M"/pages-*.img; do
		b=$(basename "$f")
		[ "$(stat -c %s "$f")" = "$(stat -c %s "$d/$b" 2>/dev/null)" ] ||
			{ r=1 why="${why:-$b: size differs}"; }
		python3 "$ROOT/tests/net/sparse-cmp.py" "$f" "$d/$b" >"$OUT/meta-sparse.out" 2>&1 ||
			{ r=1 why="${why:-$b: $(tail -1 "$OUT/meta-sparse.out")}"; }
	done
	[ -n "$want_names" ] || { r=1 why="${why:-nothing to fetch}"; }
	# Again into the same dir: refused before anything is written, the dir unchanged.
	before=$(cd "$d" && ls -A | md5sum)
	if "$T/metafetch" fetch "127.0.0.1:$port" img "$d" "$key" >"$OUT/meta-again.out" 2>&1 ||
		! grep -q "exists in the images dir: not overwritten" "$OUT/meta-again.out"; then
		r=1 why="${why:-a second fetch was not refused: $(tail -1 "$OUT/meta-again.out")}"
	fi
	[ "$before" = "$(cd "$d" && ls -A | md5sum)" ] || { r=1 why="${why:-the dir changed}"; }
	# No key, a wrong key: nothing.
	mkdir -p "$OUT/meta-nokey"
	"$T/metafetch" fetch "127.0.0.1:$port" img "$OUT/meta-nokey" >"$OUT/meta-nokey.out" 2>&1 &&
		{ r=1 why="${why:-fetched without a key}"; }
	"$T/metafetch" fetch "127.0.0.1:$port" img "$OUT/meta-nokey" "$badkey" \
		>>"$OUT/meta-nokey.out" 2>&1 && { r=1 why="${why:-fetched with a wrong key}"; }
	[ -z "$(ls -A "$OUT/meta-nokey")" ] || { r=1 why="${why:-files left without a key}"; }
	# Hostile requests: refused by the server, which serves on.
	for n in ../meta-secret evil-link.img evil-fifo.img evil-dir.img pages-1.img.xxh64 \
		pages-4000000000.img dump.log sub/x .hidden no-such.img; do
		"$T/metafetch" raw-get "127.0.0.1:$port" img "$n" "$key" >"$OUT/meta-raw.out" 2>&1 ||
			{ r=1 why="${why:-META_GET '$n' not refused: $(tail -1 "$OUT/meta-raw.out")}"; }
	done
	kill -0 "$ipid" 2>/dev/null || { r=1 why="${why:-criu-imgd died}"; }
	stop_imgd
	# Hostile names from a server: refused by the client, nothing written.
	for n in ../evil.img a/b.img .hidden pages-1.img.xxh64 x..y; do
		rm -rf "$OUT/meta-fake" && mkdir -p "$OUT/meta-fake"
		"$T/metafetch" fake-server "$n" "$OUT/meta-fake" "$key" >"$OUT/meta-fake.out" 2>&1 ||
			{ r=1 why="${why:-name '$n' from a server: $(tail -1 "$OUT/meta-fake.out")}"; }
	done
	[ $r = 0 ] && ok "metafetch: $(echo "$want_names" | wc -l) metadata files fetched by image id and equal; second fetch, no key, 10 hostile requests and 5 hostile names refused" ||
		bad metafetch "$why"
fi

# ---- publish: uploads into criu-imgd --root --accept-uploads (key required) ----
if want upload && [ -d "$OUT/img-seq/img" ]; then
	U=$OUT/up-root
	rm -rf "$U" "$OUT/up-src" "$OUT/up-dst"
	mkdir -p "$U" "$OUT/up-dst"
	cp -a "$OUT/img-seq/img" "$OUT/up-src"
	echo log >"$OUT/up-src/dump.log"
	ln -s /etc/passwd "$OUT/up-src/evil-link.img"
	r=0 why=""
	# Without the publishers' key, criu-imgd refuses the option.
	"$IMGD" --root "$U" --accept-uploads --auth-key "$key" --port 0 >"$OUT/up-nokey.out" 2>&1 &&
		{ r=1 why="--accept-uploads started without --upload-key"; }
	grep -q "needs --root DIR and --upload-key" "$OUT/up-nokey.out" ||
		{ r=1 why="${why:-no message for --accept-uploads without --upload-key}"; }
	start_imgd up "--root" "$U" --accept-uploads --auth-key "$key" --upload-key "$upkey"
	"$T/metafetch" upload "127.0.0.1:$port" job1 "$OUT/up-src" "$upkey" >"$OUT/up.out" 2>&1 ||
		{ r=1 why="${why:-upload: $(tail -1 "$OUT/up.out")}"; }
	for f in "$OUT/up-src"/*; do
		b=$(basename "$f")
		case $b in *.log | evil-link.img) [ ! -e "$U/job1/$b" ] ||
			{ r=1 why="${why:-$b was uploaded}"; }; continue ;; esac
		cmp -s "$f" "$U/job1/$b" || { r=1 why="${why:-$b differs after the upload}"; }
	done
	# The same id again: refused, the image unchanged; no key, a wrong key: refused.
	"$T/metafetch" upload "127.0.0.1:$port" job1 "$OUT/up-src" "$upkey" >"$OUT/up-again.out" 2>&1 &&
		{ r=1 why="${why:-a second upload of job1 was taken}"; }
	grep -q "exists: not replaced" "$OUT/up-again.out" ||
		{ r=1 why="${why:-second upload: $(tail -1 "$OUT/up-again.out")}"; }
	"$T/metafetch" upload "127.0.0.1:$port" job2 "$OUT/up-src" >"$OUT/up-nok.out" 2>&1 &&
		{ r=1 why="${why:-uploaded without a key}"; }
	"$T/metafetch" upload "127.0.0.1:$port" job2 "$OUT/up-src" "$badkey" >>"$OUT/up-nok.out" 2>&1 &&
		{ r=1 why="${why:-uploaded with a wrong key}"; }
	"$T/metafetch" upload "127.0.0.1:$port" job2 "$OUT/up-src" "$key" >>"$OUT/up-nok.out" 2>&1 &&
		{ r=1 why="${why:-uploaded with the readers' key}"; }
	# Hostile names and ids: refused, nothing left below the root.
	for n in ../evil.img a/b.img .hidden x.log "x..y"; do
		"$T/metafetch" raw-upload "127.0.0.1:$port" job3 "$n" "$upkey" >"$OUT/up-raw.out" 2>&1 ||
			{ r=1 why="${why:-upload of '$n' not refused: $(tail -1 "$OUT/up-raw.out")}"; }
	done
	for id in .upload-job1.1 ../x "a/b"; do
		"$T/metafetch" raw-upload "127.0.0.1:$port" "$id" core-1.img "$upkey" >"$OUT/up-raw.out" 2>&1 ||
			{ r=1 why="${why:-upload as '$id' not refused: $(tail -1 "$OUT/up-raw.out")}"; }
	done
	# A valid file but no image (no inventory.img): refused at the end, nothing published.
	"$T/metafetch" raw-upload "127.0.0.1:$port" job4 core-1.img "$upkey" >"$OUT/up-raw.out" 2>&1 ||
		{ r=1 why="${why:-an upload without inventory.img was published}"; }
	sleep 0.2
	left=$(cd "$U" && ls -A | tr '\n' ' ')
	[ "$left" = "job1 " ] || { r=1 why="${why:-left below the root: $left}"; }
	# And the uploaded image restores by id: fetch its metadata from the same server.
	mkdir -p "$OUT/up-dst"
	"$T/metafetch" fetch "127.0.0.1:$port" job1 "$OUT/up-dst" "$key" >"$OUT/up-fetch.out" 2>&1 ||
		{ r=1 why="${why:-fetch of the uploaded image: $(tail -1 "$OUT/up-fetch.out")}"; }
	kill -0 "$ipid" 2>/dev/null || { r=1 why="${why:-criu-imgd died}"; }
	stop_imgd
	# Without --accept-uploads: refused.
	start_imgd up2 --root "$U" --auth-key "$key"
	"$T/metafetch" upload "127.0.0.1:$port" job5 "$OUT/up-src" "$upkey" >"$OUT/up-off.out" 2>&1 &&
		{ r=1 why="${why:-an upload was taken without --accept-uploads}"; }
	stop_imgd
	[ -e "$U/job5" ] && { r=1 why="${why:-job5 exists}"; }
	[ $r = 0 ] && ok "upload: an image published into --root and fetched back by id; same id, no key, bad key, the readers' key, no --accept-uploads, 8 hostile names and ids, an incomplete image refused, nothing left" ||
		bad upload "$why"
fi

# ---- TLS: PSK, X.509, refusals, a bit flipped after the handshake, throughput (tests/net/tls.sh) ----
if want tls; then
	if ! [ -d "$OUT/img-large/img" ]; then
		skipped tls "no image (restore-sim --images-only failed)"
	elif sh "$ROOT/tests/net/tls.sh" "$B" "$OUT/img-large/img" "$key" "$OUT/tls" \
		>"$OUT/tls.out" 2>&1; then
		ok "tls: $(tail -1 "$OUT/tls.out"); $(grep -o 'throughput.*' "$OUT/tls.out")"
	else
		bad tls "$(grep FAIL "$OUT/tls.out" | head -3) $(tail -1 "$OUT/tls.out")"
	fi
fi

# ---- security: the attacks of the security issue, played by nobody (tests/net/security.sh) ----
if want security; then
	if ! $root; then
		skipped security "not root (setpriv, chown)"
	elif sh "$ROOT/tests/net/security.sh" "$B" >"$OUT/security.out" 2>&1; then
		ok "security: $(tail -1 "$OUT/security.out")"
	else
		bad security "$(grep FAIL "$OUT/security.out" | head -3) $(tail -1 "$OUT/security.out")"
	fi
fi

say "net: $pass passed, $fail failed, $skip skipped (logs in $OUT)"
# The restores leave about 6 GB of image copies: a passing run keeps only its logs, so that two
# builds (plain and sanitized) do not fill the disk under the Ceph mon of the next suite.
[ $fail = 0 ] && find "$OUT" -name '*.img' -type f -size +64k -delete
[ $fail = 0 ]
