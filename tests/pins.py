"""The pinned test dependencies (``tests/constraints.txt``) and how a pip the tests start is held to them.

A new release on the package index must not change what the suite runs on: every pip that tests/run, the
tests and the benchmarks start gets the constraints file, for what it installs and for the build environment
it makes for ``pip install .`` (setuptools, wheel). Measured: pip 26 applies ``PIP_CONSTRAINT`` only to what it
installs and needs ``PIP_BUILD_CONSTRAINT`` for the build environment; Debian 12's pip 23 applies
``PIP_CONSTRAINT`` to both and ignores the other name. Hence both, naming the same file.

Standard library only: the older-cryptography venv of test_clientcert imports it too.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Optional

CONSTRAINTS = Path(__file__).resolve().with_name("constraints.txt")
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;#]+)$")


def normalize(name: str) -> str:
    """PEP 503: ``PyYAML``, ``pyyaml`` and ``types_PyYAML``/``types-PyYAML`` name one project each."""
    return re.sub(r"[-_.]+", "-", name).lower()


def pinned(text: Optional[str] = None) -> dict[str, str]:
    """Project name (normalized) to version; any line that is not ``name==version`` or a comment is an error,
    so a range cannot slip into the file."""
    pins: dict[str, str] = {}
    source = CONSTRAINTS.read_text() if text is None else text
    for number, raw in enumerate(source.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = _PIN.match(line)
        if match is None:
            raise ValueError(f"{CONSTRAINTS.name}:{number}: not name==version: {raw!r}")
        name = normalize(match.group(1))
        if name in pins:
            raise ValueError(f"{CONSTRAINTS.name}:{number}: {name} pinned twice")
        pins[name] = match.group(2)
    return pins


def constraints_text(replace: Mapping[str, str]) -> str:
    """The pins with some versions changed (a venv that tries an older release of one library)."""
    wanted = {normalize(name): version for name, version in replace.items()}
    pins = {**pinned(), **wanted}
    return "".join(f"{name}=={version}\n" for name, version in sorted(pins.items()))


def pip_environment(constraints: Path = CONSTRAINTS) -> dict[str, str]:
    """Variables that hold a pip, of any version here, and its build environment to ``constraints``."""
    return {"PIP_CONSTRAINT": str(constraints), "PIP_BUILD_CONSTRAINT": str(constraints)}
