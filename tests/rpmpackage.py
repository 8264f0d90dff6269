"""The RPM for RHEL 9 and its rebuilds, built from this checkout by packaging/rpm/build with Debian's rpmbuild, and its
payload run on RHEL 9's library versions: Python 3.9 with requests 2.25.1, urllib3 1.26.5, PyYAML 5.4.1 and
nagiosplugin 1.3.3 (EPEL), installed from PyPI into a venv of their own.

No RHEL root can be made here (no EL repository is reachable), so the payload is unpacked with rpm2cpio into a
folder and the venv is pointed at its site-packages with a .pth file: the plugin script and modules run are the
RPM's own bytes. Skipped, with the reason, without rpmbuild or a Python 3.9.
"""

from __future__ import annotations

import glob
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import pins
import pytest
from debpackage import run

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "packaging" / "rpm" / "build"
PLUGIN = "/usr/lib64/nagios/plugins/check_k8s_health"
SITELIB = "/usr/lib/python3.9/site-packages"
#: What RHEL 9 ships (python3-requests, python3-urllib3, python3-pyyaml, python3-idna, python3-chardet) and EPEL 9
#: (python3-nagiosplugin), and certifi, which PyPI's requests needs where EL9's uses the system's CA bundle: the
#: venv's every project, installed without dependencies so nothing else can come in. certifi follows the pins.
RHEL9_LIBRARIES = {"requests": "2.25.1", "urllib3": "1.26.5", "PyYAML": "5.4.1", "nagiosplugin": "1.3.3",
                   "idna": "2.10", "chardet": "4.0.0", "certifi": pins.pinned()["certifi"]}


@dataclass(frozen=True)
class RpmPackage:
    rpm: Path
    payload: Path

    def query(self, *args: str) -> str:
        return run("rpm", "-qp", *args, str(self.rpm)).stdout


def python39() -> Optional[str]:
    found = [*sorted(glob.glob("/root/.pyenv/versions/3.9*/bin/python3.9")), shutil.which("python3.9") or ""]
    for candidate in found:
        if candidate and subprocess.run([candidate, "-c", "import sys; assert sys.version_info[:2] == (3, 9)"],
                                        capture_output=True, check=False).returncode == 0:
            return candidate
    return None


@pytest.fixture(scope="session")
def rpm_package() -> Iterator[RpmPackage]:
    for program in ("rpmbuild", "rpm2cpio", "cpio"):
        if shutil.which(program) is None:
            pytest.skip(f"not installed: {program} (tests/run installs rpm and cpio)")
    folder = Path(tempfile.mkdtemp(prefix="check_k8s_health-rpm-"))
    folder.chmod(0o755)
    try:
        run(str(BUILD), str(folder / "out"), timeout=600)
        (rpm,) = (folder / "out").glob("check-k8s-health-*.noarch.rpm")
        payload = folder / "payload"
        payload.mkdir()
        archive = subprocess.run(["rpm2cpio", str(rpm)], capture_output=True, timeout=120, check=True).stdout
        subprocess.run(["cpio", "-idm", "--quiet"], input=archive, cwd=payload, capture_output=True, timeout=120,
                       check=True)
        yield RpmPackage(rpm, payload)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def rhel9_plugin(rpm_package: RpmPackage) -> Iterator[Path]:
    """A command that runs the payload's plugin script with Python 3.9 and RHEL 9's libraries."""
    interpreter = python39()
    if interpreter is None:
        pytest.skip("no Python 3.9 here (RHEL 9's): install one, e.g. with pyenv, to run the RPM's payload")
    folder = Path(tempfile.mkdtemp(prefix="check_k8s_health-rhel9-"))
    folder.chmod(0o755)
    try:
        venv = folder / "venv"
        run(interpreter, "-m", "venv", str(venv))
        # Its own constraints: the test venv's pins name newer versions of the same projects.
        constraints = folder / "rhel9-constraints.txt"
        constraints.write_text("".join(f"{name}=={version}\n" for name, version in RHEL9_LIBRARIES.items()))
        run(str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
            "--only-binary", ":all:", "--no-deps", *(f"{name}=={version}" for name, version in RHEL9_LIBRARIES.items()),
            timeout=600, env=pins.pip_environment(constraints))
        site = Path(run(str(venv / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))")
                    .stdout.strip())
        # The RPM's modules, where an EL9 system would find them in its own site-packages.
        (site / "rpm-payload.pth").write_text(f"{rpm_package.payload}{SITELIB}\n")
        wrapper = folder / "check_k8s_health"
        script = rpm_package.payload / PLUGIN.lstrip("/")
        first = script.read_text().split("\n", 1)[0]
        assert first == "#!/usr/bin/python3 -s", first
        # The script's own interpreter line, with the venv's Python 3.9 in place of EL9's /usr/bin/python3.
        wrapper.write_text(f"#!/bin/sh\nexec '{venv / 'bin' / 'python'}' -s '{script}' \"$@\"\n")
        wrapper.chmod(0o755)
        yield wrapper
    finally:
        shutil.rmtree(folder, ignore_errors=True)
