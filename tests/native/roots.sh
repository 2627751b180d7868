#!/bin/sh
# Make the native CRIU 4.x roots (shared/notes/native-criu.md): one Debian root per name,
# made with debootstrap from the mirror apt already uses, outside build/ so that `make clean`
# keeps them. Idempotent: a root whose stamp matches its package list is left alone.
#   sh tests/native/roots.sh [NAME...]
# NAME: SUITE (criu, runc, crit) or podman-SUITE (podman with runc and criu), SUITE trixie or
# sid; default: trixie sid podman-trixie podman-sid. Prints one line per root; a root that
# cannot be made is an error naming it. Env: NATIVE_ROOTS (default /var/lib/criu-lazy/roots).
set -eu
DIR=${NATIVE_ROOTS:-/var/lib/criu-lazy/roots}
# criu and runc, what CRIU's network lock and runc need, crit for the compatibility fixtures,
# and the runtime libraries of our binaries (criu-imgd runs there too: runc.sh) and of
# lazy_restore.so (loaded into that criu).
CRIU_PKGS="criu runc iptables python3-pycriu python3-protobuf libprotobuf-c1 libxxhash0
libnl-genl-3-200 libgnutls30t64 libmicrohttpd12t64 libjson-c5 libcurl3t64-gnutls procps iproute2
ca-certificates"
# podman and its runtime, CRIU, CRIU's network lock, and the runtime libraries of criu-lazyd
# and lazy_restore.so (which run in that root).
PODMAN_PKGS="podman conmon runc criu iptables libprotobuf-c1 libxxhash0 libnl-genl-3-200
libmicrohttpd12t64 libjson-c5 procps ca-certificates"

mirror() {
	# The URI apt uses here (never a host name written in the tree).
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -f "$f" ] || continue
		awk '/^URIs:/ { for (i = 2; i <= NF; i++) if ($i !~ /security/) { print $i; exit } }' "$f"
	done | head -1
	grep -hE '^deb ' /etc/apt/sources.list 2>/dev/null | awk '$2 !~ /security/ { print $2; exit }'
}

make_root() {
	name=$1 root=$DIR/$1
	case $name in
	trixie | sid) suite=$name PKGS=$CRIU_PKGS ;;
	podman-trixie | podman-sid) suite=${name#podman-} PKGS=$PODMAN_PKGS ;;
	*) echo "native root $name: unknown (trixie, sid, podman-trixie, podman-sid)" >&2; return 1 ;;
	esac
	stamp="$suite: $(echo $PKGS)"
	if [ -f "$root/.criu-lazy-stamp" ] && [ "$(cat "$root/.criu-lazy-stamp")" = "$stamp" ] &&
		[ -x "$root/usr/sbin/criu" ]; then
		echo "native root $name: present ($root, $(criu_version "$root"))"
		return 0
	fi
	command -v debootstrap >/dev/null ||
		{ echo "native root $name: debootstrap is not installed (make deps)" >&2; return 1; }
	uri=$(mirror | head -1)
	[ -n "$uri" ] || { echo "native root $name: no Debian mirror in apt's sources" >&2; return 1; }
	rm -rf "$root.new"
	mkdir -p "$DIR"
	echo "native root $name: debootstrap $suite into $root (a minute or two)"
	if ! debootstrap --variant=minbase --include="$(echo $PKGS | tr ' ' ,)" \
		"$suite" "$root.new" "$uri" >"$DIR/$name.log" 2>&1; then
		echo "native root $name: debootstrap failed; end of $DIR/$name.log:" >&2
		tail -n 15 "$DIR/$name.log" >&2
		return 1
	fi
	echo "$stamp" >"$root.new/.criu-lazy-stamp"
	rm -rf "$root"
	mv "$root.new" "$root"
	echo "native root $name: made ($root, $(criu_version "$root"))"
}

# criu_version ROOT: what that root's criu says it is, run through the root's own loader.
criu_version() {
	"$1/lib64/ld-linux-x86-64.so.2" --library-path "$1/lib/x86_64-linux-gnu:$1/usr/lib/x86_64-linux-gnu" \
		"$1/usr/sbin/criu" --version 2>&1 | head -1
}

[ $# -gt 0 ] || set -- trixie sid podman-trixie podman-sid
rc=0
for s in "$@"; do
	make_root "$s" || rc=1
done
exit $rc
