#!/usr/bin/env bash
# Builds (once) the Debian machine the system tests boot: Debian's cloud kernel, a busybox
# initramfs and a bookworm root with systemd, networkd, NetworkManager and networkd-dispatcher,
# cached under $MULTIHOME_SYSTEM_CACHE (/var/cache/multihome-system-tests) in a directory named
# after this script's hash, so that any change here builds a fresh machine. multihome itself is
# not in it: each test installs the .deb the way a user does. Prints the directory. As root.
set -euo pipefail
cache=${MULTIHOME_SYSTEM_CACHE:-/var/cache/multihome-system-tests}
key=$(sha256sum "$0" | cut -c1-16)
out=$cache/bookworm-$key
mkdir -p "$cache"
# One build at a time: parallel tests wait for the first one's machine.
exec 9>"$cache/lock"
flock 9
if [ -e "$out/root.img" ]; then
  echo "$out"
  exit 0
fi
# Older machines (another hash) are stale: their space goes to this one.
find "$cache" -mindepth 1 -maxdepth 1 -name 'bookworm-*' -exec rm -rf {} +
work=$(mktemp -d /var/tmp/multihome-system-build.XXXXXX)
trap 'rm -rf "$work"' EXIT
# The archive this machine's apt uses (deb822 or one-line sources).
mirror=$(sed -n 's/^URIs: *\([^ ]*\).*/\1/p; s/^deb \(\[[^]]*\] \)\{0,1\}\([^ ]*\) .*/\2/p' /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null | grep -v security | head -n1 || true)
mirror=${mirror:-http://deb.debian.org/debian}

# The kernel: the package linux-image-cloud-amd64 points at, unpacked, never installed here.
kpkg=$(apt-cache depends linux-image-cloud-amd64 | sed -n 's/^ *Depends: \(linux-image-[^ ]*\)$/\1/p' | head -n1)
[ -n "$kpkg" ] || { echo "no linux-image-cloud-amd64 in this machine's apt lists (apt-get update?)" >&2; exit 1; }
(cd "$work" && apt-get download -q -o APT::Sandbox::User=root "$kpkg" >/dev/null)
dpkg-deb -x "$work"/linux-image-*.deb "$work/kernel"
kver=$(ls "$work/kernel/lib/modules")

root=$work/root
debootstrap --variant=minbase \
  --include=systemd,systemd-sysv,dbus,iproute2,udev,kmod,procps,iputils-ping,adduser,xml-core,libpam-systemd,network-manager,networkd-dispatcher,dnsmasq-base \
  bookworm "$root" "$mirror" >"$work/debootstrap.log" 2>&1 || {
  tail -n 40 "$root/debootstrap/debootstrap.log" "$work/debootstrap.log" >&2 || true
  exit 1
}
cp -a "$work/kernel/lib/modules" "$root/lib/"
chroot "$root" depmod "$kver"

echo multihome-vm >"$root/etc/hostname"
printf '/dev/vda / ext4 defaults 0 1\n' >"$root/etc/fstab"
mkdir -p "$root/var/log/journal" # persistent: the previous boot's journal after a reboot
# The NICs by their MAC (the harness sets 52:54:00:00:00:0N): the seed's names.
n=1
for name in eth0 wlan1 wlan0 eth3 eth4; do
  printf '[Match]\nMACAddress=52:54:00:00:00:0%d\n\n[Link]\nName=%s\n' "$n" "$name" >"$root/etc/systemd/network/10-lab-$name.link"
  n=$((n + 1))
done
# networkd is the system's manager at boot; NetworkManager is there for the tests that switch.
chroot "$root" systemctl enable systemd-networkd.service networkd-dispatcher.service >/dev/null 2>&1
chroot "$root" systemctl disable NetworkManager.service NetworkManager-wait-online.service systemd-networkd-wait-online.service >/dev/null 2>&1 || true
chroot "$root" systemctl mask serial-getty@ttyS0.service serial-getty@ttyS1.service getty@tty1.service >/dev/null 2>&1

# The test agent on the second serial port: one base64 line in is one command, run as root;
# its output and exit code come back base64-encoded between markers. Tests only.
cat >"$root/usr/local/sbin/system-test-agent" <<'AGENT'
#!/bin/bash
stty -F /dev/ttyS1 raw -echo 115200
exec </dev/ttyS1 >/dev/ttyS1 2>/dev/null
echo "AGENT READY $(cat /proc/sys/kernel/random/boot_id)"
while IFS= read -r line; do
  out=$(bash -c "$(printf %s "$line" | base64 -d)" 2>&1 </dev/null)
  rc=$?
  printf 'AGENT OUT %s %d\n' "$(printf %s "$out" | base64 -w0)" "$rc"
done
AGENT
chmod 755 "$root/usr/local/sbin/system-test-agent"
cat >"$root/etc/systemd/system/system-test-agent.service" <<'UNIT'
[Unit]
Description=multihome system-test agent (serial port 2)
After=systemd-udev-settle.service dev-ttyS1.device

[Service]
ExecStart=/usr/local/sbin/system-test-agent
Restart=always
RestartSec=1

[Install]
WantedBy=multi-user.target
UNIT
chroot "$root" systemctl enable system-test-agent.service >/dev/null 2>&1
rm -f "$root/etc/machine-id" && touch "$root/etc/machine-id"
chroot "$root" apt-get clean

# initramfs: busybox, the virtio block stack, switch_root to systemd.
ird=$work/initramfs
mkdir -p "$ird/bin" "$ird/dev" "$ird/proc" "$ird/sys" "$ird/newroot" "$ird/modules"
cp /bin/busybox "$ird/bin/busybox"
for m in virtio virtio_ring virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci virtio_blk; do
  f=$(find "$root/lib/modules/$kver" -name "$m.ko*" | head -n1)
  [ -n "$f" ] || { echo "module $m missing from $kver" >&2; exit 1; }
  cp "$f" "$ird/modules/"
  echo "$(basename "$f")" >>"$ird/modules/order"
done
cat >"$ird/init" <<'INIT'
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t devtmpfs devtmpfs /dev
mount -t proc proc /proc
mount -t sysfs sysfs /sys
for m in $(cat /modules/order); do insmod /modules/$m; done
for i in $(seq 1 100); do [ -b /dev/vda ] && break; sleep 0.1; done
mount -o rw /dev/vda /newroot || { echo "initramfs: cannot mount /dev/vda"; poweroff -f; }
umount /proc /sys
mount --move /dev /newroot/dev
exec switch_root /newroot /sbin/init
INIT
chmod 755 "$ird/init"
(cd "$ird" && find . | cpio -o -H newc --quiet | gzip -1) >"$work/initrd.img"

mkdir -p "$out.tmp"
cp "$work/kernel/boot/vmlinuz-$kver" "$out.tmp/vmlinuz"
cp "$work/initrd.img" "$out.tmp/initrd.img"
mkfs.ext4 -q -L root -d "$root" "$out.tmp/root.img" 2G
echo "$kver" >"$out.tmp/kernel-version"
mv "$out.tmp" "$out"
echo "$out"
