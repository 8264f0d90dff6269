"""Shared fixtures: a clean environment and a runner for the installed ``check_k8s_health`` command.

End-to-end tests run the console script that ``pip install`` put beside the interpreter running pytest, as a
subprocess, exactly as Icinga or NRPE would run it: no in-process shortcuts, no mocked HTTP.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import pytest
from fakeapi import KNOWN_TOKENS, FakeApiServer, Reply

COMMAND = Path(sys.executable).parent / "check_k8s_health"

#: The install the current test runs: pip's console script above, or the Debian package's plugin while a test
#: parametrised with ``each_install`` runs its "deb" case.
_under_test = [COMMAND]


#: For installs that run inside a chroot (which only root may enter), the command that runs their plugin as nobody.
_as_nobody: dict[Path, Path] = {}


def plugin() -> Path:
    """The plugin under test, for tests that build their own command line around it."""
    return _under_test[-1]


def plugin_as_nobody() -> Optional[Path]:
    """The plugin under test as a command that switches to nobody itself, or None where the caller switches (with
    setpriv) before running it."""
    return _as_nobody.get(plugin())

#: Variables from the developer's shell that could change what the plugin does.
_LEAKY = ("http_proxy", "https_proxy", "all_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY",
          "NO_PROXY", "KUBECONFIG", "KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT", "K8S_HEALTH_TOKEN",
          "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE", "SSL_CERT_DIR")


@dataclass(frozen=True)
class Run:
    code: int
    stdout: str
    stderr: str
    seconds: float

    @property
    def first_line(self) -> str:
        """The status line without perfdata, as Icinga shows it."""
        return self.stdout.split("\n", 1)[0].split(" | ", 1)[0]

    @property
    def perfdata(self) -> str:
        """Perfdata from line 1 (verbose 0) or nagiosplugin's trailing ``| ...`` line (verbose >= 1)."""
        lines = self.stdout.rstrip("\n").split("\n")
        if " | " in lines[0]:
            return lines[0].split(" | ", 1)[1]
        return lines[-1][2:] if len(lines) > 1 and lines[-1].startswith("| ") else ""

    @property
    def long_output(self) -> list[str]:
        lines = self.stdout.rstrip("\n").split("\n")[1:]
        return [line for line in lines if not line.startswith("| ")]


#: An empty home for every run, so the developer's ~/.kube/config cannot change what the plugin does.
EMPTY_HOME = tempfile.mkdtemp(prefix="check_k8s_health-home-")


def clean_env(extra: Optional[Mapping[str, str]] = None) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in _LEAKY}
    env["HOME"] = EMPTY_HOME
    env.update(extra or {})
    return env


def run_plugin(*args: str, env: Optional[Mapping[str, str]] = None, timeout: float = 30,
               command: Optional[list[str]] = None) -> Run:
    """Run the installed plugin; ``stderr`` must be empty in every test, so it is asserted here once."""
    import time

    started = time.monotonic()
    full_env = clean_env(env)
    proc = subprocess.run([*(command or [str(plugin())]), *args], capture_output=True, text=True,
                          env=full_env, timeout=timeout, stdin=subprocess.DEVNULL, check=False)
    result = Run(proc.returncode, proc.stdout, proc.stderr, time.monotonic() - started)
    for secret in _secrets_of(args, full_env):
        assert secret not in result.stdout and secret not in result.stderr, "a token reached the output"
    assert result.stderr == "", f"the plugin wrote to stderr: {result.stderr!r}"
    assert result.code in (0, 1, 2, 3), result
    assert "Traceback" not in result.stdout or "-vvv" in args, result.stdout
    return result


def _secrets_of(args: Sequence[str], env: Mapping[str, str]) -> set[str]:
    """Every token this run could know: the secret guard of the whole suite (no test may print one)."""
    secrets = set(KNOWN_TOKENS)
    if env.get("K8S_HEALTH_TOKEN", "").strip():
        secrets.add(env["K8S_HEALTH_TOKEN"].strip())
    files = [value for option, value in zip(args, args[1:]) if option in ("--token-file", "--kubeconfig")]
    files += [path for path in env.get("KUBECONFIG", "").split(os.pathsep) if path]
    for path in files:
        try:
            if not os.path.isfile(path) or os.path.getsize(path) > 1024 * 1024:
                continue
            text = Path(path).read_text(errors="replace")
        except OSError:
            continue
        secrets.add(text.strip())
        secrets.update(re.findall(r"(?:^|[{,\s])token:\s*['\"]?([^'\"\s,}]+)", text, re.MULTILINE))
    return {secret for secret in secrets if len(secret) >= 8 and "\n" not in secret}


@pytest.fixture(scope="session", autouse=True)
def _installed_command() -> Iterator[None]:
    if not COMMAND.exists():
        pytest.exit(f"{COMMAND} is missing: install the package into this interpreter first (pip install .)")
    yield


@pytest.fixture(params=["pip", "deb", "debian13", "rhel9"])
def each_install(request: pytest.FixtureRequest) -> Iterator[str]:
    """Runs a test against every install: ``pip install .`` into the test venv (the newest libraries); the Debian
    package on this Debian 12's python3-nagiosplugin 1.3.2, python3-requests 2.28 and urllib3 1.26; the same
    package installed into a Debian 13 root (Python 3.13, requests 2.32, urllib3 2.3), run there; the RPM's
    payload on RHEL 9's Python 3.9, requests 2.25.1, urllib3 1.26.5, PyYAML 5.4.1 and nagiosplugin 1.3.3."""
    if request.param == "deb":
        _under_test.append(request.getfixturevalue("debian_plugin"))
    elif request.param == "debian13":
        package = request.getfixturevalue("debian13_package")
        _under_test.append(package.plugin)
        _as_nobody[package.plugin] = package.plugin_as_nobody
    elif request.param == "rhel9":
        _under_test.append(request.getfixturevalue("rhel9_plugin"))
    try:
        yield request.param
    finally:
        del _under_test[1:]


def ca_args(server: FakeApiServer) -> list[str]:
    """Point the plugin at one fake server and trust its CA."""
    return ["-s", server.url, "--certificate-authority", server.ca_file]


def check_routes(routes: Mapping[str, Reply], *args: str) -> Run:
    """The plugin once against a fake server answering ``routes``, trusting its CA."""
    with FakeApiServer(routes) as server:
        return run_plugin(*ca_args(server), *args)


def perf(run: Run) -> dict[str, str]:
    """The perfdata of a run, label to ``value;warn;crit;min;max``."""
    return dict(item.split("=", 1) for item in run.perfdata.split())


from consumers import consumer_plugin  # noqa: E402,F401  (a session fixture the consumer tests share)
from debianroot import debian13_package, debian13_root  # noqa: E402,F401  (the .deb in a Debian 13 root)
from debpackage import debian_package, debian_plugin  # noqa: E402,F401  (the built and installed .deb)
from rpmpackage import rhel9_plugin, rpm_package  # noqa: E402,F401  (the RPM's payload on RHEL 9's libraries)
