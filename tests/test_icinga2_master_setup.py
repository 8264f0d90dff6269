"""The master's first steps from docs/icinga2.md ("The ticket salt"), with the real ``icinga2 node setup --master``
of Icinga 2.13 (this Debian 12) and 2.14 (the Debian 13 root of tests/debianroot.py).

``node setup`` writes to /etc/icinga2, /var/lib/icinga2 and /var/cache/icinga2. Each run happens in a mount
namespace of its own in which those folders are copies in a temporary folder (the configuration as the package
ships it, the rest empty), so neither this machine's nor the root's files change; a test asserts that.

Skipped without root or icinga2 (tests/run installs it); the 2.14 case also needs the root.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from consumers import need, world_readable_dir

ROOT = Path(__file__).resolve().parent.parent
NODE = "satellite-1.example.com"
#: What node setup writes to, each bound over by a copy (/etc/icinga2) or an empty folder.
FOLDERS = ("/etc/icinga2", "/var/lib/icinga2", "/var/cache/icinga2", "/var/log/icinga2")
#: Run by ``sh -c`` in the new mount namespace: $1 the scratch folder, $2 the steps to run there.
_ISOLATE = r"""set -e
scratch=$1; shift
for folder in """ + " ".join(FOLDERS) + r"""; do
    mkdir -p "$scratch$folder"
    if [ "$folder" = /etc/icinga2 ]; then cp -a "$folder/." "$scratch$folder/"; fi
    chown nagios:nagios "$scratch$folder"
    mount --bind "$scratch$folder" "$folder"
done
set +e
exec sh -c "$1"
"""


def documented_salt_command() -> str:
    """The `pki ticket --salt` line of docs/icinga2.md's "The ticket salt", as an operator copies it."""
    text = (ROOT / "docs" / "icinga2.md").read_text()
    section = text[text.index("**The ticket salt.**"):text.index("**Joining a child**")]
    (command,) = re.findall(r"^icinga2 pki ticket --cn NODE --salt .*$", section, re.MULTILINE)
    return str(command).replace("NODE", NODE)


def steps() -> str:
    """Each step prints a marker line, its exit code, so the output tells which step said what."""
    return "\n".join(f'echo "== {name}"; {command}; echo "== {name} exit $?"' for name, command in (
        ("setup", "icinga2 node setup --master --cn master.example.com --zone master --disable-confd"),
        ("constants", "grep '^const TicketSalt' /etc/icinga2/constants.conf"),
        ("api", "grep 'ticket_salt' /etc/icinga2/features-enabled/api.conf"),
        ("cache before", "ls /var/cache/icinga2"),
        ("ticket at once", f"icinga2 pki ticket --cn {NODE}"),
        ("ticket with the salt", documented_salt_command()),
        ("validate", "icinga2 daemon -C >/dev/null"),
        ("cache after", "ls /var/cache/icinga2"),
        ("ticket after validation", f"icinga2 pki ticket --cn {NODE}"),
    ))


def parse(output: str) -> dict[str, tuple[str, int]]:
    """step -> (what it printed, its exit code)."""
    found = {}
    for name, body, code in re.findall(r"^== (.+?)\n(.*?)^== \1 exit (\d+)$", output, re.MULTILINE | re.DOTALL):
        found[name] = (body.strip(), int(code))
    return found


def digest(files: Path) -> str:
    """Every file name and content under the place's icinga2 folders, to see that nothing changed."""
    hashed = hashlib.sha256()
    for folder in FOLDERS:
        base = files / folder.lstrip("/")
        for path in sorted(base.rglob("*")) if base.is_dir() else []:
            hashed.update(str(path.relative_to(files)).encode())
            if path.is_file() and not path.is_symlink():
                hashed.update(path.read_bytes())
    return hashed.hexdigest()


@pytest.fixture(params=["2.13", "2.14"])
def place(request: pytest.FixtureRequest) -> tuple[str, Path, Callable[..., list[str]]]:
    """(version, the place's files as this machine sees them, how to run a command there in a new mount
    namespace)."""
    if request.param == "2.13":
        need("icinga2")
        if shutil.which("unshare") is None:
            pytest.skip("not installed: unshare")
        return "2.13", Path("/"), lambda *argv: ["unshare", "--mount", "--propagation", "private", *argv]
    from debianroot import DebianRoot

    root: DebianRoot = request.getfixturevalue("debian13_root")
    return "2.14", root.path, root.command


@pytest.fixture
def scratch() -> Iterator[Path]:
    folder = world_readable_dir("check_k8s_health-icinga-master-")
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_the_ticket_salt_as_documented(place: tuple[str, Path, Callable[..., list[str]]], scratch: Path) -> None:
    version, files, command = place
    before = digest(files)
    proc = subprocess.run(command("sh", "-c", _ISOLATE, "isolate", str(scratch), steps()), capture_output=True,
                          text=True, timeout=300, stdin=subprocess.DEVNULL, check=False)
    output = proc.stdout + proc.stderr
    found = parse(output)
    assert proc.returncode == 0 and len(found) == 9, output[-3000:]
    # The setup, and what it writes where the docs say.
    assert found["setup"][1] == 0, found["setup"]
    salt = re.fullmatch(r'const TicketSalt = "([0-9a-f]{32})"', found["constants"][0])
    assert salt, found["constants"]
    assert found["api"] == ("ticket_salt = TicketSalt", 0), found["api"]
    # Right after the setup: no cache, and the ticket without --salt fails with the documented words.
    assert found["cache before"] == ("", 0), found["cache before"]
    at_once, code = found["ticket at once"]
    assert code != 0 and "Ticket salt (--salt) must be specified." in at_once, found["ticket at once"]
    # The documented --salt line works at once; validation writes the cache; the plain command then gives the same
    # ticket, so both ways hand the child the ticket the master's ApiListener accepts.
    ticket, code = found["ticket with the salt"]
    assert code == 0 and re.fullmatch(r"[0-9a-f]{40}", ticket), found["ticket with the salt"]
    assert found["validate"][1] == 0, found["validate"]
    assert "icinga2.vars" in found["cache after"][0].split(), found["cache after"]
    assert found["ticket after validation"] == (ticket, 0), found["ticket after validation"]
    # The run was somebody else's: the place's own folders are as they were, and the version is the one named.
    assert digest(files) == before, f"node setup changed {files}'s icinga2 folders"
    shown = subprocess.run(command("icinga2", "--version"), capture_output=True, text=True, timeout=60, check=False)
    assert f"(version: r{version}." in shown.stdout, shown.stdout
