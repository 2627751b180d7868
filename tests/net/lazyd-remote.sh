#!/bin/sh
# A "daemon" for restore-sim that runs criu-lazyd against criu-imgd instead of local images.
# restore-sim calls it as:  lazyd-remote.sh -D IMGDIR -W WORKDIR -o LOG -v4 --status-fd N ...
# It starts criu-imgd on IMGDIR (unless NET_SERVER is given), then runs criu-lazyd with
# --image-server and an EMPTY images dir, so the destination gets nothing but the image id.
# Env:
#   NET_LAZYD      criu-lazyd to run (default build/bin/criu-lazyd)
#   NET_IMGD       criu-imgd to run (default build/bin/criu-imgd)
#   NET_SERVER     HOST:PORT of an imgd already serving (then IMGDIR is not served by us)
#   NET_IMAGE      image id (default: the basename of IMGDIR, i.e. "img")
#   NET_KEY        key file for both sides (required: criu-imgd always needs one)
#   NET_SRV_NS     run criu-imgd in this network namespace, listening on NET_SRV_ADDR
#   NET_SRV_ADDR   imgd listen address (default 127.0.0.1), also what lazyd dials
#   NET_RESTART    seconds into the background stream after which criu-imgd is killed
#                  (SIGKILL) and started again on the same port
#   NET_KILL       seconds into the background stream after which criu-imgd is killed for good
#   NET_STOP       the same, but criu-imgd is stopped (SIGSTOP: hung, its connections open)
#   NET_SUMS       1: write the dump-time checksum index before serving
#   NET_CORRUPT    1: after the index is written, damage one lazy page in the image
#   NET_FLIP       N: relay through flipproxy, which flips a bit in the N-th page payload
#   NET_CUT        N: relay through flipproxy, which cuts the connection in the N-th page
#                  payload (NET_CUTS times in all, default 1)
#   NET_FAILOVER   1: a second criu-imgd (B) serves a copy of IMGDIR, and criu-lazyd gets
#                  both (--image-server A,B; with NET_KILL, A dies for good mid-stream);
#                  liar: B's copy is another dump under the same id (a core image and
#                  every page differ): it must never be used
#                  good: B's copy is taken before NET_SUMS/NET_CORRUPT touch IMGDIR, with
#                  checksums of its own (--make-sums); nosums: the same without checksums;
#                  rot: the same with one lazy page damaged, then its checksums made
#   NET_LAZYD_ARGS extra criu-lazyd arguments
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
. "$ROOT/tests/net/stop.sh"
B=${NET_BUILD:-$ROOT/build}
LAZYD=${NET_LAZYD:-$B/bin/criu-lazyd}
IMGD=${NET_IMGD:-$B/bin/criu-imgd}
imgdir="" workdir="" log="" pidfile="" daemon=0
prev=""
for a in "$@"; do
	case $prev in -D) imgdir=$a ;; -W) workdir=$a ;; -o) log=$a ;; --pidfile) pidfile=$a ;; esac
	case $a in -d | --daemon) daemon=1 ;; esac
	prev=$a
done
[ -n "$imgdir" ] && [ -n "$workdir" ] || { echo "lazyd-remote.sh: need -D and -W" >&2; exit 2; }
run=$(dirname "$imgdir")
addr=${NET_SRV_ADDR:-127.0.0.1}
[ -n "${NET_KEY:-}" ] || { echo "lazyd-remote.sh: NET_KEY (a key file) is required" >&2; exit 2; }
keyarg="--auth-key $NET_KEY"
imgd_pid=""

start_imgd() { # $1: port (0: any)
	portfile=$run/imgd.port
	rm -f "$portfile"
	if [ "${NET_SUMS:-0}" = 1 ] && [ ! -f "$run/.sums" ]; then
		"$IMGD" -D "$imgdir" --make-sums -o "$run/imgd-sums.log" -v4 && : >"$run/.sums"
		if [ "${NET_CORRUPT:-0}" = 1 ]; then
			# The last page of the last lazy data extent of the task with the most lazy
			# pages, as our image reader indexes it (the end of a pages file may hold
			# pages that are not lazy: damage there would go unseen).
			set -- $("$B/tests/host/img-dump" "$imgdir" | jq -r '[.tasks[] | select(.has_mm)]
				| max_by(.lazy_pages) | .pages_id as $id
				| [.extents[] | select((.zero | not) and (.remote | not))] | last
				| "\($id) \(.pages_off + (.end - .start) - 4096)"')
			f=$imgdir/pages-$1.img
			printf '\377\377\377\377' | dd of="$f" bs=1 seek=$(($2 + 2048)) conv=notrunc \
				2>/dev/null
			echo "damaged $f at $(($2 + 2048))" >"$run/corrupted"
		fi
	fi
	if [ -n "${NET_SRV_NS:-}" ]; then
		ip netns exec "$NET_SRV_NS" "$IMGD" -D "$imgdir" --address "$addr" --port "$1" \
			$keyarg -o "$run/imgd.log" -v4 --status-fd 3 3>"$portfile" &
	else
		"$IMGD" -D "$imgdir" --address "$addr" --port "$1" $keyarg -o "$run/imgd.log" -v4 \
			--status-fd 3 3>"$portfile" &
	fi
	imgd_pid=$!
	echo "$imgd_pid" >"$run/imgd.pid"
	i=0
	while [ ! -s "$portfile" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
	port=$(cat "$portfile" 2>/dev/null)
	[ -n "$port" ] || { echo "lazyd-remote.sh: criu-imgd did not start" >&2; return 1; }
}

cleanup() {
	stop_server "$imgd_pid" "$run/stop.err"
	[ -f "$run/imgd-b.pid" ] && stop_server "$(cat "$run/imgd-b.pid")" "$run/stop.err"
	[ -n "${killer:-}" ] && kill "$killer" 2>/dev/null
	[ -n "${proxy:-}" ] && kill "$proxy" 2>/dev/null
	[ -f "$run/imgd.pid" ] && stop_server "$(cat "$run/imgd.pid")" "$run/stop.err"
}
trap cleanup EXIT
trap 'exit 143' TERM INT

case ${NET_FAILOVER:-} in good | nosums | rot) rm -rf "$run/pristine"; cp -a "$imgdir" "$run/pristine" ;; esac
if [ -n "${NET_SERVER:-}" ]; then
	server=$NET_SERVER
else
	start_imgd 0 || exit 2
	server=$addr:$port
	case $addr in *:*) server="[$addr]:$port" ;; esac
fi
if [ -n "${NET_FAILOVER:-}" ]; then
	bdir=$run/b/$(basename "$imgdir")
	rm -rf "$run/b"
	mkdir -p "$run/b"
	case $NET_FAILOVER in
	good | nosums | rot) cp -a "$run/pristine" "$bdir" ;;
	*) cp -a "$imgdir" "$bdir" ;;
	esac
	if [ "$NET_FAILOVER" = rot ]; then
		# The last page of the last lazy data extent of the task with the most lazy pages.
		# (not set --: this script's own arguments are the daemon's)
		at=$("$B/tests/host/img-dump" "$bdir" | jq -r '[.tasks[] | select(.has_mm)]
			| max_by(.lazy_pages) | .pages_id as $id
			| [.extents[] | select((.zero | not) and (.remote | not))] | last
			| "\($id) \(.pages_off + (.end - .start) - 4096)"')
		printf '\377\377\377\377' | dd of="$bdir/pages-${at% *}.img" bs=1 \
			seek=$((${at#* } + 2048)) conv=notrunc 2>/dev/null
	fi
	case $NET_FAILOVER in good | rot) "$IMGD" -D "$bdir" --make-sums -o "$run/imgd-b-sums.log" -v4 ;; esac
	if [ "$NET_FAILOVER" = liar ]; then
		for f in "$bdir"/core-*.img; do printf 'X' | dd of="$f" bs=1 seek=20 conv=notrunc 2>/dev/null; break; done
		for f in "$bdir"/pages-*.img; do head -c "$(stat -c %s "$f")" /dev/urandom >"$f.new" && mv "$f.new" "$f"; done
	fi
	"$IMGD" -D "$bdir" --address 127.0.0.1 --port 0 $keyarg -o "$run/imgd-b.log" -v4 \
		--status-fd 3 3>"$run/imgd-b.port" &
	echo $! >"$run/imgd-b.pid"
	i=0
	while [ ! -s "$run/imgd-b.port" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
	server=$server,127.0.0.1:$(cat "$run/imgd-b.port")
fi
if [ -n "${NET_FLIP:-}${NET_CUT:-}" ]; then
	"$B/tests/net/flipproxy" --to "$server" --nth "${NET_FLIP:-${NET_CUT:-}}" \
		${NET_CUT:+--cut --flips ${NET_CUTS:-1}} --status-fd 3 \
		3>"$run/proxy.port" 2>"$run/proxy.log" &
	proxy=$!
	i=0
	while [ ! -s "$run/proxy.port" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
	server=127.0.0.1:$(cat "$run/proxy.port")
fi
# Wait until the daemon's background stream has started (its log says so), then $1 seconds.
after_start() {
	i=0
	while ! grep -q "background prefetch starts" "$log" 2>/dev/null && [ $i -lt 600 ]; do
		sleep 0.01
		i=$((i + 1))
	done
	sleep "$1"
}
if [ -n "${NET_KILL:-}" ]; then
	( after_start "$NET_KILL"; kill -9 "$(cat "$run/imgd.pid")"
	  date +%s.%N >"$run/imgd-killed-at" ) &
	killer=$!
fi
if [ -n "${NET_STOP:-}" ]; then
	( after_start "$NET_STOP"; kill -STOP "$(cat "$run/imgd.pid")" ) &
	killer=$!
fi
if [ -n "${NET_RESTART:-}" ]; then
	# Kill the server mid-restore and bring it back on the same port.
	( after_start "$NET_RESTART"; kill -9 "$(cat "$run/imgd.pid")"; sleep 0.3
	  echo "restarting criu-imgd" >>"$run/imgd-restart.log"
	  start_imgd "$port" >>"$run/imgd-restart.log" 2>&1; wait ) &
	killer=$!
fi
empty=$run/empty-images
mkdir -p "$empty"
# Replace -D IMGDIR by the empty dir: the daemon must not read the images.
set -- $(for a in "$@"; do [ "$a" = "$imgdir" ] && echo "$empty" || echo "$a"; done)
"$LAZYD" "$@" --image-server "$server" --image "${NET_IMAGE:-$(basename "$imgdir")}" $keyarg \
	${NET_LAZYD_ARGS:-}
rc=$?
if [ "$daemon" = 1 ] && [ "$rc" = 0 ] && [ -n "$pidfile" ]; then
	# criu-lazyd detached (and restore-sim wants us gone): a watcher keeps the
	# server up while the daemon serves, and stops it after.
	case $pidfile in /*) pf=$pidfile ;; *) pf=$workdir/$pidfile ;; esac
	dpid=$(cat "$pf" 2>/dev/null)
	( while [ -n "$dpid" ] && kill -0 "$dpid" 2>/dev/null; do sleep 0.1; done
	  stop_server "$(cat "$run/imgd.pid")" "$run/stop.err" ) </dev/null >/dev/null 2>&1 &
	trap - EXIT
fi
exit $rc
