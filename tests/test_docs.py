"""README, docs/, --help and the package version must say the same thing."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from conftest import COMMAND

from check_k8s_health import __version__
from check_k8s_health.cli import build_parser

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
DOCS = ROOT / "docs"
OPTIONS = (DOCS / "options.md").read_text()
OUTPUT = (DOCS / "output.md").read_text()


def test_documented_usage_is_the_real_usage() -> None:
    env = {**os.environ, "COLUMNS": "80"}
    usage = subprocess.run([str(COMMAND), "--help"], capture_output=True, text=True, env=env, check=False)
    assert usage.returncode == 3
    assert usage.stdout.split("\n\n")[0] in OPTIONS


def test_options_table_names_every_option() -> None:
    table = OPTIONS[OPTIONS.index("| option | meaning |"):]
    for action in build_parser()._actions:
        for option in action.option_strings:
            assert re.search(rf"(?<![\w-]){re.escape(option)}(?![\w-])", table), option


def test_perfdata_table_names_the_emitted_labels() -> None:
    labels = set(re.findall(r"^\| `(<endpoint>_\w+|cert_days_left|members_\w+|webhooks\w*|apiservices\w*|"
                            r"leader_<name>_age|write_time|etcd_db_size)`", OUTPUT, re.MULTILINE))
    assert labels == {"<endpoint>_time", "<endpoint>_checks", "<endpoint>_failed", "cert_days_left",
                      "members_listed", "members_alive", "webhooks", "webhooks_unserved", "apiservices",
                      "apiservices_unavailable", "leader_<name>_age", "write_time", "etcd_db_size"}


def test_version_has_one_source() -> None:
    setup_cfg = (Path(__file__).resolve().parent.parent / "setup.cfg").read_text()
    assert "version = attr: check_k8s_health.__version__" in setup_cfg
    assert re.fullmatch(r"\d+\.\d+\.\d+", __version__)


def test_readme_starts_with_install_quick_start_and_states() -> None:
    headings = re.findall(r"^## (.+)$", README, re.MULTILINE)
    assert headings[1:4] == ["Install", "Quick start", "States"], headings
    install = README[README.index("## Install"):README.index("## Quick start")]
    assert install.index("packaging/deb/build") < install.index("pip install ."), "the Debian package first"
    assert "\ntests/run\n" in README


def test_every_doc_is_linked_and_every_link_resolves() -> None:
    """One file per subject under docs/, each reachable from the README; no link into nowhere."""
    linked = set()
    for source in [ROOT / "README.md", *DOCS.glob("*.md")]:
        for target in re.findall(r"\]\(([^)#]+\.md)(?:#[^)]*)?\)", source.read_text()):
            path = (source.parent / target).resolve()
            assert path.is_file(), f"{source.name} links {target}"
            linked.add(path)
    readme_links = {(ROOT / target).resolve() for target in re.findall(r"\]\((docs/[^)#]+\.md)", README)}
    assert readme_links == {path.resolve() for path in DOCS.glob("*.md")}
    for doc in DOCS.glob("*.md"):
        assert doc.read_text().startswith("# "), doc.name


def test_every_table_row_has_as_many_cells_as_its_header() -> None:
    """A row pasted into the wrong table (a States row among the options) shows as a row of another width."""
    for source in [ROOT / "README.md", *DOCS.glob("*.md")]:
        width = 0
        for number, line in enumerate(source.read_text().splitlines(), start=1):
            if not line.startswith("|"):
                width = 0
                continue
            cells = len(re.findall(r"(?<!\\)\|", line.replace("`|`", "``"))) - 1
            if width == 0:
                width = cells
            assert cells == width, f"{source.name}:{number} has {cells} cells, its table {width}"
