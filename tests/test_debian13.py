"""Debian 13 (trixie), in a root made with debootstrap (tests/debianroot.py): the .deb built on this Debian 12 machine
installs there with apt unchanged and runs on trixie's Python and libraries, and building it there gives the same
package; trixie's Icinga 2.14 accepts the
CheckCommand the package puts into plugins-contrib.d, and its Nagios 4 the shipped examples. The end-to-end state
and hostile tests run against this install too (``each_install``: the "debian13" cases), and test_zabbix7.py runs
a Zabbix 7.0 server in the same root.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from consumers import readable_copy, user_ids, world_readable_dir
from debianroot import PLUGIN, DebianRoot, RootPackage
from debpackage import ROOT, run
from fakeapi import FakeApiServer, etcd_down_routes, healthy_routes
from test_icinga2 import EVERY_VARIABLE, _vars, validation_argv

from check_k8s_health import __version__

DOC = "/usr/share/doc/check-k8s-health"
ICINGA_CONF = "/usr/share/icinga2/include/plugins-contrib.d/k8s_health.conf"
DIST_PACKAGES = "/usr/lib/python3/dist-packages"


@pytest.fixture
def folder() -> Iterator[Path]:
    """Under /tmp, which the root shares, readable by the root's nagios."""
    path = world_readable_dir("check_k8s_health-debian13-")
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_the_root_is_debian_13_with_its_own_versions(debian13_root: DebianRoot) -> None:
    assert (debian13_root.path / "etc" / "debian_version").read_text().startswith("13."), "not trixie"
    assert debian13_root.version("python3").startswith("3.13.")
    assert debian13_root.version("icinga2-bin").startswith("2.14.")
    assert debian13_root.version("zabbix-server-pgsql").startswith("1:7.0.")


def test_the_package_installs_and_runs_on_trixies_libraries(debian13_package: RootPackage) -> None:
    """apt resolved the package's Depends from trixie's archive, and the plugin's interpreter imports trixie's
    python3-nagiosplugin, python3-requests, python3-urllib3 and python3-yaml, the versions dpkg reports."""
    root = debian13_package.root
    assert root.version("check-k8s-health") == __version__
    probe = ("import json, sys, check_k8s_health, nagiosplugin, requests, urllib3, yaml; print(json.dumps({'python': "
             "'%d.%d.%d' % sys.version_info[:3], **{m.__name__: [m.__file__, getattr(m, '__version__', '')] for m in "
             "(check_k8s_health, nagiosplugin, requests, urllib3, yaml)}}))")
    found = json.loads(root.run("setpriv", "--reuid=nagios", "--regid=nagios", "--init-groups",
                                "/usr/bin/python3", "-c", probe).stdout)
    assert found.pop("python") == root.version("python3").split("-")[0]
    for name, (path, version) in found.items():
        assert path.startswith(f"{DIST_PACKAGES}/{name}/"), (name, path)
        if name != "check_k8s_health":
            assert root.version(f"python3-{name}").startswith(version), (name, version)
    assert found["check_k8s_health"][1] == __version__
    assert (root.path / PLUGIN.lstrip("/")).read_text().startswith("#!/usr/bin/python3\n")


@pytest.mark.parametrize(("routes", "code", "line"), [
    (healthy_routes, 0, "K8S_HEALTH OK - readyz: all 33 sub-checks passed"),
    (etcd_down_routes, 2, "K8S_HEALTH CRITICAL - readyz: etcd, etcd-readiness failed (2 of 33 sub-checks)"),
], ids=["OK-healthy", "CRITICAL-etcd-down"])
def test_the_plugin_runs_as_nagios_in_the_root(debian13_package: RootPackage, folder: Path, routes: object,
                                               code: int, line: str) -> None:
    with FakeApiServer(routes()) as server:  # type: ignore[operator]
        ca_file = readable_copy(server.ca_file, folder, "ca.crt")
        proc = debian13_package.root.run("setpriv", "--reuid=nagios", "--regid=nagios", "--init-groups", PLUGIN,
                                         "-s", server.url, "--certificate-authority", ca_file, "-v", check=False)
    assert (proc.returncode, proc.stderr) == (code, ""), proc
    assert proc.stdout.split("\n", 1)[0].split(" | ", 1)[0] == line, proc.stdout


def test_the_package_builds_on_debian_13_into_the_same_package(debian13_package: RootPackage, folder: Path) -> None:
    """packaging/deb/build run inside the root, with trixie's debhelper and Python 3.13: the same files, the same
    dependencies as the .deb built on this Debian 12, so either one serves both releases."""
    source = folder / "src"
    # The build script leaves out earlier build output itself; the copy skips only what is large or private.
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(".git", ".venv*", "__pycache__", ".*_cache"))
    debian13_package.root.run("sh", str(source / "packaging" / "deb" / "build"), str(folder / "out"), timeout=900)
    (built,) = (folder / "out").glob("check-k8s-health_*_all.deb")

    def contents(deb: Path) -> tuple[list[str], str]:
        """Paths and control fields, without the installer's bookkeeping in the dist-info: bookworm's dh-python
        keeps RECORD, trixie's INSTALLER, and neither is read by anything the plugin does."""
        listing = run("dpkg-deb", "-c", str(deb)).stdout.splitlines()
        paths = [line.split(None, 5)[5] for line in listing]
        return (sorted(path for path in paths if not path.endswith((".dist-info/RECORD", ".dist-info/INSTALLER"))),
                run("dpkg-deb", "-f", str(deb), "Version", "Depends", "Architecture").stdout)

    assert contents(built) == contents(debian13_package.deb)


# -- Icinga 2.14 ------------------------------------------------------------------------------------------------

def _icinga2_check(root: DebianRoot, folder: Path, text: str) -> tuple[int, str]:
    proc = root.run("icinga2", *validation_argv(folder, "icinga2.conf", text), check=False, timeout=120)
    return proc.returncode, proc.stdout + proc.stderr


def _icinga2_config(command: str = "k8s_health") -> str:
    """Debian's own constants and includes, nothing of the repository's: the command comes with the package."""
    return ('include "/etc/icinga2/constants.conf"\ninclude <itl>\ninclude <plugins>\ninclude <plugins-contrib>\n'
            'object Host "k8s-cp-1" {\n  check_command = "dummy"\n  address = "10.0.0.11"\n}\n'
            f'object Service "k8s-health" {{\n  host_name = "k8s-cp-1"\n  check_command = "{command}"\n'
            + _vars(EVERY_VARIABLE) + "}\n")


def test_icinga2_2_14_validates_the_packaged_command(debian13_package: RootPackage, folder: Path) -> None:
    root = debian13_package.root
    assert (root.path / ICINGA_CONF.lstrip("/")).read_text() == (Path(__file__).parent.parent /
                                                                 "icinga2-commands.conf").read_text()
    code, output = _icinga2_check(root, folder, _icinga2_config())
    assert code == 0, output
    assert "Instantiated 1 Service." in output, output
    version = root.run("icinga2", "--version").stdout
    assert "version: r2.14." in version or "(version: 2.14." in version, version


def test_icinga2_2_14_fails_a_service_without_the_command(debian13_package: RootPackage, folder: Path) -> None:
    """The validation above can fail: a command name nobody defines is an error in 2.14 as well."""
    code, output = _icinga2_check(debian13_package.root, folder, _icinga2_config("k8s_helth"))
    assert code != 0, output
    assert "k8s_helth" in output, output


# -- Nagios 4 ---------------------------------------------------------------------------------------------------

def _nagios_verify(root: DebianRoot, folder: Path, commands: str) -> tuple[int, str]:
    """trixie's stock object files (templates, 24x7, admins) and the package's examples, as an operator copies
    them from the documentation folder."""
    stock = [f"/etc/nagios4/objects/{name}.cfg" for name in ("commands", "contacts", "timeperiods", "templates")]
    results = folder / "checkresults"
    results.mkdir()
    for path in (folder, results):
        shutil.chown(path, *user_ids(root.path, "nagios"))
    lines = [f"cfg_file={path}" for path in (*stock, commands, f"{DOC}/examples/nagios/services.cfg")]
    lines += [f"check_result_path={results}", f"lock_file={folder}/nagios.lock", f"temp_path={folder}",
              f"log_file={folder}/nagios.log", f"status_file={folder}/status.dat",
              f"object_cache_file={folder}/objects.cache", f"precached_object_file={folder}/objects.precache",
              "nagios_user=nagios", "nagios_group=nagios", "use_syslog=0", "check_external_commands=0",
              "illegal_object_name_chars=`~!$%^&*|'\"<>?,()=", "illegal_macro_output_chars=`~$&|'\"<>"]
    cfg = folder / "nagios.cfg"
    cfg.write_text("\n".join(lines) + "\n")
    cfg.chmod(0o644)
    proc = root.run("nagios4", "-v", str(cfg), check=False, timeout=60)
    return proc.returncode, proc.stdout + proc.stderr


def test_nagios4_accepts_the_shipped_examples(debian13_package: RootPackage, folder: Path) -> None:
    code, output = _nagios_verify(debian13_package.root, folder, f"{DOC}/examples/nagios/commands.cfg")
    assert code == 0, output
    assert "Total Errors:   0" in output and "Total Warnings: 0" in output, output
    assert "Checked 9 services." in output and "Checked 4 hosts." in output, output
    assert "Nagios Core 4.4." in output, output


def test_nagios4_rejects_a_service_whose_command_is_missing(debian13_package: RootPackage, folder: Path) -> None:
    broken = folder / "commands.cfg"
    shipped = debian13_package.root.path / f"{DOC}/examples/nagios/commands.cfg".lstrip("/")
    broken.write_text(shipped.read_text().replace("command_name    check_k8s_health\n",
                                                  "command_name    check_k8s_helth\n"))
    broken.chmod(0o644)
    code, output = _nagios_verify(debian13_package.root, folder, str(broken))
    assert code != 0, output
    assert "Service check command 'check_k8s_health!" in output and "not defined anywhere" in output, output
