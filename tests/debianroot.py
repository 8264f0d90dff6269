"""A Debian 13 (trixie) root made with debootstrap, for the tests that prove today's Debian: the .deb built on this
machine installed into it with apt, the plugin run there on Python 3.13 and trixie's libraries, Icinga 2.14 and
Nagios 4 validating the shipped files, and a Zabbix 7.0 server with its own PostgreSQL.

The root is kept between runs in ``CACHE`` (outside the checkout; ``CHECK_K8S_HEALTH_ROOTS`` moves it) and made
again when it is missing, older than a week (trixie's point releases) or its package list changed. Programs run
inside it through ``unshare --mount`` + ``chroot``: each in a mount namespace of its own, with /proc, /dev/shm and
the host's /tmp mounted in, so paths under /tmp are the same on both sides and nothing stays mounted on the host
when the process ends, however the tests end. The network is the host's: the fake servers on 127.0.0.1 answer.

Needs root, debootstrap and a kernel that lets root unshare a mount namespace; without them the tests that ask for
the root are skipped with the reason. A root that cannot be made (no archive reachable) fails them instead.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import pytest
from consumers import world_readable_dir
from debpackage import DebPackage

CACHE = Path(os.environ.get("CHECK_K8S_HEALTH_ROOTS", "/var/cache/check-k8s-health-tests"))
SUITE = "trixie"
#: What the tests run inside the root (the plugin's own dependencies come with its .deb), and what
#: packaging/deb/build needs to build the package there too.
PACKAGES = ("python3-nagiosplugin", "python3-requests", "python3-yaml", "icinga2-bin", "icinga2-common",
            "nagios4-core", "zabbix-server-pgsql", "zabbix-frontend-php", "zabbix-agent", "php-cli", "php-cgi",
            "php-pgsql", "php-bcmath", "php-mbstring", "php-gd", "php-xml", "php-ldap", "postgresql",
            "postgresql-client", "util-linux", "build-essential", "debhelper", "dh-python",
            "pybuild-plugin-pyproject", "python3-all", "python3-setuptools", "python3-wheel")
MAX_AGE = 7 * 24 * 3600
#: Shell run as ``sh -c`` in the new mount namespace: $1 the root, $2 the working folder, the rest the command.
_ENTER = r"""set -e
root=$1; cwd=$2; shift 2
mount -t proc proc "$root/proc"
mount --bind /tmp "$root/tmp"
mount --bind /dev/shm "$root/dev/shm"
exec chroot "$root" /bin/sh -c 'cd "$0" 2>/dev/null || cd /; exec "$@"' "$cwd" "$@"
"""
_CWD = "\0cwd"
APT_ENV = {"DEBIAN_FRONTEND": "noninteractive", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C.UTF-8"}


@dataclass(frozen=True)
class DebianRoot:
    path: Path

    def command(self, *argv: str, cwd: str = "/") -> list[str]:
        """``argv`` as a command line run inside the root."""
        return ["unshare", "--mount", "--propagation", "private", "sh", "-c", _ENTER, "enter", str(self.path), cwd,
                *argv]

    def run(self, *argv: str, timeout: float = 600, check: bool = True,
            env: Optional[dict[str, str]] = None) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(self.command(*argv), capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL, env={**APT_ENV, **(env or {})}, check=False)
        if check:
            assert proc.returncode == 0, (f"in the {SUITE} root: {' '.join(argv)} failed ({proc.returncode}):\n"
                                          f"{proc.stdout[-3000:]}{proc.stderr[-3000:]}")
        return proc

    def wrapper(self, program: str, folder: Path, name: str, prefix: tuple[str, ...] = ()) -> Path:
        """An executable on the host that runs ``program`` inside the root with the arguments it is given: what
        the end-to-end tests call "the plugin" for this install."""
        script = folder / name
        # The working folder is passed on, so relative paths mean what they mean on the host.
        quoted = " ".join('"$PWD"' if arg == _CWD else _quote(arg) for arg in self.command(*prefix, program, cwd=_CWD))
        script.write_text(f'#!/bin/sh\nexec {quoted} "$@"\n')
        script.chmod(0o755)
        return script

    def version(self, package: str) -> str:
        return self.run("dpkg-query", "-W", "-f", "${Version}", package).stdout


def _quote(arg: str) -> str:
    return "'" + arg.replace("'", "'\"'\"'") + "'"


def need_chroot() -> None:
    """Skip, saying why, when this machine cannot make a root at all."""
    if not os.path.exists("/etc/debian_version"):
        pytest.skip("a Debian root is made with debootstrap, which runs on Debian")
    if os.geteuid() != 0:
        pytest.skip("making and entering a Debian root needs root")
    for program in ("debootstrap", "unshare", "chroot"):
        if shutil.which(program) is None:
            pytest.skip(f"not installed: {program} (tests/run installs debootstrap)")
    probe = subprocess.run(["unshare", "--mount", "--propagation", "private", "true"], capture_output=True,
                           text=True, check=False)
    if probe.returncode != 0:
        pytest.skip(f"this machine cannot make a chroot: unshare --mount failed: {probe.stderr.strip()}")


def mirror() -> str:
    """The Debian archive this machine's apt uses, so the root comes from the same place."""
    sources = Path("/etc/apt/sources.list.d/debian.sources")
    texts = [sources.read_text()] if sources.exists() else []
    with contextlib.suppress(OSError):
        texts.append(Path("/etc/apt/sources.list").read_text())
    for text in texts:
        found = re.search(r"^(?:URIs:\s*|deb\s+(?:\[[^]]*\]\s+)?)(https?://\S+/debian)/?\s", text + "\n", re.MULTILINE)
        if found:
            return found[1]
    return "http://deb.debian.org/debian"


def _stamp() -> str:
    return f"{SUITE}\n" + "\n".join(PACKAGES) + "\n"


def _usable(root: Path) -> bool:
    stamp = root / ".check-k8s-health-root"
    try:
        return stamp.read_text() == _stamp() and time.time() - stamp.stat().st_mtime < MAX_AGE
    except OSError:
        return False


def _remove(path: Path) -> None:
    for sub in ("proc", "tmp", "dev/shm"):
        assert not os.path.ismount(path / sub), f"{path / sub} is mounted on the host: unmount it first"
    shutil.rmtree(path, ignore_errors=True)


def ensure_root() -> DebianRoot:
    """The cached root, made first when needed; a lock keeps two sessions from making it at once."""
    need_chroot()
    CACHE.mkdir(parents=True, exist_ok=True)
    root = CACHE / SUITE
    with (CACHE / f"{SUITE}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _usable(root):
            return DebianRoot(root)
        building = CACHE / f"{SUITE}.new"
        _remove(building)
        proc = subprocess.run(["debootstrap", "--variant=minbase", SUITE, str(building), mirror()],
                              capture_output=True, text=True, timeout=1800, stdin=subprocess.DEVNULL,
                              env={**os.environ, **APT_ENV}, check=False)
        assert proc.returncode == 0, f"debootstrap {SUITE} failed:\n{proc.stdout[-3000:]}{proc.stderr[-2000:]}"
        # Packages install without starting their daemons (postgresql, zabbix-server, icinga2, nagios4).
        policy = building / "usr" / "sbin" / "policy-rc.d"
        policy.write_text("#!/bin/sh\nexit 101\n")
        policy.chmod(0o755)
        (building / "dev" / "shm").mkdir(exist_ok=True)
        made = DebianRoot(building)
        made.run("apt-get", "-q", "update", timeout=1200)
        made.run("apt-get", "-q", "install", "-y", "--no-install-recommends", *PACKAGES, timeout=1800)
        made.run("apt-get", "clean")
        (building / ".check-k8s-health-root").write_text(_stamp())
        _remove(root)
        building.rename(root)
        return DebianRoot(root)


@dataclass(frozen=True)
class RootPackage:
    root: DebianRoot
    deb: Path
    #: A host executable that runs the package's plugin inside the root.
    plugin: Path
    #: The same, as the user nobody (a chroot needs root, so the switch happens inside).
    plugin_as_nobody: Path


PLUGIN = "/usr/lib/nagios/plugins/check_k8s_health"


@contextlib.contextmanager
def installed(root: DebianRoot, deb: Path, folder: Path) -> Iterator[RootPackage]:
    """The .deb installed into the root with apt as an operator installs it; purged again at the end. A copy left
    by an interrupted run is purged first: apt would keep an installed package of the same version."""
    root.run("dpkg", "--purge", "check-k8s-health")
    root.run("apt-get", "-q", "install", "-y", "--no-install-recommends", str(deb))
    try:
        yield RootPackage(root, deb, root.wrapper(PLUGIN, folder, "check_k8s_health"),
                          root.wrapper(PLUGIN, folder, "check_k8s_health-as-nobody",
                                       ("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups")))
    finally:
        root.run("dpkg", "--purge", "check-k8s-health")


@pytest.fixture(scope="session")
def debian13_root() -> DebianRoot:
    return ensure_root()


@pytest.fixture(scope="session")
def debian13_package(debian13_root: DebianRoot, debian_package: DebPackage) -> Iterator[RootPackage]:
    """The very .deb the Debian 12 tests install, installed into the Debian 13 root."""
    folder = world_readable_dir("check_k8s_health-debian13-")
    try:
        with installed(debian13_root, debian_package.deb, folder) as package:
            yield package
    finally:
        shutil.rmtree(folder, ignore_errors=True)
