#!/bin/sh
# criu-imgd's status socket and Prometheus endpoint, for real:
#   sh tests/metrics/imgd.sh [BUILD_DIR]      (default build; build-san for SANITIZE=1)
# A criu-imgd with --metrics-address and --status-socket serves an image that restore-sim
# wrote to netload's clients (tests/net); then `criu-imgd status` (table, --json checked
# with jq, --watch without a terminal until the server is gone), a user other than root and
# criu-imgd's refused (setpriv, needs root), a real Prometheus (prom-lib.sh) scraping it, and
# /metrics through `promtool check metrics`. Nothing asserts on time: every wait is for a
# state, with a bound only against hanging. Prints PASS/FAIL/SKIP lines and a summary.
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
B=${1:-build}
case $B in /*) ;; *) B=$ROOT/$B ;; esac
IMGD=$B/bin/criu-imgd
NETLOAD=$B/tests/net/netload
SIM=$B/tests/host/restore-sim
OUT=$B/metrics-imgd
. "$ROOT/tests/metrics/prom-lib.sh"
pass=0 fail=0 skip=0
ok() { echo "PASS $1"; pass=$((pass + 1)); }
bad() { echo "FAIL $1${2:+: $2}"; fail=$((fail + 1)); }
skipped() { echo "SKIP $1: $2"; skip=$((skip + 1)); }

for x in "$IMGD" "$NETLOAD" "$SIM"; do
	[ -x "$x" ] || { echo "metrics-imgd: $x missing: run make first"; exit 2; }
done
for t in jq prometheus promtool curl python3; do
	command -v $t >/dev/null || { echo "metrics-imgd: $t not found (make deps)"; exit 2; }
done
rm -rf "$OUT"
mkdir -p "$OUT"
# The socket's dir: one every user may enter, so that the daemon's own uid check is what
# refuses a stranger (below), not only the path.
SD=$(mktemp -d /tmp/imgd-status.XXXXXX)
chmod 755 "$SD"
SOCK=$SD/s.sock
ipid= hold= watch=
cleanup() {
	prom_stop
	for p in $hold $watch $ipid; do kill "$p" 2>/dev/null; done
	rm -rf "$SD"
}
trap cleanup EXIT

# until CMD succeeds, at most $1 tenths of a second (a bound against hanging, not a check)
until_ok() {
	_n=$1
	shift
	while ! "$@" 2>/dev/null; do
		_n=$((_n - 1))
		[ "$_n" -gt 0 ] || return 1
		sleep 0.1
	done
}

mkdir -p "$OUT/img"
if ! "$SIM" --scenario seq --dir "$OUT/img" --images-only >"$OUT/sim.out" 2>&1; then
	echo "metrics-imgd: restore-sim --images-only failed (crit?): $(tail -1 "$OUT/sim.out")"
	exit 2
fi
IMG=$OUT/img/img
key=$OUT/key
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$key"
chmod 600 "$key"
mport=$(free_port)

"$IMGD" -D "$IMG" --auth-key "$key" --port 0 --status-fd 3 --status-socket "$SOCK" \
	--metrics-address "127.0.0.1:$mport" -o "$OUT/imgd.log" -v3 3>"$OUT/port" &
ipid=$!
until_ok 100 test -s "$OUT/port"
port=$(cat "$OUT/port" 2>/dev/null)
[ -n "$port" ] || { echo "FAIL start: $(cat "$OUT/imgd.log")"; exit 1; }
prom_start "$OUT/prom" "127.0.0.1:$mport" || bad prometheus "did not start: $(tail -3 "$OUT/prom/prometheus.log")"

# Traffic: four clients read every page of the image (urgent and bulk connections).
if "$NETLOAD" --server "127.0.0.1:$port" --dir "$IMG" --key "$key" --clients 4 \
	>"$OUT/netload.out" 2>&1; then
	ok "netload: $(cat "$OUT/netload.out")"
else
	bad netload "$(tail -3 "$OUT/netload.out")"
fi
# (each of netload's clients has an urgent and a bulk connection: all accepted)
# A connection that stays open (no handshake yet): a session the status must show.
python3 -c 'import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
time.sleep(60)' "$port" &
hold=$!

has_session() { "$IMGD" status --status-socket "$SOCK" --json | jq -e '.sessions | length >= 1' >/dev/null; }
until_ok 50 has_session
if "$IMGD" status --status-socket "$SOCK" >"$OUT/status.txt" 2>&1 &&
	grep -q '^sessions: 1 ' "$OUT/status.txt" && grep -q 'pages sent [1-9]' "$OUT/status.txt" &&
	grep -q 'connections [1-9][0-9]*: accepted [1-9]' "$OUT/status.txt"; then
	ok "status: the sessions table and the totals"
	sed 's/^/    /' "$OUT/status.txt"
else
	bad status "$(cat "$OUT/status.txt")"
fi
if "$IMGD" status --status-socket "$SOCK" --json >"$OUT/status.json" 2>&1 &&
	jq -e '.sessions[0].peer != null and .sessions[0].class == "none"
		and .totals.pages_sent > 0 and .totals.bytes_sent > 0
		and ([.totals.classes[] | select(.class == "urgent" or .class == "bulk")
		      | .pages_sent] | min > 0)
		and (.totals.connections_by_result[] | select(.name == "accepted") | .value)
		    == .totals.connections - 1
		and .tls == "off" and (.listen | endswith(":'"$port"'"))' \
		"$OUT/status.json" >/dev/null; then
	ok "status --json: sessions, pages sent $(jq .totals.pages_sent "$OUT/status.json") by urgent and bulk connections"
else
	bad "status --json" "$(head -c 600 "$OUT/status.json")"
fi

# Only root and the server's user: a stranger is refused by the socket's mode, and (the
# socket opened to everyone) by the daemon's check of its uid.
if [ "$(id -u)" = 0 ]; then
	r=0 why=""
	nb() { setpriv --reuid 65534 --regid 65534 --clear-groups "$IMGD" status --status-socket "$SOCK"; }
	nb >"$OUT/nobody.out" 2>&1 && { r=1 why="exit 0"; }
	grep -q "only root and the user criu-imgd runs as" "$OUT/nobody.out" || { r=1 why="$why: $(cat "$OUT/nobody.out")"; }
	chmod 666 "$SOCK"
	nb >"$OUT/nobody2.out" 2>&1 && { r=1 why="$why; mode 666: exit 0"; }
	chmod 600 "$SOCK"
	grep -q "only root and the user criu-imgd runs as" "$OUT/nobody2.out" || { r=1 why="$why; mode 666: $(cat "$OUT/nobody2.out")"; }
	grep -q "a client of uid 65534 refused" "$OUT/imgd.log" || { r=1 why="$why; the daemon did not log the refusal"; }
	[ $r = 0 ] && ok "nobody refused (socket mode, then the daemon's uid check): $(head -1 "$OUT/nobody.out")" ||
		bad nobody "$why"
else
	skipped nobody "not root (setpriv)"
fi

# A real Prometheus scrapes it.
if [ -n "${PROM_PID:-}" ] && prom_wait 'up{job="criu-lazy"} == 1' 30 &&
	prom_wait 'sum(criu_imgd_pages_sent_total) > 0' 30; then
	ok "prometheus: up == 1, criu_imgd_pages_sent_total $(prom_query 'sum(criu_imgd_pages_sent_total)'), info $(prom_query 'count(criu_imgd_info{tls="off"})')"
else
	bad prometheus "up $(prom_query 'up'), pages $(prom_query 'sum(criu_imgd_pages_sent_total)'): $(tail -3 "$OUT/prom/prometheus.log")"
fi
if curl -sf "http://127.0.0.1:$mport/metrics" >"$OUT/metrics.txt" &&
	promtool check metrics <"$OUT/metrics.txt" >"$OUT/promtool.out" 2>&1; then
	ok "promtool check metrics: $(grep -c '^# TYPE' "$OUT/metrics.txt") families"
else
	bad promtool "$(cat "$OUT/promtool.out")"
fi

# A second server may not take a --status-socket that answers; none turns it off.
"$IMGD" -D "$IMG" --auth-key "$key" --port 0 --status-socket "$SOCK" -o "$OUT/second.log" \
	>/dev/null 2>&1 && r=1 || r=0
grep -q "another server answers there" "$OUT/second.log" || r=1
[ $r = 0 ] && ok "a second server refuses the socket the first answers on" ||
	bad second "$(tail -2 "$OUT/second.log")"

# --watch without a terminal: a line per refresh, until the server is gone (exit 0).
"$IMGD" status --status-socket "$SOCK" --watch 1 >"$OUT/watch.out" 2>"$OUT/watch.err" &
watch=$!
lines() { [ "$(wc -l <"$OUT/watch.out")" -ge 2 ]; }
until_ok 100 lines
kill "$hold" 2>/dev/null
hold=
kill "$ipid"
wait "$ipid"
irc=$?
ipid=
wait "$watch"
wrc=$?
watch=
if [ $wrc = 0 ] && grep -q ' sessions [0-9]* .*pages_sent [1-9]' "$OUT/watch.out" &&
	grep -q "is gone" "$OUT/watch.err"; then
	ok "status --watch 1: $(wc -l <"$OUT/watch.out") lines, then '$(cat "$OUT/watch.err")'"
else
	bad "status --watch" "rc $wrc: $(cat "$OUT/watch.out" "$OUT/watch.err")"
fi
[ $irc = 0 ] && [ ! -e "$SOCK" ] && ok "criu-imgd stopped (exit 0) and removed its socket" ||
	bad stop "exit $irc, socket left: $(ls "$SOCK" 2>&1)"
"$IMGD" status --status-socket "$SOCK" >"$OUT/gone.out" 2>&1 && r=1 || r=0
grep -q "no criu-imgd answers at $SOCK" "$OUT/gone.out" || r=1
[ $r = 0 ] && ok "status with no server: exit 1: $(cat "$OUT/gone.out")" || bad gone "$(cat "$OUT/gone.out")"

echo "metrics-imgd: $pass passed, $fail failed, $skip skipped"
[ $fail = 0 ]
