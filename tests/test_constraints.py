"""The test dependencies are pinned: every venv the suite makes holds exactly the versions named for it, so a new
release on the package index cannot change what the tests run on (tests/pins.py, tests/refresh-constraints).
"""

from __future__ import annotations

import configparser
import importlib.metadata
import re
import subprocess
import sys
from pathlib import Path

import pins
import pytest
import tomllib
from packaging.requirements import Requirement
from rpmpackage import RHEL9_LIBRARIES

ROOT = Path(__file__).resolve().parent.parent
#: Installed by tests/run itself, besides what setup.cfg asks for.
BOOTSTRAP = {"pip", "setuptools", "wheel"}
#: A pip install as the tests, tests/run and bench/ spell one: in an argv list or on a shell line.
PIP_INSTALL = re.compile(r'"pip"\)?, *"install"|"-m", *"pip", *"install"|^\s*(?:"\$venv/bin/python" -m )?pip install',
                         re.MULTILINE)


def _freeze(python: Path) -> dict[str, str]:
    out = subprocess.run([str(python), "-m", "pip", "freeze", "--all", "--disable-pip-version-check"],
                         capture_output=True, text=True, check=True, timeout=120).stdout
    found = {}
    for line in out.splitlines():
        name, separator, version = line.partition("==")
        if separator:
            found[pins.normalize(name)] = version
    return found


def _declared() -> list[Requirement]:
    """What setup.cfg and pyproject.toml ask for: the ranges the pins must fall in."""
    setup = configparser.ConfigParser()
    setup.read(ROOT / "setup.cfg")
    lines = setup["options"]["install_requires"].splitlines() + setup["options.extras_require"]["test"].splitlines()
    build = tomllib.loads((ROOT / "pyproject.toml").read_text())["build-system"]["requires"]
    return [Requirement(line) for line in [*lines, *build] if line.strip()]


def test_the_file_holds_only_exact_versions() -> None:
    pinned = pins.pinned()
    assert pinned, "tests/constraints.txt pins nothing"
    for line in pins.CONSTRAINTS.read_text().splitlines():
        assert line.startswith("#") or "==" in line, line


@pytest.mark.parametrize("text, problem", [
    ("requests>=2.25\n", "not name==version"),
    ("requests==2.34.2\nRequests==2.34.2\n", "pinned twice"),
    ("cryptography\n", "not name==version"),
    ("idna==3.21 ; python_version < '3.8'\n", "not name==version"),
])
def test_a_range_or_a_repeated_name_is_refused(text: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        pins.pinned(text)


def test_names_are_compared_as_pip_does() -> None:
    assert pins.pinned("PyYAML==6.0.4\ntypes_PyYAML==6.0.12\nmypy_extensions==1.2.0\n") == {
        "pyyaml": "6.0.4", "types-pyyaml": "6.0.12", "mypy-extensions": "1.2.0"}


def test_every_pin_is_inside_the_declared_ranges() -> None:
    pinned = pins.pinned()
    for requirement in _declared():
        name = pins.normalize(requirement.name)
        assert name in pinned, f"{requirement} is not pinned: run tests/refresh-constraints"
        assert requirement.specifier.contains(pinned[name], prereleases=True), (
            f"{name}=={pinned[name]} is outside {requirement}: run tests/refresh-constraints")


def test_the_test_venv_holds_exactly_the_pins() -> None:
    """tests/run installed with the file: nothing more, nothing less, nothing at another version."""
    installed = {pins.normalize(dist.metadata["Name"]): dist.version for dist in importlib.metadata.distributions()}
    installed.pop("check-k8s-health", None)
    pinned = pins.pinned()
    assert installed.keys() >= BOOTSTRAP
    differ = {name: (installed.get(name), pinned.get(name)) for name in installed.keys() | pinned.keys()
              if installed.get(name) != pinned.get(name)}
    assert differ == {}, (f"(installed, pinned) in {sys.prefix}: {differ}; a venv left from before the pins: "
                          "remove .venv and run tests/run")


def test_the_consumer_venv_holds_the_pinned_libraries(consumer_plugin: Path) -> None:
    """The venv the nagios and zabbix users run: Debian's Python, pip and setuptools (from its own archive, not
    the index); the plugin's libraries at their pinned versions."""
    installed = _freeze(consumer_plugin.parent / "python")
    assert installed.pop("check-k8s-health", None) is None  # a local path: freeze names no version for it
    installed.pop("pip", None)
    installed.pop("setuptools", None)
    pinned = pins.pinned()
    assert {"requests", "urllib3", "nagiosplugin", "pyyaml", "idna"} <= installed.keys()
    assert {name: version for name, version in installed.items() if pinned.get(name) != version} == {}


def test_the_rhel9_venv_holds_exactly_rhel9s_libraries(rhel9_plugin: Path) -> None:
    installed = _freeze(rhel9_plugin.parent / "venv" / "bin" / "python")
    installed.pop("pip", None)
    installed.pop("setuptools", None)
    assert installed == {pins.normalize(name): version for name, version in RHEL9_LIBRARIES.items()}


def test_every_pip_in_the_tests_and_benchmarks_gets_the_pins() -> None:
    """A pip started without them would bring the index's newest releases back in. Only tests/refresh-constraints
    asks the index for the newest, to write the pins anew."""
    places = [ROOT / "tests" / "run", ROOT / "bench" / "run", ROOT / "bench" / "sizing",
              *sorted((ROOT / "tests").glob("*.py")), *sorted((ROOT / "bench").glob("*.py"))]
    calls = 0
    for place in places:
        if place.name == Path(__file__).name:
            continue
        text = place.read_text()
        found = len(PIP_INSTALL.findall(text))
        calls += found
        if found:
            assert "PIP_CONSTRAINT" in text or "pins.pip_environment(" in text, place.relative_to(ROOT)
    assert calls >= 10, "the pattern no longer finds the pip calls"
