#!/bin/sh
# Remake the seed corpus, tests/fuzz/corpus/HARNESS/ (kept in the tree; run by hand, needs crit
# and python3 as `make deps` installs them):
#   fuzz_images       the JSON fixtures (tests/fixtures/images/*) encoded by crit, and the
#                     images made by native CRIU 4.1.1 and 4.2.1 (tests/fixtures/images/native)
#   fuzz_wire_server  what clients send, made by build/fuzz/mkseeds (mkseeds.c)
#   fuzz_wire_client  what a live criu-imgd sends, recorded by fuzz_wire_client-capture while
#                     it runs the harness's own scenarios against it (on 127.0.0.1)
#   fuzz_lrconf       config files like the docs' and the unit tests'
set -eu
cd "$(dirname "$0")/../.."

tests/fuzz/build.sh >/dev/null
make --no-print-directory -s build/bin/criu-imgd
B=build/fuzz
C=tests/fuzz/corpus
T=$(mktemp -d)
PIDS=""
cleanup() {
	for p in $PIDS; do kill "$p" 2>/dev/null || true; done
	rm -rf "$T"
}
trap cleanup EXIT

rm -rf "$C"
mkdir -p "$C/fuzz_images" "$C/fuzz_wire_client" "$C/fuzz_wire_server" "$C/fuzz_lrconf"

# ---- images: one input per dir, "NAME\0CONTENT" parts (fuzz_images.c) ----
pack() { # OUT DIR [PAGES_SPEC]
	python3 - "$@" <<'EOF'
import glob, json, os, re, struct, sys
out, d = sys.argv[1], sys.argv[2]
spec = sys.argv[3] if len(sys.argv) > 3 else None
parts = []
for f in sorted(glob.glob(os.path.join(d, "*.img"))):
    parts.append(os.path.basename(f).encode() + b"\0" + open(f, "rb").read())
pages = {}
if spec and os.path.exists(spec):
    for line in open(spec):
        if line.split():
            i, n = line.split()[:2]
            pages[int(i)] = int(n)
for f in glob.glob(os.path.join(d, "pagemap-*.json")):
    for m in re.finditer(r'"pages_id":\s*(\d+)', open(f).read()):
        pages.setdefault(int(m.group(1)), 1024)
for i, n in sorted(pages.items()):
    parts.append(b"pages-%d.img\0" % i + struct.pack("<I", n))
open(out, "wb").write(b"#LWFUZZ#".join(parts))
EOF
}
for d in tests/fixtures/images/*/; do
	n=$(basename "$d")
	ls "$d"/*.json >/dev/null 2>&1 || continue
	mkdir -p "$T/img-$n"
	for j in "$d"/*.json; do
		crit encode -i "$j" -o "$T/img-$n/$(basename "$j" .json).img"
	done
	cp "$d"/*.json "$T/img-$n/"
	pack "$C/fuzz_images/crit-$n" "$T/img-$n"
done
for d in tests/fixtures/images/native/*/*/; do
	v=$(basename "$(dirname "$d")")
	n=$(basename "$d")
	pack "$C/fuzz_images/native-$v-$n" "$d" "$d/pages"
done

# ---- wire, server side ----
$B/mkseeds "$C/fuzz_wire_server"

# ---- wire, client side: captures from live servers ----
printf 'lazy-wire-fuzzing-key-0123456789' >"$T/key"
printf 'lazy-wire-fuzzing-upload-key-987' >"$T/upkey"
chmod 600 "$T/key" "$T/upkey"
mkdir -p "$T/img" "$T/root/img"
$B/mkseeds --image "$T/img"
$B/mkseeds --image "$T/root/img"
start() { # PORTFILE ARGS...
	pf=$1
	shift
	build/bin/criu-imgd --address 127.0.0.1 --port 0 --auth-key "$T/key" -v0 \
		--status-fd 3 "$@" 3>"$pf" &
	PIDS="$PIDS $!"
	for _ in $(seq 100); do
		[ -s "$pf" ] && break
		sleep 0.1
	done
	[ -s "$pf" ] || {
		echo "mkseeds.sh: criu-imgd did not start" >&2
		exit 1
	}
}
start "$T/port-dir" -D "$T/img"
start "$T/port-root" --root "$T/root" --accept-uploads --upload-key "$T/upkey"
P1=$(head -1 "$T/port-dir")
P2=$(head -1 "$T/port-root")
cap() { # NAME PORT FLAGS
	$B/fuzz_wire_client-capture "127.0.0.1:$2" "$3" "$C/fuzz_wire_client/$1"
}
cap source-img "$P1" 0x0c
cap meta-default "$P1" 0x05
cap upload "$P2" 0x06
cap upload-img "$P2" 0x0e
# frames mode (3): the first connection of the source capture, read frame by frame
python3 - "$C/fuzz_wire_client/source-img" "$C/fuzz_wire_client/frames" <<'EOF'
import sys
d = open(sys.argv[1], "rb").read()
open(sys.argv[2], "wb").write(b"\x0f" + d[1:].split(b"#LWFUZZ#")[0])
EOF

# ---- lrconf ----
L=$C/fuzz_lrconf
printf 'source image-server imgd.example:27027\nimage web-1\nauth-key /etc/criu/lazy.key\nfill auto\nverbosity 3\ntimeout 60\n' >"$L/image-server"
printf '# local images\nsource local\nfill kmod\nlog /var/log/criu-lazyd.log\nlazy always\n' >"$L/local"
printf 'source page-server [fd00::1]:9876\ndaemon "/usr/local/bin/criu-lazyd"\nlazy never\n' >"$L/page-server"
printf 'publish 10.0.0.2:27027\nimage db_2\npublish-key "/etc/criu/pub key"   # quoted\n' >"$L/publish"
printf 'lazy-pages\ntcp-established\n--no-default-config\nrestore\n--lazy-pages\n-D\n/tmp/x\n--config\n/etc/criu/runc.conf\n' >"$L/criu-conf"
printf 'source image-server [::1]:27027\ntls on\ntls-ca /etc/criu/ca.pem\ntls-cert /etc/criu/c.pem\ntls-key /etc/criu/c.key\nauth-key /etc/criu/k\n' >"$L/tls"
printf 'source "image-server" "h:1"\nverbosity 9\n' >"$L/errors"
echo "mkseeds.sh: $(find "$C" -type f | wc -l) seeds, $(cat "$C"/*/* | wc -c) bytes in $C"
