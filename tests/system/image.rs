//! What a system test boots and installs: the cached Debian machine (tests/system/image.sh) and
//! the .deb that `cargo deb` built from this tree; and whether this machine can run them at all.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

/// The cached machine: kernel, initramfs and root disk (never written: each boot has an overlay).
pub struct Image {
    pub dir: PathBuf,
}

impl Image {
    pub fn vmlinuz(&self) -> PathBuf {
        self.dir.join("vmlinuz")
    }
    pub fn initrd(&self) -> PathBuf {
        self.dir.join("initrd.img")
    }
    pub fn root(&self) -> PathBuf {
        self.dir.join("root.img")
    }
}

/// Builds the machine the first time (a few minutes, from Debian's archive), then finds it in
/// the cache.
pub fn machine() -> anyhow::Result<Image> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/system/image.sh");
    let out = Command::new("bash").arg(&script).output().with_context(|| format!("cannot run {}", script.display()))?;
    if !out.status.success() {
        bail!("{} failed: {}{}", script.display(), String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    }
    let dir = PathBuf::from(String::from_utf8(out.stdout)?.trim().lines().last().unwrap_or_default());
    let image = Image { dir };
    for f in [image.vmlinuz(), image.initrd(), image.root()] {
        if !f.exists() {
            bail!("{} did not make {}", script.display(), f.display());
        }
    }
    Ok(image)
}

/// The package as `cargo deb` writes it: `debian/` in the target directory this test was built in.
pub fn deb() -> PathBuf {
    let exe = Path::new(env!("CARGO_BIN_EXE_multihome"));
    let target = exe.parent().and_then(Path::parent).expect("the binary is in <target>/<profile>/");
    target.join("debian").join(format!("multihome_{}_amd64.deb", env!("CARGO_PKG_VERSION")))
}

/// The version of the earlier package the upgrade test starts from: this tree's binary packaged
/// with a lower version (.ci/run builds it after the real one), so that installing
/// [`deb`] over it is dpkg's upgrade path (prerm upgrade, postinst configure with the old version).
pub const EARLIER_VERSION: &str = "0.0.1";

/// Where .ci/run writes the earlier package: beside the real one's directory, never in it
/// (tests/package.rs inspects `debian/`).
pub fn earlier_deb() -> PathBuf {
    let dir = deb().parent().and_then(Path::parent).expect("the .deb is in <target>/debian/").join("debian-earlier");
    dir.join(format!("multihome_{EARLIER_VERSION}_amd64.deb"))
}

/// Why this machine cannot run system tests, if it cannot.
pub fn prerequisites() -> Result<(), String> {
    if !nix::unistd::Uid::effective().is_root() {
        return Err("system tests need root (network namespaces, debootstrap)".into());
    }
    for tool in ["qemu-system-x86_64", "qemu-img", "debootstrap", "busybox", "cpio", "mkfs.ext4", "apt-get", "dpkg-deb", "ip", "dnsmasq"] {
        if multihome::lab::which(tool).is_none() && !Path::new("/usr/sbin").join(tool).exists() && !Path::new("/sbin").join(tool).exists() {
            return Err(format!("{tool} is not installed (bash .ci/deps --tests installs qemu-system-x86, debootstrap, busybox-static, cpio)"));
        }
    }
    if !deb().exists() {
        return Err(format!("{} is missing: build it with `cargo deb --locked` (.ci/run does)", deb().display()));
    }
    Ok(())
}

/// `true` when a system test can run. Outside CI a missing prerequisite skips with the reason;
/// with CI=true it fails, so a system test never passes without having booted.
pub fn require() -> bool {
    decide(prerequisites())
}

/// [`require`], and the earlier package the upgrade test installs first.
pub fn require_earlier_deb() -> bool {
    decide(prerequisites().and_then(|()| {
        let earlier = earlier_deb();
        if earlier.exists() {
            Ok(())
        } else {
            Err(format!(
                "{} is missing: after `cargo deb --locked`, build it with `cargo deb --locked --no-build --deb-version {EARLIER_VERSION} -o {}` (.ci/run does)",
                earlier.display(),
                earlier.display()
            ))
        }
    }))
}

fn decide(prerequisites: Result<(), String>) -> bool {
    match prerequisites {
        Ok(()) => true,
        Err(why) if std::env::var("CI").is_ok_and(|v| v == "true") => panic!("system test prerequisite missing in CI: {why}"),
        Err(why) => {
            eprintln!("SKIPPED (not in CI): {why}");
            false
        }
    }
}
