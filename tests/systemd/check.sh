#!/bin/sh
# dist/systemd and dist/sysusers.d, offline (no running systemd needed): run from the tree root
# after `make` (sh tests/systemd/check.sh [BUILD_DIR], default build).
#   - `systemd-analyze verify` of criu-imgd.service, alone and with criu-imgd-as-root.conf as a
#     drop-in, prints nothing: ExecStart= rewritten to BUILD_DIR/bin/criu-imgd (verify needs the
#     binary), EnvironmentFile= to dist/systemd/criu-imgd.default, and criu-imgd(8) on MANPATH
#     (verify checks Documentation=man:);
#   - `systemd-analyze security --offline=true` rates both at most 2.0 (of 10);
#   - systemd-sysusers makes the user from dist/sysusers.d/criu-imgd.conf (into a scratch root);
#   - the options of criu-imgd.default (both lines) parse, and the default ones, with the paths
#     moved into a scratch dir, start a criu-imgd that listens (then stopped).
# Prints PASS/FAIL lines and "N passed, N failed".
set -u
cd "$(dirname "$0")/../.."
B=${1:-build}
case $B in /*) ;; *) B=$(pwd)/$B ;; esac
IMGD=$B/bin/criu-imgd
D=$(pwd)/dist
pass=0
fail=0
ok() { pass=$((pass + 1)); echo "PASS: $*"; }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }
T=$(mktemp -d)
pid=
cleanup() {
	[ -n "$pid" ] && kill "$pid" 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT

command -v systemd-analyze >/dev/null || { echo "FAIL: systemd-analyze not found (package systemd)"; exit 1; }
[ -x "$IMGD" ] || { echo "FAIL: $IMGD not built (make)"; exit 1; }
mkdir -p "$T/unit" "$T/man/man8"
sh tests/man/build.sh "$T/man/out" >/dev/null 2>&1 && cp "$T/man/out/criu-imgd.8" "$T/man/man8/" ||
	bad "cannot render criu-imgd(8) (tests/man/build.sh)"
sed -e "s|^ExecStart=/usr/local/bin/criu-imgd |ExecStart=$IMGD |" \
	-e "s|^EnvironmentFile=/etc/default/criu-imgd\$|EnvironmentFile=$D/systemd/criu-imgd.default|" \
	"$D/systemd/criu-imgd.service" >"$T/unit/criu-imgd.service"
grep -q "^ExecStart=$IMGD " "$T/unit/criu-imgd.service" &&
	grep -q "^EnvironmentFile=$D/" "$T/unit/criu-imgd.service" ||
	bad "criu-imgd.service: ExecStart=/usr/local/bin/criu-imgd or EnvironmentFile=/etc/default/criu-imgd not found"

verify() { # $1: what
	out=$(MANPATH=$T/man systemd-analyze verify "$T/unit/criu-imgd.service" 2>&1)
	rc=$?
	if [ $rc -eq 0 ] && [ -z "$out" ]; then ok "systemd-analyze verify: $1"; else bad "systemd-analyze verify: $1: rc $rc: $out"; fi
	sec=$(systemd-analyze security --offline=true --threshold=20 "$T/unit/criu-imgd.service" 2>&1)
	rc=$?
	level=$(echo "$sec" | sed -n 's/.*Overall exposure level for criu-imgd.service: \([0-9.]*\).*/\1/p')
	if [ $rc -eq 0 ] && [ -n "$level" ]; then ok "systemd-analyze security: $1: exposure $level"; else bad "systemd-analyze security: $1: rc $rc, exposure ${level:-?} (at most 2.0)"; fi
}
verify "criu-imgd.service (as user criu-imgd)"
mkdir -p "$T/unit/criu-imgd.service.d"
cp "$D/systemd/criu-imgd-as-root.conf" "$T/unit/criu-imgd.service.d/as-root.conf"
verify "criu-imgd.service + criu-imgd-as-root.conf"

mkdir -p "$T/sysroot/etc"
if out=$(systemd-sysusers --root="$T/sysroot" - <"$D/sysusers.d/criu-imgd.conf" 2>&1) &&
	grep -q '^criu-imgd:x:[0-9]*:[0-9]*:.*:/var/lib/criu-imgd:' "$T/sysroot/etc/passwd"; then
	ok "systemd-sysusers makes the user criu-imgd"
else
	bad "systemd-sysusers: $out"
fi

# The two option lines of criu-imgd.default: each must parse (--help after them ends the parse).
n=0
for line in "$(grep '^CRIU_IMGD_OPTS=' "$D/systemd/criu-imgd.default")" \
	"$(grep '^#CRIU_IMGD_OPTS=' "$D/systemd/criu-imgd.default" | sed 's/^#//')"; do
	n=$((n + 1))
	opts=$(eval "$line"; echo "$CRIU_IMGD_OPTS")
	# shellcheck disable=SC2086
	if [ -n "$opts" ] && out=$("$IMGD" $opts --help 2>&1); then
		ok "criu-imgd.default option line $n parses"
	else
		bad "criu-imgd.default option line $n: $out"
	fi
done

# The default options with their paths in the scratch dir: criu-imgd must start and listen.
mkdir -p "$T/var/lib/criu-imgd" "$T/etc/criu-imgd"
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$T/etc/criu-imgd/read.key"
chmod 600 "$T/etc/criu-imgd/read.key"
opts=$(eval "$(grep '^CRIU_IMGD_OPTS=' "$D/systemd/criu-imgd.default")"; echo "$CRIU_IMGD_OPTS" |
	sed -e "s|/var/lib/criu-imgd|$T/var/lib/criu-imgd|g" -e "s|/etc/criu-imgd|$T/etc/criu-imgd|g" \
	    -e 's|--address 0.0.0.0|--address 127.0.0.2|')
# shellcheck disable=SC2086
"$IMGD" $opts --tls --port 0 --status-fd 3 3>"$T/port" 2>"$T/imgd.log" &
pid=$!
i=0
while [ ! -s "$T/port" ] && kill -0 "$pid" 2>/dev/null && [ $i -lt 50 ]; do
	sleep 0.1
	i=$((i + 1))
done
if [ -s "$T/port" ]; then
	ok "criu-imgd starts with the default options (port $(cat "$T/port"), $(grep -o 'TLS 1.3[^,]*' "$T/imgd.log" | head -n 1))"
else
	bad "criu-imgd does not start with the default options: $(cat "$T/imgd.log")"
fi
kill "$pid" 2>/dev/null
wait "$pid" 2>/dev/null
pid=

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
