#!/bin/sh
# vmrun.sh SCRIPT RESULTS_DIR [ARGS...]
#
# Boot Debian's packaged kernel under qemu (TCG, no KVM) with this machine's root shared
# read-only over 9p, run SCRIPT as root (`sh SCRIPT ARGS...`) in a chroot of it, and exit with
# SCRIPT's exit code.
#   - the project tree (VMRUN_SHARE, default: the repo this file is in) is shared read-write at
#     the same absolute path, so build/ outputs are visible in the guest;
#   - RESULTS_DIR is shared read-write and mounted at /tmp/results in the guest
#     (the script also gets it as $VMRUN_RESULTS); the guest's /tmp and /run are tmpfs;
#   - SCRIPT's stdout+stderr go to RESULTS_DIR/guest.log, the serial console to
#     RESULTS_DIR/console.log;
#   - the whole run is bounded by VMRUN_TIMEOUT seconds (default 600).
# Exit: SCRIPT's code; 124 on timeout; 125 if the guest did not finish for another reason.
# Env: VMRUN_KVER (kernel version, default: newest /boot/vmlinuz-*-amd64), VMRUN_MEM (MB,
# default 3072), VMRUN_SMP (default 2), VMRUN_TIMEOUT, VMRUN_PASSENV (names of variables to
# export to SCRIPT).
set -eu

die() { echo "vmrun: $*" >&2; exit 125; }
[ $# -ge 2 ] || die "usage: vmrun.sh SCRIPT RESULTS_DIR [ARGS...]"
script=$(readlink -f "$1") || die "no script $1"
[ -f "$script" ] || die "no script $1"
mkdir -p "$2"
res=$(readlink -f "$2")
shift 2

here=$(cd "$(dirname "$0")" && pwd)
share=$(readlink -f "${VMRUN_SHARE:-$here/../..}")

if [ -n "${VMRUN_KVER:-}" ]; then
	kver=$VMRUN_KVER
else
	kver=$(ls /boot | sed -n 's/^vmlinuz-\(.*-amd64\)$/\1/p' | sort -V | tail -1)
fi
kimg=/boot/vmlinuz-$kver
M=/lib/modules/$kver/kernel
[ -n "$kver" ] && [ -f "$kimg" ] || die "no Debian kernel in /boot (apt-get install linux-image-amd64)"
[ -d "$M" ] || die "no modules in $M"
command -v qemu-system-x86_64 >/dev/null || die "qemu-system-x86_64 missing (qemu-system-x86)"
command -v cpio >/dev/null || die "cpio missing"
bb=$(command -v busybox) || die "busybox missing (busybox-static)"

work=$(mktemp -d /tmp/vmrun.XXXXXX)
trap 'rm -rf "$work"' EXIT INT TERM
r=$work/root
mkdir -p "$r/bin" "$r/proc" "$r/sys" "$r/dev" "$r/mnt" "$r/mods"
cp "$bb" "$r/bin/busybox"

# virtio + 9p modules, in load order (some may be built in: then they are simply absent).
mods=""
for m in drivers/virtio/virtio_ring drivers/virtio/virtio drivers/virtio/virtio_pci_modern_dev \
	drivers/virtio/virtio_pci_legacy_dev drivers/virtio/virtio_pci net/9p/9pnet \
	net/9p/9pnet_virtio fs/netfs/netfs fs/fscache/fscache fs/9p/9p; do
	b=$(basename "$m")
	if [ -f "$M/$m.ko" ]; then
		cp "$M/$m.ko" "$r/mods/$b.ko"
	elif [ -f "$M/$m.ko.xz" ]; then
		xz -dc "$M/$m.ko.xz" >"$r/mods/$b.ko"
	else
		continue
	fi
	mods="$mods $b"
done

cp "$script" "$r/guest.sh"
# Arguments, quoted for sh.
q=""
for a in "$@"; do
	q="$q '$(printf '%s' "$a" | sed "s/'/'\\\\''/g")'"
done

# Environment variables named in VMRUN_PASSENV, quoted for sh.
envs=""
for v in ${VMRUN_PASSENV:-}; do
	eval "val=\${$v-}"
	envs="$envs
export $v='$(printf '%s' "$val" | sed "s/'/'\\\\''/g")'"
done

# Runs inside the chroot: per-boot setup, then the script.
cat >"$r/guest-wrap.sh" <<EOF
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root VMRUN_RESULTS=/tmp/results VMRUN_KVER=$kver LANG=C$envs
ip link set lo up
for m in tun veth nf_tables nfnetlink unix_diag inet_diag tcp_diag udp_diag netlink_diag af_packet_diag; do
	modprobe \$m 2>/dev/null || echo "vmrun: modprobe \$m failed" >/dev/console
done
cut -d" " -f1 /proc/uptime >/tmp/results/boot-uptime
cd /tmp
sh /tmp/guest.sh$q >/tmp/results/guest.log 2>&1
echo \$? >/tmp/results/rc
EOF

cat >"$r/init" <<EOF
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
for m in $mods; do insmod /mods/\$m.ko || echo "init: insmod \$m failed"; done
o=trans=virtio,version=9p2000.L,msize=512000
mount -t 9p -o \$o,ro,cache=loose hostroot /mnt || { echo "init: cannot mount host root"; poweroff -f; }
mount -t proc proc /mnt/proc; mount -t sysfs sys /mnt/sys; mount -t devtmpfs dev /mnt/dev
mkdir -p /mnt/dev/pts; mount -t devpts -o newinstance,ptmxmode=0666 devpts /mnt/dev/pts
ln -sf pts/ptmx /mnt/dev/ptmx 2>/dev/null
mount -t tmpfs tmp /mnt/tmp; mount -t tmpfs run /mnt/run
mkdir -p /mnt/tmp/results; mount -t 9p -o \$o results /mnt/tmp/results
mkdir -p /mnt$share 2>/dev/null; mount -t 9p -o \$o,cache=mmap share /mnt$share
cp /guest.sh /guest-wrap.sh /mnt/tmp/
echo "init: running guest script"
chroot /mnt /bin/sh /tmp/guest-wrap.sh
sync
echo "init: guest script done, rc=\$(cat /mnt/tmp/results/rc 2>/dev/null)"
poweroff -f
EOF
chmod +x "$r/init"
(cd "$r" && find . | cpio -o -H newc 2>/dev/null) >"$work/initrd.cpio"

rm -f "$res/rc"
rc=0
timeout "${VMRUN_TIMEOUT:-600}" qemu-system-x86_64 -accel tcg,thread=multi -cpu max \
	-m "${VMRUN_MEM:-3072}" -smp "${VMRUN_SMP:-2}" \
	-kernel "$kimg" -initrd "$work/initrd.cpio" \
	-append "console=ttyS0 ${VMRUN_QUIET-quiet} panic=-1 rdinit=/init" \
	-nographic -no-reboot -nodefaults -serial stdio -display none \
	-virtfs local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap \
	-virtfs "local,path=$res,mount_tag=results,security_model=none" \
	-virtfs "local,path=$share,mount_tag=share,security_model=none,multidevs=remap" \
	</dev/null >"$res/console.log" 2>&1 || rc=$?
if [ ! -f "$res/rc" ]; then
	if [ "$rc" = 124 ]; then
		echo "vmrun: timed out after ${VMRUN_TIMEOUT:-600}s (see $res/console.log)" >&2
		exit 124
	fi
	echo "vmrun: guest did not finish, qemu rc=$rc (see $res/console.log)" >&2
	exit 125
fi
exit "$(cat "$res/rc")"
