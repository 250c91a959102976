#!/usr/bin/env bash
# Builds (once) the Debian machine the system tests boot: Debian's standard kernel (not the cloud
# one: it has mac80211_hwsim, software 802.11 radios), a busybox initramfs and a bookworm root with
# systemd, networkd, NetworkManager, networkd-dispatcher, and hostapd, wpa_supplicant and iw for
# the Wi-Fi tests (tests/system/wifi.rs),
# cached under $MULTIHOME_SYSTEM_CACHE (/var/cache/multihome-system-tests) in a directory named
# after this script's hash and the kernel's package and version, so that a change here or a new
# kernel in Debian's archive builds a fresh machine. multihome itself is
# not in it: each test installs the .deb the way a user does. Prints the directory. As root.
set -euo pipefail
cache=${MULTIHOME_SYSTEM_CACHE:-/var/cache/multihome-system-tests}
mkdir -p "$cache"
# One build at a time: parallel tests wait for the first one's machine.
exec 9>"$cache/lock"
flock 9

# The kernel: the package linux-image-amd64 points at today, unpacked, never installed
# here. The machine is named after this script and that kernel (package and version), so a new
# kernel in the archive builds a new machine even when this script did not change.
meta=linux-image-amd64
kernel() {
  kpkg=$(apt-cache depends $meta 2>/dev/null | sed -n 's/^ *Depends: \(linux-image-[^ ]*\)$/\1/p' | head -n1)
  kversion=$(apt-cache policy "$kpkg" 2>/dev/null | sed -n 's/^ *Candidate: //p')
  [ -n "$kpkg" ] && [ -n "$kversion" ] && [ "$kversion" != "(none)" ]
}
named() {
  key=$( (cat "$0"; echo "$kpkg $kversion") | sha256sum | cut -c1-16)
  out=$cache/bookworm-$key
}
kernel || { echo "no $meta in this machine's apt lists (apt-get update?)" >&2; exit 1; }
named
if [ -e "$out/root.img" ]; then
  echo "$out"
  exit 0
fi
work=$(mktemp -d /var/tmp/multihome-system-build.XXXXXX)
trap 'rm -rf "$work"' EXIT
# Lists older than the archive name a kernel it no longer serves: refresh them once.
if ! (cd "$work" && apt-get download -q -o APT::Sandbox::User=root "$kpkg" >/dev/null 2>&1); then
  apt-get update -qq
  kernel || { echo "no $meta in Debian's archive" >&2; exit 1; }
  named
  if [ -e "$out/root.img" ]; then
    echo "$out"
    exit 0
  fi
  (cd "$work" && apt-get download -q -o APT::Sandbox::User=root "$kpkg" >/dev/null)
fi
# Older machines (another script or kernel) are stale: their space goes to this one.
find "$cache" -mindepth 1 -maxdepth 1 -name 'bookworm-*' ! -name "bookworm-$key" -exec rm -rf {} +
# The archive this machine's apt uses (deb822 or one-line sources).
mirror=$(sed -n 's/^URIs: *\([^ ]*\).*/\1/p; s/^deb \(\[[^]]*\] \)\{0,1\}\([^ ]*\) .*/\2/p' /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null | grep -v security | head -n1 || true)
mirror=${mirror:-http://deb.debian.org/debian}
dpkg-deb -x "$work"/linux-image-*.deb "$work/kernel"
kver=$(ls "$work/kernel/lib/modules")
# What the Wi-Fi tests need of this kernel: fail here, not in a test.
for m in mac80211_hwsim bonding; do
  find "$work/kernel/lib/modules/$kver" -name "$m.ko*" | grep -q . || { echo "$kpkg has no module $m" >&2; exit 1; }
done

root=$work/root
debootstrap --variant=minbase \
  --include=systemd,systemd-sysv,dbus,iproute2,udev,kmod,procps,iputils-ping,adduser,xml-core,libpam-systemd,network-manager,networkd-dispatcher,dnsmasq-base,hostapd,wpasupplicant,iw,wireless-regdb \
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
for name in eth0 wlan1 wlan0 eth3 eth4 eth5; do
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

# hostapd and wpa_supplicant run only where a Wi-Fi test starts them (its own access points in a
# network namespace, wpa_supplicant@wlanN for the stations), never at boot on their own.
chroot "$root" systemctl disable hostapd.service wpa_supplicant.service >/dev/null 2>&1 || true
chroot "$root" systemctl mask hostapd.service >/dev/null 2>&1

# initramfs: busybox, the virtio block stack, switch_root to systemd.
ird=$work/initramfs
mkdir -p "$ird/bin" "$ird/dev" "$ird/proc" "$ird/sys" "$ird/newroot" "$ird/modules"
cp /bin/busybox "$ird/bin/busybox"
# The modules that give /dev/vda and its file system, each after what it depends on, in the
# order this kernel's own modules.dep gives (no fixed list: Debian's kernel updates change the
# dependencies, as virtio -> virtio_ring in 6.1.0-57). Built-in ones need nothing (the cloud
# kernel had all of them built in; the standard one has virtio_pci, virtio_blk and ext4 as
# modules). crc32c_generic is ext4's soft dependency (its checksums), which modules.dep omits.
mods=$root/lib/modules/$kver
declare -A loaded=()
load() {
  local name=$1 path dep
  path=$(awk -F: -v n="$name" '{ m = $1; sub(/.*\//, "", m); sub(/\.ko(\.[a-z]+)?$/, "", m); gsub(/-/, "_", m) } m == n { print $1; exit }' "$mods/modules.dep")
  if [ -z "$path" ]; then
    grep -qE "/$name\.ko$" "$mods/modules.builtin" || { echo "module $name is neither in $kver's modules.dep nor built in" >&2; exit 1; }
    return 0
  fi
  [ -z "${loaded[$path]:-}" ] || return 0
  loaded[$path]=1
  # modules.dep lists every dependency, the ones loaded first last.
  for dep in $(awk -F': *' -v p="$path" '$1 == p { print $2; exit }' "$mods/modules.dep" | tr ' ' '\n' | tac); do
    load "$(basename "$dep" | sed -E 's/\.ko(\.[a-z]+)?$//; s/-/_/g')"
  done
  case "$path" in
    *.ko) cp "$mods/$path" "$ird/modules/" ;;
    *.ko.xz) xz -dc "$mods/$path" >"$ird/modules/$(basename "$path" .xz)" ;;
    *.ko.zst) zstd -qdc "$mods/$path" >"$ird/modules/$(basename "$path" .zst)" ;;
    *) echo "module $path: unknown compression" >&2; exit 1 ;;
  esac
  basename "${path%.ko*}.ko" >>"$ird/modules/order"
}
for m in virtio_pci virtio_blk crc32c_generic ext4; do load "$m"; done
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
