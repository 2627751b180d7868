#!/bin/sh
# Security tests of lazy_restore.so (run as root), with a real CRIU 4.x run natively
# (tests/native/env.sh). CRIU runs as root and the plugin runs a program named by its
# settings, or the criu-lazyd beside it: each test below let root run a program that user
# nobody chose or could change, before the plugin checked who owns them.
#
#   sh tests/security/plugin.sh [BUILD_DIR]    SUITE=sid|trixie (default sid);
#                                              PLUGIN=PATH tests another lazy_restore.so
#
# Every "daemon" here is a script that leaves a marker file: a marker means root ran it.
# Prints PASS or FAIL per case and "N passed, N failed"; exits 1 if any failed.
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
export ROOT
B=${1:-build}
PLUGIN=$(realpath "${PLUGIN:-$B/lib/criu/lazy_restore.so}")
SUITE=${SUITE:-sid}
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
bail() {
	echo "plugin.sh: $*" >&2
	echo "0 passed, 1 failed"
	exit 1
}

[ "$(id -u)" = 0 ] || bail "run as root (CRIU restores as root)"
[ -f "$PLUGIN" ] || bail "$PLUGIN missing: run make first"
. "$ROOT/tests/native/env.sh"
native_env "$SUITE" || bail "no CRIU for $SUITE (make deps makes the roots)"

T=$(mktemp -d /tmp/lr-sec.XXXXXX) || exit 1
chmod 755 "$T"
trap '[ -n "$KEEP" ] && echo "kept $T" || rm -rf "$T"' EXIT

# A dump to restore (CRIU 4.x reads inventory.img before it loads plugins); the restores
# below never get past the plugin's init.
mkdir -m 755 "$T/img" "$T/lib" "$T/bin" "$T/etc"
setsid sleep 600 </dev/null >/dev/null 2>&1 &
criu dump -t $! -D "$T/img" -o dump.log -v4 || { tail -n 5 "$T/img/dump.log"; bail "criu dump failed"; }
cp "$PLUGIN" "$T/lib/lazy_restore.so"

# marker_daemon PATH NAME: a program that leaves $T/marker-NAME and exits.
marker_daemon() {
	printf '#!/bin/sh\ntouch %s/marker-%s\nexit 1\n' "$T" "$2" >"$1"
	chmod 755 "$1"
}

# restore NAME CONF LIBDIR: a lazy restore with the plugin from LIBDIR and settings CONF.
restore() {
	mkdir -m 755 "$T/w-$1"
	(cd "$T/w-$1" && CRIU_LAZY_RESTORE_CONF=$2 timeout 60 criu restore -D "$T/img" -W . \
		--lazy-pages --lib "$3" -o restore.log -v4 >out 2>&1)
}

# expect_refused NAME WHAT CONF [LIBDIR]: the plugin must refuse (its reason names WHAT) and
# run nothing.
expect_refused() {
	restore "$1" "$3" "${4:-$T/lib}"
	_why=$(grep -o 'lazy_restore: Error: refusing.*' "$T/w-$1/restore.log" | head -n1)
	if [ -e "$T/marker-$1" ]; then
		ko "$1 (root ran a program $2: $(grep -o 'lazy_restore: .*' "$T/w-$1/restore.log" | tail -n1))"
	elif [ -z "$_why" ]; then
		ko "$1 (nothing ran, but the plugin did not say it refused: $(grep -m1 Error "$T/w-$1/restore.log"))"
	else
		ok "$1 ($_why)"
	fi
}

# conf NAME LINE... : settings owned by root, 0644, in $T/etc.
conf() {
	_f=$T/etc/$1.conf
	shift
	printf '%s\n' "$@" >"$_f"
	chmod 644 "$_f"
	echo "$_f"
}

# 0. Control: settings and daemon of root's: the plugin runs it (so the refusals below are
#    the plugin's checks, not a broken setup).
marker_daemon "$T/bin/control" control
restore control "$(conf control "daemon $T/bin/control")" "$T/lib"
if [ -e "$T/marker-control" ]; then
	ok "control (root's settings and daemon: the plugin ran it)"
else
	ko "control (the plugin did not run a daemon of root's: $(grep -m1 'lazy_restore: Error' "$T/w-control/restore.log"))"
fi

# 1. Settings owned by nobody, naming a program of root's: nobody picks what root runs.
marker_daemon "$T/bin/conf-nobody" conf-nobody
c=$(conf conf-nobody "daemon $T/bin/conf-nobody")
chown nobody "$c"
expect_refused conf-nobody "named by settings nobody owns" "$c"

# 2. Settings writable by their group.
marker_daemon "$T/bin/conf-group" conf-group
c=$(conf conf-group "daemon $T/bin/conf-group")
chmod 664 "$c"
expect_refused conf-group "named by group-writable settings" "$c"

# 3. Settings of root's in a directory anyone may write (they could replace the file).
mkdir -m 777 "$T/open"
marker_daemon "$T/bin/conf-dir" conf-dir
c=$(conf conf-dir "daemon $T/bin/conf-dir")
mv "$c" "$T/open/conf-dir.conf"
expect_refused conf-dir "named by settings in a world-writable dir" "$T/open/conf-dir.conf"

# 4. The daemon is nobody's.
marker_daemon "$T/bin/daemon-nobody" daemon-nobody
chown nobody "$T/bin/daemon-nobody"
expect_refused daemon-nobody "owned by nobody" "$(conf daemon-nobody "daemon $T/bin/daemon-nobody")"

# 5. The daemon is root's, in a directory of nobody's.
mkdir -m 755 "$T/nbin"
chown nobody "$T/nbin"
marker_daemon "$T/nbin/daemon-dir" daemon-dir
expect_refused daemon-dir "in a dir nobody owns" "$(conf daemon-dir "daemon $T/nbin/daemon-dir")"

# 6. The daemon is a symlink (in root's dir) to nobody's program.
marker_daemon "$T/nbin/daemon-link" daemon-link
chown nobody "$T/nbin/daemon-link"
ln -s "$T/nbin/daemon-link" "$T/bin/daemon-link"
expect_refused daemon-link "behind a symlink, owned by nobody" \
	"$(conf daemon-link "daemon $T/bin/daemon-link")"

# 7. No `daemon`: the criu-lazyd beside the plugin (PREFIX/bin) is nobody's.
mkdir -p "$T/prefix/lib/criu" "$T/prefix/bin"
cp "$PLUGIN" "$T/prefix/lib/criu/lazy_restore.so"
marker_daemon "$T/prefix/bin/criu-lazyd" sibling
chown nobody "$T/prefix/bin/criu-lazyd"
expect_refused sibling "found beside the plugin, owned by nobody" \
	"$(conf sibling "verbosity 2")" "$T/prefix/lib/criu"

# 8. A dump with settings nobody owns that say `publish`: the images (secrets) would go to a
#    server nobody chose. The dump must go on, publishing nothing.
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$T/etc/key"
chmod 600 "$T/etc/key"
c=$(conf publish "publish 127.0.0.1:9" "publish-key $T/etc/key")
chown nobody "$c"
mkdir -m 755 "$T/pub"
setsid sleep 600 </dev/null >/dev/null 2>&1 &
if ! CRIU_LAZY_RESTORE_CONF=$c criu dump -t $! -D "$T/pub" --lib "$T/lib" -o dump.log -v4; then
	ko "publish-nobody (the dump failed: $(grep -m1 'lazy_restore: Error' "$T/pub/dump.log"))"
elif grep -q 'will be published' "$T/pub/dump.log"; then
	ko "publish-nobody (settings nobody owns chose where the images go: $(grep -o 'lazy_restore: .*published.*' "$T/pub/dump.log" | head -n1))"
elif ! grep -q 'refusing settings file' "$T/pub/dump.log"; then
	ko "publish-nobody (nothing published, but the plugin did not say why)"
else
	ok "publish-nobody (dump done, nothing published: $(grep -o 'refusing settings file.*' "$T/pub/dump.log" | head -n1 | cut -c1-120)...)"
fi

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
