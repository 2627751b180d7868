#!/bin/sh
# Install every Debian package the project builds, tests and demos with. Idempotent.
set -e
PKGS="build-essential pkg-config git protobuf-c-compiler libprotobuf-c-dev libcriterion-dev
criu qemu-system-x86 linux-image-amd64 linux-headers-amd64 busybox-static cpio kmod
libnl-genl-3-dev libxxhash-dev libcurl4-gnutls-dev libgnutls28-dev libzstd-dev iproute2 python3-protobuf jq clang-format debootstrap clang libclang-rt-14-dev llvm gnutls-bin
scdoc man-db groff-base bsdextrautils systemd libmicrohttpd-dev libjson-c-dev prometheus curl time
ceph-mon ceph-mgr ceph-osd ceph-common radosgw librados-dev uuid-runtime"
missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' ||
		missing="$missing $p"
done
if [ -z "$missing" ]; then
	echo "deps: all packages present"
else
	echo "deps: installing$missing"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q
	apt-get install -y -q --no-install-recommends $missing
fi
# Native CRIU 4.1.1 (trixie) and 4.2.1 (sid) with runc, for make nativetest and make bench.
sh "$(dirname "$0")/native/roots.sh"
