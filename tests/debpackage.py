"""The Debian package, built from this checkout by packaging/deb/build and installed with ``apt-get install ./x.deb``
as an operator installs it: the plugin then runs on Debian's own python3-nagiosplugin, python3-requests and
python3-yaml, not on what pip put into the test venv.

Building and installing need root on Debian with the build tools (tests/run installs them); elsewhere every test
that asks for the package is skipped with the reason.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import pytest

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "packaging" / "deb" / "build"
NAME = "check-k8s-health"
PLUGIN = Path("/usr/lib/nagios/plugins/check_k8s_health")
APT_ENV = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}


@dataclass(frozen=True)
class DebPackage:
    deb: Path
    plugin: Path

    def install(self) -> None:
        apt("install", "-y", "--no-install-recommends", str(self.deb))

    def remove(self) -> None:
        apt("remove", "-y", NAME)

    def files(self) -> list[str]:
        """Every path the package ships (directories end in /), as ``dpkg-deb -c`` lists them."""
        listing = run("dpkg-deb", "-c", str(self.deb)).stdout
        return [line.split(None, 5)[5].removeprefix(".") for line in listing.splitlines()]


def run(*argv: str, timeout: float = 300, cwd: Optional[str] = None,
        env: Optional[Mapping[str, str]] = None) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL,
                          env={**APT_ENV, **(env or {})}, check=False, cwd=cwd)
    assert proc.returncode == 0, f"{' '.join(argv)} failed ({proc.returncode}):\n{proc.stdout[-3000:]}{proc.stderr}"
    return proc


def apt(*args: str) -> None:
    run("apt-get", "-q", *args)


def installed_version() -> str:
    """The installed version, or "" when dpkg does not know the package (removed without leftovers)."""
    proc = subprocess.run(["dpkg-query", "-W", "-f", "${db:Status-Abbrev}${Version}", NAME], capture_output=True,
                          text=True, check=False)
    return proc.stdout[3:] if proc.returncode == 0 and proc.stdout.startswith("ii ") else ""


def need_debian() -> None:
    if not os.path.exists("/etc/debian_version"):
        pytest.skip("the Debian package is built and installed on Debian only")
    if os.geteuid() != 0:
        pytest.skip("installing the Debian package needs root")
    for program in ("dpkg-buildpackage", "dh", "apt-get"):
        if shutil.which(program) is None:
            pytest.skip(f"not installed: {program} (tests/run installs the Debian build tools)")
    if not os.path.exists("/usr/share/perl5/Debian/Debhelper/Buildsystem/pybuild.pm"):
        pytest.skip("not installed: dh-python (tests/run installs the Debian build tools)")


@pytest.fixture(scope="session")
def debian_package() -> Iterator[DebPackage]:
    """Built once per session into a temporary folder and installed; removed again at the end."""
    need_debian()
    out = Path(tempfile.mkdtemp(prefix="check_k8s_health-deb-"))
    try:
        built = run(str(BUILD), str(out), timeout=600)
        debs = list(out.glob(f"{NAME}_*_all.deb"))
        assert len(debs) == 1, built.stdout[-2000:]
        package = DebPackage(debs[0], PLUGIN)
        package.install()
        yield package
        package.remove()
    finally:
        shutil.rmtree(out, ignore_errors=True)


@pytest.fixture(scope="session")
def debian_plugin(debian_package: DebPackage) -> Path:
    return debian_package.plugin
