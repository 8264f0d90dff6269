"""The Debian package (packaging/deb/build), installed with apt-get as an operator installs it: where its files
land, that lintian finds no error, that the installed plugin runs as ``nagios`` on Debian's own libraries, and
that removing it leaves nothing behind. The end-to-end state and hostile-input tests run against it as well
(``each_install``), and test_icinga2.py runs it from ``include <plugins-contrib>``. Skipped off Debian or
without root."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from consumers import readable_copy, world_readable_dir
from debpackage import NAME, ROOT, DebPackage, installed_version, run
from fakeapi import FakeApiServer, etcd_down_routes, healthy_routes

from check_k8s_health import __version__

DOC = f"/usr/share/doc/{NAME}"
ICINGA_CONF = "/usr/share/icinga2/include/plugins-contrib.d/k8s_health.conf"
DIST_PACKAGES = "/usr/lib/python3/dist-packages"


def test_the_package_installs_each_file_where_its_consumers_look(debian_package: DebPackage) -> None:
    files = [path for path in debian_package.files() if not path.endswith("/")]
    assert f"{debian_package.plugin}" in files
    assert ICINGA_CONF in files
    modules = {path.removeprefix(f"{DIST_PACKAGES}/check_k8s_health/") for path in files
               if path.startswith(f"{DIST_PACKAGES}/check_k8s_health/") and "/__pycache__/" not in path}
    source = ROOT / "check_k8s_health"
    assert modules == {str(path.relative_to(source)) for path in source.rglob("*")
                       if path.is_file() and "__pycache__" not in path.parts}
    examples = {path.removeprefix(f"{DOC}/examples/") for path in files if path.startswith(f"{DOC}/examples/")}
    shipped = {str(path.relative_to(ROOT / "contrib")) for path in (ROOT / "contrib").rglob("*") if path.is_file()}
    assert examples == shipped | {"rbac.yaml"}, "every example, uncompressed, and the RBAC manifest"
    docs = {path.removeprefix(f"{DOC}/") for path in files if path.startswith(f"{DOC}/docs/")}
    assert docs == {f"docs/{path.name}" for path in (ROOT / "docs").glob("*.md")}, "uncompressed: they link each other"
    assert f"{DOC}/README.md" in files
    assert not [path for path in files if path.startswith(("/usr/bin/", "/usr/local/", "/etc/"))], files
    # Installed, the files are the repository's own.
    assert Path(ICINGA_CONF).read_text() == (ROOT / "icinga2-commands.conf").read_text()
    assert Path(f"{DOC}/examples/rbac.yaml").read_text() == (ROOT / "deploy" / "rbac.yaml").read_text()
    assert debian_package.plugin.read_text().startswith("#!/usr/bin/python3\n")


def test_the_package_version_is_the_plugins_and_it_depends_on_debians_libraries(debian_package: DebPackage) -> None:
    fields = run("dpkg-deb", "-f", str(debian_package.deb), "Version", "Depends").stdout
    assert f"Version: {__version__}\n" in fields
    assert installed_version() == __version__
    depends = {re.split(r"[ (]", item.strip())[0] for item in fields.split("Depends:", 1)[1].split(",")}
    assert {"python3-nagiosplugin", "python3-requests", "python3-yaml"} <= depends, depends


def test_lintian_finds_no_error(debian_package: DebPackage) -> None:
    if shutil.which("lintian") is None:
        pytest.skip("not installed: lintian (tests/run installs it)")
    proc = subprocess.run(["lintian", "--pedantic", str(debian_package.deb)], capture_output=True, text=True,
                          timeout=300, check=False)
    errors = [line for line in proc.stdout.splitlines() if line.startswith("E:")]
    assert proc.returncode == 0 and not errors, proc.stdout + proc.stderr


def _as_nagios(command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["su", "nagios", "-s", "/bin/sh", "-c", command], capture_output=True, text=True,
                          timeout=60, stdin=subprocess.DEVNULL, check=False)


def test_the_installed_plugin_runs_on_debians_libraries(debian_package: DebPackage) -> None:
    """The interpreter of the plugin's first line, as nagios, imports the plugin and its libraries from Debian's
    packages, in the versions Debian 12 ships."""
    probe = ("import json, check_k8s_health, nagiosplugin, requests, urllib3, yaml; print(json.dumps({m.__name__: "
             "[m.__file__, getattr(m, '__version__', '')] for m in (check_k8s_health, nagiosplugin, requests, "
             "urllib3, yaml)}))")
    proc = _as_nagios(f'cd / && /usr/bin/python3 -c "{probe}"')
    assert proc.returncode == 0, proc.stderr
    found = json.loads(proc.stdout)
    for name, (path, _) in found.items():
        assert path.startswith(f"{DIST_PACKAGES}/{name}/"), (name, path)
    for name, package in (("nagiosplugin", "python3-nagiosplugin"), ("requests", "python3-requests"),
                          ("urllib3", "python3-urllib3"), ("yaml", "python3-yaml")):
        owner = run("dpkg", "-S", found[name][0]).stdout
        assert owner.startswith(f"{package}:"), owner
        debian = run("dpkg-query", "-W", "-f", "${Version}", package).stdout
        assert debian.startswith(found[name][1]), (name, found[name][1], debian)
    assert found["check_k8s_health"][1] == __version__


@pytest.mark.parametrize(("routes", "code", "line"), [
    (healthy_routes, 0, "K8S_HEALTH OK - readyz: all 33 sub-checks passed"),
    (etcd_down_routes, 2, "K8S_HEALTH CRITICAL - readyz: etcd, etcd-readiness failed (2 of 33 sub-checks)"),
], ids=["OK-healthy", "CRITICAL-etcd-down"])
def test_the_installed_plugin_as_nagios(debian_package: DebPackage, routes: object, code: int, line: str) -> None:
    folder = world_readable_dir("check_k8s_health-deb-")
    try:
        with FakeApiServer(routes()) as server:  # type: ignore[operator]
            ca_file = readable_copy(server.ca_file, folder, "ca.crt")
            proc = _as_nagios(f"{debian_package.plugin} -s {server.url} --certificate-authority {ca_file} -v")
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    assert (proc.returncode, proc.stderr) == (code, ""), proc
    assert proc.stdout.split("\n", 1)[0].split(" | ", 1)[0] == line, proc.stdout


def test_removing_the_package_leaves_nothing_behind(debian_package: DebPackage) -> None:
    """Python byte code compiled at install time included. The package is installed again afterwards for the
    tests that follow."""
    shipped = [path.rstrip("/") for path in debian_package.files()]
    own_dirs = [f"{DIST_PACKAGES}/check_k8s_health", DOC, f"{DIST_PACKAGES}/check_k8s_health-{__version__}.dist-info"]
    assert Path(f"{DIST_PACKAGES}/check_k8s_health/__pycache__").is_dir(), "compiled at install time"
    debian_package.remove()
    try:
        assert installed_version() == ""
        status = subprocess.run(["dpkg", "-s", NAME], capture_output=True, text=True, check=False)
        assert status.returncode != 0, "dpkg still knows the package (config files left?)"
        left = [path for path in shipped + own_dirs if Path(path).exists() and not _shared_dir(path)]
        assert left == [], left
    finally:
        debian_package.install()
    assert debian_package.plugin.exists()


def _shared_dir(path: str) -> bool:
    """Folders other packages own too (/usr/lib/nagios/plugins, ...): they stay, and must."""
    return Path(path).is_dir() and not path.startswith((f"{DIST_PACKAGES}/check_k8s_health", DOC))
