"""The RPM (packaging/rpm/), built with rpmbuild as tests/rpmpackage.py says: where its files land and with which
modes, what it requires from RHEL 9 and EPEL, that rpmlint finds nothing unjustified, and that its payload runs on
RHEL 9's Python and library versions. The end-to-end state and hostile tests run against that payload as well
(``each_install``: the "rhel9" cases).
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
from debpackage import run
from rpmpackage import PLUGIN, ROOT, SITELIB, RpmPackage

from check_k8s_health import __version__

DOC = "/usr/share/doc/check-k8s-health"
ICINGA_CONF = "/usr/share/icinga2/include/plugins-contrib.d/k8s_health.conf"
RPMLINTRC = ROOT / "packaging" / "rpm" / "check-k8s-health.rpmlintrc"
SPEC = ROOT / "packaging" / "rpm" / "check-k8s-health.spec"


def _listing(package: RpmPackage) -> dict[str, str]:
    """path -> mode, as rpm reports them."""
    lines = package.query("--queryformat", "[%{FILEMODES:perms} %{FILENAMES}\n]").splitlines()
    return {path: mode for mode, path in (line.split(" ", 1) for line in lines)}


def test_the_rpm_puts_each_file_where_el_looks_with_its_mode(rpm_package: RpmPackage) -> None:
    files = _listing(rpm_package)
    assert files[PLUGIN] == "-rwxr-xr-x"
    assert files[ICINGA_CONF] == "-rw-r--r--"
    package = {path.removeprefix(f"{SITELIB}/check_k8s_health/"): mode for path, mode in files.items()
               if path.startswith(f"{SITELIB}/check_k8s_health/") and "/__pycache__/" not in path}
    source = ROOT / "check_k8s_health"
    tree = [path for path in source.rglob("*") if "__pycache__" not in path.parts]
    assert {path for path, mode in package.items() if mode.startswith("-")} == {
        str(path.relative_to(source)) for path in tree if path.is_file()}
    # The package owns each folder of its layers and checks, so removing it leaves none behind.
    assert {path: mode for path, mode in package.items() if mode.startswith("d")} == {
        str(path.relative_to(source)): "drwxr-xr-x" for path in tree if path.is_dir()}
    examples = {path.removeprefix(f"{DOC}/examples/") for path, mode in files.items()
                if path.startswith(f"{DOC}/examples/") and mode.startswith("-")}
    shipped = {str(path.relative_to(ROOT / "contrib")) for path in (ROOT / "contrib").rglob("*") if path.is_file()}
    assert examples == shipped | {"rbac.yaml"}, "every example and the RBAC manifest"
    docs = {path.removeprefix(f"{DOC}/") for path in files if path.startswith(f"{DOC}/docs/")}
    assert docs == {f"docs/{path.name}" for path in (ROOT / "docs").glob("*.md")}
    assert f"{DOC}/README.md" in files and "/usr/share/licenses/check-k8s-health/LICENSE" in files
    regular = [path for path, mode in files.items() if mode.startswith("-")]
    assert all(files[path] == "-rw-r--r--" for path in regular if path != PLUGIN), files
    assert not [path for path in files if path.startswith(("/usr/bin/", "/usr/local/", "/etc/", "/usr/lib/nagios"))]
    payload = rpm_package.payload
    assert (payload / ICINGA_CONF.lstrip("/")).read_text() == (ROOT / "icinga2-commands.conf").read_text()
    assert (payload / f"{DOC}/examples/rbac.yaml".lstrip("/")).read_text() == (ROOT / "deploy/rbac.yaml").read_text()


def test_the_rpm_requires_el9s_python_and_libraries(rpm_package: RpmPackage) -> None:
    requires = {line.split(" ", 1)[0]: line for line in rpm_package.query("--requires").splitlines()}
    assert {"python3-nagiosplugin", "python3-requests", "python3-pyyaml", "python(abi)", "/usr/bin/python3"} \
        <= set(requires), requires
    assert requires["python(abi)"] == "python(abi) = 3.9", "EL9's Python, from the site-packages the modules use"
    assert requires["python3-nagiosplugin"] == "python3-nagiosplugin >= 1.3.2"
    fields = rpm_package.query("--queryformat", "%{NAME} %{VERSION} %{ARCH} %{LICENSE}")
    assert fields == f"check-k8s-health {__version__} noarch MIT", fields
    assert re.match(r"\* \w{3} \w{3} \d\d \d{4} .* - " + re.escape(__version__) + "-1\n",
                    rpm_package.query("--changelog")), rpm_package.query("--changelog")


def _rpmlint(package: RpmPackage, *config: str) -> list[str]:
    proc = subprocess.run(["rpmlint", *config, str(package.rpm), str(SPEC)], capture_output=True, text=True,
                          timeout=300, check=False)
    return sorted(line for line in proc.stdout.splitlines() if re.search(r": [EW]: ", line))


def test_rpmlint_is_clean_and_every_message_it_filters_is_justified(rpm_package: RpmPackage) -> None:
    """Clean with the rpmlintrc; without it, exactly the messages the rpmlintrc filters and justifies (a filter that
    no longer matches anything, or a new message, fails)."""
    if subprocess.run(["rpmlint", "--version"], capture_output=True, check=False).returncode != 0:
        pytest.skip("not installed: rpmlint (tests/run installs it)")
    assert _rpmlint(rpm_package, "-r", str(RPMLINTRC)) == []
    bare = RPMLINTRC.parent / "no.rpmlintrc"  # rpmlint reads <spec>.rpmlintrc beside the spec unless told another
    try:
        bare.write_text("\n")
        unfiltered = _rpmlint(rpm_package, "-r", str(bare))
    finally:
        bare.unlink()
    filters = re.findall(r'^addFilter\("([^"]+)"\)', RPMLINTRC.read_text(), re.MULTILINE)
    for line in unfiltered:
        assert any(re.search(pattern, line) for pattern in filters), f"not justified in the rpmlintrc: {line}"
    for pattern in filters:
        assert any(re.search(pattern, line) for line in unfiltered), f"a filter nothing needs: {pattern}"
    lines = RPMLINTRC.read_text().splitlines()
    for before, line in zip(lines, lines[1:]):
        if line.startswith("addFilter"):
            assert before.startswith(("#", "addFilter")), f"say why, in a comment above it: {line}"


def test_the_payload_runs_on_rhel9s_python_and_libraries(rhel9_plugin: Path, rpm_package: RpmPackage) -> None:
    """The interpreter the wrapper runs imports the RPM's modules and RHEL 9's library versions."""
    python = rhel9_plugin.read_text().split("'")[1]
    probe = ("import json, sys, check_k8s_health, nagiosplugin, requests, urllib3, yaml; print(json.dumps({'python': "
             "list(sys.version_info[:2]), **{m.__name__: [m.__file__, getattr(m, '__version__', '')] for m in "
             "(check_k8s_health, nagiosplugin, requests, urllib3, yaml)}}))")
    found = json.loads(run(python, "-s", "-c", probe, cwd="/").stdout)  # not this checkout's modules
    assert found["python"] == [3, 9]
    assert found["check_k8s_health"] == [f"{rpm_package.payload}{SITELIB}/check_k8s_health/__init__.py", __version__]
    versions = {name: found[name][1] for name in ("requests", "urllib3", "yaml")}
    assert versions == {"requests": "2.25.1", "urllib3": "1.26.5", "yaml": "5.4.1"}, versions
    assert "/site-packages/nagiosplugin/" in found["nagiosplugin"][0]
    assert run(python, "-c", "from importlib.metadata import version; print(version('nagiosplugin'))").stdout == \
        "1.3.3\n"
