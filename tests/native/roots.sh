#!/bin/sh
# Make the native CRIU 4.x roots (shared/notes/native-criu.md): one Debian root per suite,
# made with debootstrap from the mirror apt already uses, outside build/ so that `make clean`
# keeps them. Idempotent: a root whose stamp matches its package list is left alone.
#   sh tests/native/roots.sh [SUITE...]      (default: trixie sid)
# Prints one line per root; a root that cannot be made is an error naming its suite.
# Env: NATIVE_ROOTS (default /var/lib/criu-lazy/roots).
set -eu
DIR=${NATIVE_ROOTS:-/var/lib/criu-lazy/roots}
# criu and runc, what CRIU's network lock and runc need, crit for the compatibility fixtures,
# and the runtime libraries of our binaries and of lazy_restore.so (loaded into that criu).
PKGS="criu runc iptables python3-pycriu python3-protobuf libprotobuf-c1 libxxhash0 libnl-genl-3-200
libgnutls30t64 procps iproute2 ca-certificates"

mirror() {
	# The URI apt uses here (never a host name written in the tree).
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -f "$f" ] || continue
		awk '/^URIs:/ { for (i = 2; i <= NF; i++) if ($i !~ /security/) { print $i; exit } }' "$f"
	done | head -1
	grep -hE '^deb ' /etc/apt/sources.list 2>/dev/null | awk '$2 !~ /security/ { print $2; exit }'
}

make_root() {
	suite=$1 root=$DIR/$1
	stamp="$suite: $(echo $PKGS)"
	if [ -f "$root/.criu-lazy-stamp" ] && [ "$(cat "$root/.criu-lazy-stamp")" = "$stamp" ] &&
		[ -x "$root/usr/sbin/criu" ]; then
		echo "native root $suite: present ($root, $(criu_version "$root"))"
		return 0
	fi
	command -v debootstrap >/dev/null ||
		{ echo "native root $suite: debootstrap is not installed (make deps)" >&2; return 1; }
	uri=$(mirror | head -1)
	[ -n "$uri" ] || { echo "native root $suite: no Debian mirror in apt's sources" >&2; return 1; }
	rm -rf "$root.new"
	mkdir -p "$DIR"
	echo "native root $suite: debootstrap into $root (a minute or two)"
	if ! debootstrap --variant=minbase --include="$(echo $PKGS | tr ' ' ,)" \
		"$suite" "$root.new" "$uri" >"$DIR/$suite.log" 2>&1; then
		echo "native root $suite: debootstrap failed; end of $DIR/$suite.log:" >&2
		tail -n 15 "$DIR/$suite.log" >&2
		return 1
	fi
	echo "$stamp" >"$root.new/.criu-lazy-stamp"
	rm -rf "$root"
	mv "$root.new" "$root"
	echo "native root $suite: made ($root, $(criu_version "$root"))"
}

# criu_version ROOT: what that root's criu says it is, run through the root's own loader.
criu_version() {
	"$1/lib64/ld-linux-x86-64.so.2" --library-path "$1/lib/x86_64-linux-gnu:$1/usr/lib/x86_64-linux-gnu" \
		"$1/usr/sbin/criu" --version 2>&1 | head -1
}

[ $# -gt 0 ] || set -- trixie sid
rc=0
for s in "$@"; do
	make_root "$s" || rc=1
done
exit $rc
