"""The README's quick start, run as a new user would: on a stock Debian 12 that holds only
Debian's own python3 (PEP 668: pip refuses to install outside a virtual environment) and a
copy of the repository, `bash scripts/demo` must exit 0 and write the three reports.

The Debian 12 root is made with debootstrap, as .ci/images.sh makes the PostgreSQL image,
and cached as a tarball keyed by ROOTFS_VERSION; every run unpacks a fresh copy. The demo runs
in a chroot inside its own mount namespace (so /proc and /dev mounts vanish with it) and uses
the host's network: apt needs Debian's mirror for python3-venv, pip needs PyPI. A container
would not do, because the test engine drops every container packet bound outside the machine.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from tests.conftest import REPO, require

pytestmark = pytest.mark.quickstart

# Bump when the recipe below changes: the cached root is rebuilt under the new name.
ROOTFS_VERSION = 1
SUITE = "bookworm"
CACHE = Path(os.environ.get("HOSTING_IMAGE_CACHE", "/var/cache/hosting-images"))
REPORTS = ("out/invoice.html", "out/usage-acme.html", "out/platform.html")
# The repository's place inside the root, as a user's clone would be.
CLONE = Path("root/hosting")
PROXY_VARIABLES = ("http_proxy", "https_proxy", "no_proxy", "all_proxy")
NETWORK_CA = Path("/etc/ssl/network-ca.crt")


def _mirror() -> str:
    """The machine's own Debian mirror (the first non-security URI apt is configured with)."""
    found: list[str] = []
    apt = Path("/etc/apt")
    for path in [apt / "sources.list", *sorted((apt / "sources.list.d").glob("*"))]:
        try:
            text = path.read_text()
        except OSError:
            continue
        found += re.findall(r"^(?:URIs:|deb)\s+(?:\[[^]]*\]\s+)?(\S+)", text, re.MULTILINE)
    usable = [uri for uri in found if "security" not in uri]
    return usable[0] if usable else "http://deb.debian.org/debian"


def _cached_rootfs() -> Path:
    """A tarball of `debootstrap --variant=minbase --include=python3 bookworm`, built once."""
    tarball = CACHE / f"debian12-python3-rootfs-v{ROOTFS_VERSION}.tar"
    if tarball.is_file() and tarball.stat().st_size > 0:
        return tarball
    CACHE.mkdir(parents=True, exist_ok=True)
    build = CACHE / f".debian12-python3-v{ROOTFS_VERSION}.{os.getpid()}"
    log = CACHE / f"debian12-python3-v{ROOTFS_VERSION}.debootstrap.log"
    try:
        with log.open("w") as out:
            done = subprocess.run(
                ["debootstrap", "--variant=minbase", "--include=python3", SUITE, str(build),
                 _mirror()],
                stdout=out, stderr=subprocess.STDOUT, timeout=1800,
            )  # fmt: skip
        if done.returncode != 0:
            tail = "\n".join(log.read_text().splitlines()[-20:])
            pytest.fail(f"debootstrap failed (exit {done.returncode}); {log}:\n{tail}")
        for deb in (build / "var/cache/apt/archives").glob("*.deb"):
            deb.unlink()
        partial = tarball.with_suffix(f".tar.{os.getpid()}.partial")
        subprocess.run(["tar", "-C", str(build), "-cf", str(partial), "."], check=True)
        partial.rename(tarball)  # atomic: a cached tarball is always complete
    finally:
        shutil.rmtree(build, ignore_errors=True)
    return tarball


def _copy_repository(dest: Path) -> None:
    """What a clone holds: tracked files plus new ones not ignored (no .venv, .hosting, out)."""
    listed = subprocess.run(
        ["git", "-C", str(REPO), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        capture_output=True, check=True,
    ).stdout.decode().split("\0")  # fmt: skip
    for rel in filter(None, listed):
        src = REPO / rel
        if not src.is_file():  # deleted in the working tree, not yet committed
            continue
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, target, follow_symlinks=False)


def _network_settings(root: Path) -> list[str]:
    """The machine's way out, which a user's machine would have configured: proxy variables,
    and the CA bundle pip must trust where TLS is intercepted (as on the CI machines)."""
    settings = [f"{k}={v}" for k, v in os.environ.items() if k.lower() in PROXY_VARIABLES]
    for name in ("PIP_CERT", "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE"):
        bundle = os.environ.get(name)
        if bundle and Path(bundle).is_file():
            (root / NETWORK_CA.relative_to("/")).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(bundle, root / NETWORK_CA.relative_to("/"))
            settings.append(f"PIP_CERT={NETWORK_CA}")
            break
    return settings


def _run_demo(root: Path, network: list[str]) -> subprocess.CompletedProcess[str]:
    """`bash scripts/demo` as root in the chroot, with a clean environment."""
    script = (
        'mount -t proc proc "$1/proc" && mount --rbind /dev "$1/dev" && root=$1 && shift && '
        'exec chroot "$root" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:'
        '/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 TERM=dumb "$@" '
        f'/bin/bash -c "cd /{CLONE} && bash scripts/demo"'
    )
    return subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c", script, "sh",
         str(root), *network],
        capture_output=True, text=True, timeout=3600,
    )  # fmt: skip


def _tail(done: subprocess.CompletedProcess[str]) -> str:
    return "\n".join((done.stdout + "\n--- stderr ---\n" + done.stderr).splitlines()[-40:])


def test_quick_start_on_stock_debian_12(tmp_path: Path) -> None:
    require(os.geteuid() == 0, "root (for debootstrap and chroot)")
    require(
        all(shutil.which(tool) for tool in ("debootstrap", "unshare", "chroot")),
        "debootstrap, unshare and chroot (Debian packages debootstrap and util-linux)",
    )
    root = tmp_path / "debian12"
    root.mkdir()
    with tarfile.open(_cached_rootfs()) as tar:
        tar.extractall(root, filter="fully_trusted")  # our own tarball: devices, owners
    try:
        # The stock system the issue describes: Debian's python3, marked externally managed.
        assert (root / "usr/bin/python3").exists()
        assert list(root.glob("usr/lib/python3*/EXTERNALLY-MANAGED")), "not a PEP 668 python"
        assert not (root / "usr/bin/pip3").exists()
        assert not (root / "usr/local/bin/hosting").exists()
        shutil.copy2("/etc/resolv.conf", root / "etc/resolv.conf")
        network = _network_settings(root)
        _copy_repository(root / CLONE)

        first = _run_demo(root, network)
        assert first.returncode == 0, _tail(first)
        assert "command not found" not in first.stdout + first.stderr, _tail(first)
        for report in REPORTS:
            html = (root / CLONE / report).read_text()
            assert html.startswith("<!DOCTYPE html>"), report
        assert "INV-" in (root / CLONE / "out/invoice.html").read_text()
        assert ". .venv/bin/activate" in first.stdout  # how to get `hosting` on PATH

        # A second run reuses the environment and the store: still exit 0, same reports.
        invoice = (root / CLONE / "out/invoice.html").read_text()
        second = _run_demo(root, network)
        assert second.returncode == 0, _tail(second)
        assert (root / CLONE / "out/invoice.html").read_text() == invoice
    finally:
        # The mounts lived in the child's namespace only; never delete through a mount.
        for sub in ("proc", "dev"):
            assert not os.path.ismount(root / sub), f"{root / sub} is still mounted"
