#!/bin/sh
# Security tests of criu-lazyd's lazy-pages.socket (run as root). Each test is an attack that
# worked before the daemon checked its peers: an unprivileged user (setpriv nobody) reads a
# root task's memory through the daemon, or makes the daemon kill restored tasks.
#
#   sh tests/security/lpsock.sh [BUILD_DIR]      (default build; LAZYD=PATH tests another daemon)
#
# The attacker is build/tests/host/lps-attack; the "kill" attacks run a restore with
# restore-sim (scenario intruder) and let the attacker in after criu hung up. Prints PASS or
# FAIL per attack and "N passed, N failed"; exits 1 if any failed.
B=${1:-build}
LAZYD=${LAZYD:-$B/bin/criu-lazyd}
SIM=$B/tests/host/restore-sim
ATTACK=$B/tests/host/lps-attack
NOBODY="setpriv --reuid=nobody --regid=nogroup --clear-groups"
pass=0
fail=0

ok() {
	echo "PASS $1"
	pass=$((pass + 1))
}
ko() {
	echo "FAIL $1"
	fail=$((fail + 1))
}

if [ "$(id -u)" != 0 ]; then
	echo "lpsock.sh: run as root (the daemon runs as root, the attacker as nobody)" >&2
	echo "0 passed, 1 failed"
	exit 1
fi
for f in "$LAZYD" "$SIM" "$ATTACK"; do
	[ -x "$f" ] || { echo "lpsock.sh: $f missing: run make first" >&2; echo "0 passed, 1 failed"; exit 1; }
done
LAZYD=$(realpath "$LAZYD")
SIM=$(realpath "$SIM")
ATTACK=$(realpath "$ATTACK")

T=$(mktemp -d /tmp/lpsock-sec.XXXXXX) || exit 1
chmod 755 "$T" # the attacker must reach the socket: only its own mode may stop it
trap 'for p in "$T"/*/lazyd.pid; do [ -f "$p" ] && kill "$(cat "$p")" 2>/dev/null; done; [ -n "$KEEP" ] && echo "kept $T" || rm -rf "$T"' EXIT

# Images of one task (pid 1 in the images) with lazy memory: its first VMA is what the
# attacker asks for.
mkdir -m 755 "$T/images"
"$SIM" --scenario pidns --dir "$T/images" --images-only >"$T/images.out" 2>&1 ||
	{ cat "$T/images.out"; echo "0 passed, 1 failed"; exit 1; }
IMG=$T/images/img
VPID=$(crit show "$IMG/pstree.img" | jq -r '.entries[0].pid')
VSTART=$(crit show "$IMG/mm-$VPID.img" | jq -r '.entries[0].vmas[0].start')
VEND=$(crit show "$IMG/mm-$VPID.img" | jq -r '.entries[0].vmas[0].end')
VPAGES=$(((VEND - VSTART) / 4096))

# start_daemon NAME: criu-lazyd on the images with umask 000, work dir $T/NAME (0755).
start_daemon() {
	mkdir -m 755 "$T/$1"
	(umask 000 && exec "$LAZYD" -D "$IMG" -W "$T/$1" -o "$T/$1/lazyd.log" -v4 -d \
		--pidfile "$T/$1/lazyd.pid") >"$T/$1/out" 2>&1
}

stop_daemon() {
	[ -f "$T/$1/lazyd.pid" ] && kill "$(cat "$T/$1/lazyd.pid")" 2>/dev/null
	return 0
}

# leak NAME [ATTACKER...]: the attacker sends its own uffd with the images' pid.
leak() {
	_n=$1
	shift
	"$@" "$ATTACK" leak "$T/$_n/lazy-pages.socket" "$VPID" "$VSTART" "$VPAGES" 3 >"$T/$_n/attack" 2>&1
}

# 1. The socket is private to the daemon's uid whatever the umask it inherited.
start_daemon mode
m=$(stat -c '%a %U' "$T/mode/lazy-pages.socket" 2>/dev/null)
if [ "$m" = "600 root" ]; then
	ok "socket-mode (umask 000: lazy-pages.socket is 0600 root)"
else
	ko "socket-mode (umask 000: lazy-pages.socket is '$m', want '600 root')"
fi
stop_daemon mode

# 2. nobody sends its own uffd and a root task's pid: the socket must not let it connect.
start_daemon leak
leak leak $NOBODY
if grep -q '^LEAK' "$T/leak/attack"; then
	ko "leak-umask000 ($(cat "$T/leak/attack"))"
else
	ok "leak-umask000 ($(tail -n1 "$T/leak/attack"))"
fi
stop_daemon leak

# 3. The same with the socket opened to all by hand: the daemon itself refuses the peer.
start_daemon peer
chmod 666 "$T/peer/lazy-pages.socket"
leak peer $NOBODY
if grep -q '^LEAK' "$T/peer/attack"; then
	ko "leak-other-uid ($(cat "$T/peer/attack"))"
elif ! grep -q 'refused: not our uid' "$T/peer/lazyd.log"; then
	ko "leak-other-uid (no data, but the daemon's log does not say it refused uid 65534)"
else
	ok "leak-other-uid (the daemon refused the connection of uid 65534)"
fi
stop_daemon peer

# 4. Even from root: a pid that is not the sender's own is refused.
start_daemon forged
leak forged
if grep -q '^LEAK' "$T/forged/attack"; then
	ko "leak-forged-pid (root, first connection: $(cat "$T/forged/attack"))"
elif ! grep -q "pid $VPID: refused" "$T/forged/lazyd.log"; then
	ko "leak-forged-pid (no data, but the daemon's log does not say it refused pid $VPID)"
else
	ok "leak-forged-pid (a forged pid from our own uid is refused)"
fi
stop_daemon forged

# 5. A dir others may write: they could put their own socket there; the daemon refuses it.
mkdir -m 777 "$T/wdir"
if "$LAZYD" -D "$IMG" -W "$T/wdir" -o "$T/wdir.log" -d --pidfile "$T/wdir.pid" \
	>"$T/wdir.out" 2>&1; then
	kill "$(cat "$T/wdir.pid")" 2>/dev/null
	ko "workdir-0777 (the daemon listened in a work dir anyone may write)"
elif grep -q 'lets others replace' "$T/wdir.log"; then
	ok "workdir-0777 (refused: $(grep -o 'work dir: mode [0-7]*' "$T/wdir.log"))"
else
	ko "workdir-0777 (failed without saying why: $(tail -n1 "$T/wdir.log"))"
fi

# intruder NAME COMMAND: a real restore (restore-sim) that hangs up after RSTF, then
# COMMAND SOCKET PID connects (empty: restore-sim itself, our uid). The restore must go on.
intruder() {
	mkdir -m 755 "$T/$1"
	if (umask 000 && SIM_INTRUDER=$2 timeout 120 "$SIM" --scenario intruder \
		--daemon "$LAZYD" --dir "$T/$1") >"$T/$1.out" 2>&1; then
		ok "$3 ($(grep -o 'intruder: .*' "$T/$1.out" | tail -n1))"
	else
		ko "$3: $(grep -E 'FAIL|killed|failed' "$T/$1.out" | head -n3 | tr '\n' ' ')"
		grep -E 'kill|refused' "$T/$1/lazyd.log" 2>/dev/null | head -n5 | sed 's/^/    | /'
	fi
}

# 6. nobody connects after criu hung up (umask 000) and sends garbage.
intruder kill-nobody "$NOBODY $ATTACK inject" "kill-after-hangup-umask000"
# 7. The same with the socket opened to all by hand.
cat >"$T/open-inject.sh" <<EOS
chmod 666 "\$1"
exec $NOBODY $ATTACK inject "\$@"
EOS
intruder kill-open "sh $T/open-inject.sh" "kill-after-hangup-other-uid"
# 8. Our own uid, second connection: refused too (the restore connects once).
intruder kill-same "" "kill-after-hangup-same-uid"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
