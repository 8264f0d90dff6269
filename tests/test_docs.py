"""README, --help and the package version must say the same thing."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from conftest import COMMAND

from check_k8s_health import __version__
from check_k8s_health.cli import build_parser

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


def test_readme_usage_is_the_real_usage() -> None:
    env = {**os.environ, "COLUMNS": "80"}
    usage = subprocess.run([str(COMMAND), "--help"], capture_output=True, text=True, env=env, check=False)
    assert usage.returncode == 3
    assert usage.stdout.split("\n\n")[0] in README


def test_readme_options_table_names_every_option() -> None:
    table = README[README.index("## Options"):README.index("## States")]
    for action in build_parser()._actions:
        for option in action.option_strings:
            assert re.search(rf"(?<![\w-]){re.escape(option)}(?![\w-])", table), option


def test_readme_perfdata_table_names_the_emitted_labels() -> None:
    labels = set(re.findall(r"^\| `(<endpoint>_\w+|cert_days_left|members_\w+)`", README, re.MULTILINE))
    assert labels == {"<endpoint>_time", "<endpoint>_checks", "<endpoint>_failed", "cert_days_left",
                      "members_listed", "members_alive"}


def test_version_has_one_source() -> None:
    setup_cfg = (Path(__file__).resolve().parent.parent / "setup.cfg").read_text()
    assert "version = attr: check_k8s_health.__version__" in setup_cfg
    assert re.fullmatch(r"\d+\.\d+\.\d+", __version__)
