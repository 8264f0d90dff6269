"""The plugin installed the way operators install it for Icinga 2, Nagios, NRPE and Zabbix: a venv made from the
system's /usr/bin/python3 in a world-readable folder, so the consumers' own users (nagios, zabbix) can run it.

Consumer tests run the real Debian programs (installed by tests/run) and so need root; they are skipped, with the
reason, where those programs or root are missing.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pins
import pytest

ROOT = Path(__file__).resolve().parent.parent
SYSTEM_PYTHON = "/usr/bin/python3"


def need(*programs: str) -> None:
    """Skip unless running as root with every named program installed."""
    if os.geteuid() != 0:
        pytest.skip("consumer tests run the real daemons and switch users: they need root")
    missing = [program for program in programs if shutil.which(program) is None and not os.path.exists(program)]
    if missing:
        pytest.skip(f"not installed: {', '.join(missing)} (tests/run installs the Debian packages)")


def user_ids(system: Path, user: str) -> tuple[int, int]:
    """A user's uid and gid as the system rooted at ``system`` numbers them: a Debian root made for the tests has
    its own, which the host's pwd module does not know."""
    for line in (system / "etc" / "passwd").read_text().splitlines():
        fields = line.split(":")
        if fields[0] == user:
            return int(fields[2]), int(fields[3])
    raise AssertionError(f"no user {user} in {system}/etc/passwd")


def world_readable_dir(prefix: str) -> Path:
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    folder.chmod(0o755)
    return folder


@pytest.fixture(scope="session")
def consumer_plugin() -> Iterator[Path]:
    """Path of ``check_k8s_health`` in a venv every user can run (removed at the end of the session)."""
    need(SYSTEM_PYTHON)
    folder = world_readable_dir("check_k8s_health-consumer-")
    venv = folder / "venv"
    subprocess.run([SYSTEM_PYTHON, "-m", "venv", str(venv)], check=True, capture_output=True)
    build = folder / "src"
    shutil.copytree(ROOT, build, ignore=shutil.ignore_patterns(".venv", ".git", "*.egg-info", "build", "__pycache__"))
    subprocess.run([str(venv / "bin" / "pip"), "install", "--quiet", "--disable-pip-version-check", str(build)],
                   check=True, capture_output=True, env={**os.environ, **pins.pip_environment()})
    shutil.rmtree(build)
    subprocess.run(["chmod", "-R", "a+rX", str(folder)], check=True)
    plugin = venv / "bin" / "check_k8s_health"
    check = subprocess.run(["su", "nagios", "-s", "/bin/sh", "-c", f"{plugin} --version"], capture_output=True,
                           text=True, check=False)
    if check.returncode != 3:
        pytest.fail(f"the nagios user cannot run {plugin}: {check.stdout}{check.stderr}")
    yield plugin
    shutil.rmtree(folder, ignore_errors=True)


def readable_copy(path: str, folder: Path, name: str) -> str:
    """A copy of a test file (CA, token) that the consumers' users may read."""
    target = folder / name
    shutil.copy(path, target)
    target.chmod(0o644)
    return str(target)


def token_file_for(folder: Path, token: str, gid: int) -> Path:
    """A token file as the docs set it up for a consumer: owned root and that consumer's group, mode 640."""
    path = folder / "k8s-token"
    path.write_text(token + "\n")
    os.chown(path, 0, gid)
    path.chmod(0o640)
    return path


def stop_daemon(daemon: subprocess.Popen[bytes]) -> None:
    """SIGTERM (icinga2 exits in about a second), then SIGKILL to its whole process group (it was started in a
    session of its own, so that group holds only the daemon and the plugins it spawned)."""
    if daemon.poll() is None:
        daemon.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            daemon.wait(timeout=10)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(daemon.pid, signal.SIGKILL)
    daemon.wait(timeout=10)
