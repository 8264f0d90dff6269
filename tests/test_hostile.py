"""Hostile input, table-driven: bad argv, bad files, broken or malicious servers, broken TLS.

Every case runs the installed command as a subprocess (``run_plugin`` already fails on any stderr output, an exit
code outside 0..3 and a traceback without ``-vvv``) and asserts what SPEC sections 2-4 promise: the exit code of
the situation, one status line ``K8S_HEALTH <STATE> - <what>`` of at most 200 characters with no ``|`` but the
perfdata separator, perfdata Icinga can parse, never an "internal error" for input the plugin must expect, never
the token in the output, and the ``-t`` deadline kept (interpreter start-up included).

Each id starts with the state the plugin should report.
"""

from __future__ import annotations

import base64
import datetime
import gzip
import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Union

import clientcert
import pytest
import trustme
from conftest import Run, plugin, plugin_as_nobody, run_plugin
from fakeapi import HOST, FakeApiServer, Reply, healthy_routes

#: Every case runs against the pip install and the Debian package.
pytestmark = pytest.mark.usefixtures("each_install")

STATES = {0: "OK", 1: "WARNING", 2: "CRITICAL", 3: "UNKNOWN"}
#: Nothing listens on port 1 of the loopback interface: a server that certainly refuses.
REFUSED = "https://127.0.0.1:1"
#: Sent with every server case: it must never show up in the output.
SECRET = "hostile-suite-secret-token-4711"
PERFDATA_ITEM = re.compile(r"^'?[A-Za-z0-9_]+'?=[0-9.]+[a-z]*(;[^; ]*){0,4}$")
KIB = 1024
MIB = 1024 * KIB
LONG = 100 * KIB  # "very long" argument values
NON_UTF8 = os.fsdecode(b"\xff\xfe")  # surrogate escapes: subprocess passes the raw bytes 0xff 0xfe in argv
EMPTY_RANGE = ("an empty range is not a threshold: give one such as 1, 0.5:2 or ~:3, or leave the option out "
               "(see --help)")
LONG_HOST = f"{'x' * 40}... is not a valid host name (labels up to 63 characters, 253 in all)"


class Prefix(str):
    """The status line must start with this (the rest depends on bytes not worth pinning)."""


#: An exact status line (``K8S_HEALTH ...``), a ``Prefix``, any other text as a fragment the status line must
#: contain, or a tuple of acceptable exact lines.
Expected = Union[str, tuple[str, ...]]


def assert_plugin_output(run: Run, code: int, expected: Expected, request: pytest.FixtureRequest,
                         **values: object) -> None:
    """The checks every hostile case shares; ``values`` fill ``{placeholders}`` in ``expected``."""
    state = STATES[code]
    # The table itself must not lie: the id names the state the case expects (after the install it runs on).
    case = re.sub(r"^(pip|deb|debian13|rhel9)-", "", request.node.callspec.id)
    assert case.startswith(f"{state}-"), "the case id must start with the expected state"
    first = run.stdout.split("\n", 1)[0]
    assert first.startswith(f"K8S_HEALTH {state} - "), (run.code, run.stdout[:2000])
    assert run.code == code, run.stdout[:2000]
    status = run.first_line
    if isinstance(expected, tuple):
        assert status in tuple(line.format(**values) for line in expected)
    elif isinstance(expected, Prefix):
        assert status.startswith(expected.format(**values)), status
    elif expected.startswith("K8S_HEALTH "):
        assert status == expected.format(**values)
    else:
        assert expected.format(**values) in status
    assert len(status) <= 200, f"status line of {len(status)} characters"
    assert not status.rstrip().endswith(":"), "the status line ends before saying anything"
    assert "internal error" not in status, "hostile input is expected input, never an internal error"
    assert SECRET not in run.stdout
    # No "|" except the perfdata separator: on line 1 (verbosity 0) or as the last line "| ..." (-v and more).
    lines = run.stdout.rstrip("\n").split("\n")
    if " | " in lines[0]:
        assert lines[0].count("|") == 1, lines[0]
    for line in lines[1:]:
        assert "|" not in line or (line is lines[-1] and line.startswith("| ") and line.count("|") == 1), line
    for item in run.perfdata.split():
        assert PERFDATA_ITEM.match(item), f"perfdata item Icinga cannot parse: {item!r}"
    # nagiosplugin deletes "|" from long output and says so in an extra line: the plugin must clean first.
    assert "removed illegal characters" not in run.stdout, run.stdout[-2000:]
    assert "\x1b" not in run.stdout, "a terminal escape sequence reached the output"


# ============================================================================================================
# argv
# ============================================================================================================

ARGV_CASES = [
    pytest.param(("--bogus-option",), 3, "K8S_HEALTH UNKNOWN - unrecognized arguments: --bogus-option (see --help)",
                 id="UNKNOWN-argv-unknown-option"),
    pytest.param(("-s", REFUSED, "-x"), 3, "K8S_HEALTH UNKNOWN - unrecognized arguments: -x (see --help)",
                 id="UNKNOWN-argv-unknown-short-option"),
    pytest.param(("-s", REFUSED, "-t"), 3,
                 "K8S_HEALTH UNKNOWN - argument -t/--timeout: expected one argument (see --help)",
                 id="UNKNOWN-argv-missing-value-at-the-end"),
    pytest.param(("-s", "-t", "1"), 3, "K8S_HEALTH UNKNOWN - argument -s/--server: expected one argument (see --help)",
                 id="UNKNOWN-argv-missing-value-followed-by-option"),
    pytest.param(("-s", REFUSED, "--token-file"), 3,
                 "K8S_HEALTH UNKNOWN - argument --token-file: expected one argument (see --help)",
                 id="UNKNOWN-argv-missing-token-file-value"),
    pytest.param(("-s", REFUSED, "-t", "abc"), 3,
                 "K8S_HEALTH UNKNOWN - argument -t/--timeout: 'abc' is not a number of seconds (see --help)",
                 id="UNKNOWN-argv-timeout-not-a-number"),
    pytest.param(("-s", REFUSED, "-t", "-1"), 3,
                 "K8S_HEALTH UNKNOWN - argument -t/--timeout: -1 is not a number of seconds (more than 0, at most "
                 "3600) (see --help)", id="UNKNOWN-argv-timeout-negative"),
    pytest.param(("-s", REFUSED, "-t", "inf"), 3,
                 "K8S_HEALTH UNKNOWN - argument -t/--timeout: inf is not a number of seconds (more than 0, at most "
                 "3600) (see --help)", id="UNKNOWN-argv-timeout-infinite"),
    pytest.param(("-H", "127.0.0.1", "-p", "1.5"), 3,
                 "K8S_HEALTH UNKNOWN - argument -p/--port: '1.5' is not a port number (see --help)",
                 id="UNKNOWN-argv-port-fraction"),
    pytest.param(("-H", "127.0.0.1", "-p", "0"), 3,
                 "K8S_HEALTH UNKNOWN - argument -p/--port: 0 is not a port number (1 to 65535) (see --help)",
                 id="UNKNOWN-argv-port-zero"),
    pytest.param(("-s", REFUSED, "--min-healthy", "0"), 3,
                 "K8S_HEALTH UNKNOWN - argument --min-healthy: 0 is not a whole number of servers (1 to 1000) "
                 "(see --help)", id="UNKNOWN-argv-min-healthy-zero"),
    pytest.param(("-s", REFUSED, "-w", "5:1"), 3,
                 "K8S_HEALTH UNKNOWN - argument -w/--warning: '5:1' is not a Nagios range such as 1, 0.5:2 or ~:3 "
                 "(see --help)", id="UNKNOWN-argv-range-reversed"),
    pytest.param(("-s", REFUSED, "-w", "abc"), 3,
                 "K8S_HEALTH UNKNOWN - argument -w/--warning: 'abc' is not a Nagios range such as 1, 0.5:2 or ~:3 "
                 "(see --help)", id="UNKNOWN-argv-range-garbage"),
    pytest.param(("-s", REFUSED, "-c", "nan"), 3,
                 "K8S_HEALTH UNKNOWN - argument -c/--critical: 'nan' is not a Nagios range such as 1, 0.5:2 or ~:3 "
                 "(see --help)", id="UNKNOWN-argv-range-nan"),
    pytest.param(("-s", REFUSED, "-c", ""), 3,
                 f"K8S_HEALTH UNKNOWN - argument -c/--critical: {EMPTY_RANGE}", id="UNKNOWN-argv-range-empty-critical"),
    pytest.param(("-s", REFUSED, "-w", " "), 3,
                 f"K8S_HEALTH UNKNOWN - argument -w/--warning: {EMPTY_RANGE}", id="UNKNOWN-argv-range-blank-warning"),
    pytest.param(("-s", REFUSED, "-t", "0.001"), 3, Prefix("K8S_HEALTH UNKNOWN - the 0.001 s deadline (-t) ran out "
                                                           "while "), id="UNKNOWN-argv-timeout-one-millisecond"),
    pytest.param(("-s", ""), 3,
                 "K8S_HEALTH UNKNOWN - -s/--server is empty: give the API server URL, e.g. -s https://10.0.0.1:6443",
                 id="UNKNOWN-argv-empty-server"),
    pytest.param(("-s", " \t "), 3,
                 "K8S_HEALTH UNKNOWN - -s/--server is empty: give the API server URL, e.g. -s https://10.0.0.1:6443",
                 id="UNKNOWN-argv-blank-server"),
    pytest.param(("-H", ""), 3,
                 "K8S_HEALTH UNKNOWN - -H/--hostname '' is not a host name or address; use -s for a full URL, e.g. "
                 "-s https://10.0.0.1:6443", id="UNKNOWN-argv-empty-hostname"),
    pytest.param(("-s", REFUSED, "--token-file", ""), 3,
                 "K8S_HEALTH UNKNOWN - argument --token-file: --token-file must not be empty (see --help)",
                 id="UNKNOWN-argv-empty-token-file"),
    pytest.param(("-s", REFUSED, "-e", ""), 3,
                 "K8S_HEALTH UNKNOWN - argument -e/--endpoint: invalid choice: '' (choose from 'livez', 'readyz', "
                 "'healthz', 'health') (see --help)", id="UNKNOWN-argv-empty-endpoint"),
    pytest.param(("-H", "127.0.0.1", "-s", REFUSED), 3,
                 "K8S_HEALTH UNKNOWN - give the servers either as -s URL or as -H HOST, not both",
                 id="UNKNOWN-argv-conflict-hostname-and-server"),
    pytest.param(("-s", REFUSED, "--certificate-authority", "/nonexistent/ca.crt", "--insecure-skip-tls-verify"), 3,
                 "K8S_HEALTH UNKNOWN - --insecure-skip-tls-verify and --certificate-authority exclude each other: "
                 "verify with the CA, or do not verify", id="UNKNOWN-argv-conflict-ca-and-insecure"),
    pytest.param(("-s", REFUSED, "--client-key", "/nonexistent/key"), 3,
                 "K8S_HEALTH UNKNOWN - --client-key needs --client-certificate", id="UNKNOWN-argv-key-without-cert"),
    pytest.param(("-s", REFUSED, "--min-healthy", "2"), 3,
                 "K8S_HEALTH UNKNOWN - --min-healthy 2 asks for more healthy servers than the 1 given",
                 id="UNKNOWN-argv-min-healthy-beyond-servers"),
    pytest.param(("-s", REFUSED, "--insecure-skip-tls-verify=yes"), 3,
                 "K8S_HEALTH UNKNOWN - argument --insecure-skip-tls-verify: ignored explicit argument 'yes' "
                 "(see --help)", id="UNKNOWN-argv-value-for-a-flag"),
    pytest.param(("-s", REFUSED, "--", "garbage"), 3,
                 "K8S_HEALTH UNKNOWN - unrecognized arguments: -- garbage (see --help)",
                 id="UNKNOWN-argv-double-dash-and-garbage"),
    pytest.param(("--", "-s", REFUSED), 3,
                 f"K8S_HEALTH UNKNOWN - unrecognized arguments: -- -s {REFUSED} (see --help)",
                 id="UNKNOWN-argv-double-dash-first"),
    pytest.param(("-s", REFUSED, "garbage", "more garbage"), 3,
                 "K8S_HEALTH UNKNOWN - unrecognized arguments: garbage more garbage (see --help)",
                 id="UNKNOWN-argv-positional-garbage"),
    pytest.param(("-s", "https://127.0.0.1:99999"), 3,
                 "K8S_HEALTH UNKNOWN - -s/--server 'https://127.0.0.1:99999' is not a valid URL (Port out of range "
                 "0-65535)", id="UNKNOWN-argv-url-port-out-of-range"),
    pytest.param(("-s", "https://[::1"), 3,
                 "K8S_HEALTH UNKNOWN - -s/--server 'https://[::1' is not a valid URL (Invalid IPv6 URL)",
                 id="UNKNOWN-argv-url-broken-ipv6"),
    pytest.param(("-s", "https://127.0.0.1:1/readyz?verbose"), 3,
                 "K8S_HEALTH UNKNOWN - -s/--server 'https://127.0.0.1:1/readyz?verbose' must not have a query or "
                 "fragment: give the server's base URL and choose the endpoint with -e",
                 id="UNKNOWN-argv-url-with-query"),
    # -- very long values (100 kB) --------------------------------------------------------------------------
    pytest.param(("-s", "https://" + "x" * LONG), 3, f"K8S_HEALTH UNKNOWN - -s/--server: {LONG_HOST}",
                 id="UNKNOWN-argv-100kB-host-in-url"),
    pytest.param(("-H", "x" * LONG), 3, f"K8S_HEALTH UNKNOWN - -H/--hostname: {LONG_HOST}",
                 id="UNKNOWN-argv-100kB-hostname"),
    pytest.param(("-H", "x" * 64 + ".example"), 3, Prefix("K8S_HEALTH UNKNOWN - -H/--hostname: xxxxxxxxxx"),
                 id="UNKNOWN-argv-64-character-dns-label"),
    pytest.param(("-s", f"{REFUSED}/{'p' * LONG}"), 2,
                 "K8S_HEALTH CRITICAL - readyz: cannot connect to 127.0.0.1:1: connection refused (API server down "
                 "or wrong port?)", id="CRITICAL-argv-100kB-url-path-prefix"),
    pytest.param(("-s", REFUSED, "--token-file", "/nonexistent/" + "t" * LONG), 3,
                 Prefix("K8S_HEALTH UNKNOWN - cannot read token file /nonexistent/ttt"),
                 id="UNKNOWN-argv-100kB-token-path"),
    pytest.param(("-s", REFUSED, "--context", "c" * LONG), 3, Prefix('K8S_HEALTH UNKNOWN - context "ccc'),
                 id="UNKNOWN-argv-100kB-context"),
    # -- bytes that are not UTF-8 ----------------------------------------------------------------------------
    pytest.param((f"--{NON_UTF8}",), 3, "K8S_HEALTH UNKNOWN - unrecognized arguments: --\\udcff\\udcfe (see --help)",
                 id="UNKNOWN-argv-non-utf8-option"),
    pytest.param(("-s", REFUSED, "-e", NON_UTF8), 3,
                 "K8S_HEALTH UNKNOWN - argument -e/--endpoint: invalid choice: '\\udcff\\udcfe' (choose from "
                 "'livez', 'readyz', 'healthz', 'health') (see --help)", id="UNKNOWN-argv-non-utf8-endpoint"),
    pytest.param(("-s", REFUSED, "--token-file", f"/nonexistent/{NON_UTF8}"), 3,
                 "K8S_HEALTH UNKNOWN - cannot read token file /nonexistent/\\udcff\\udcfe: No such file or "
                 "directory; check the path and that the monitoring user may read it",
                 id="UNKNOWN-argv-non-utf8-token-path"),
    pytest.param(("-s", f"https://{NON_UTF8}:1"), 3,
                 "K8S_HEALTH UNKNOWN - readyz: cannot build a request for https://\\udcff\\udcfe:1/readyz?verbose: "
                 "InvalidURL", id="UNKNOWN-argv-non-utf8-host"),
    pytest.param(("-s", REFUSED, "--context", NON_UTF8), 3,
                 Prefix('K8S_HEALTH UNKNOWN - context "\\udcff\\udcfe" does not exist'),
                 id="UNKNOWN-argv-non-utf8-context"),
]


@pytest.mark.parametrize(("args", "code", "expected"), ARGV_CASES)
def test_hostile_argv(args: tuple[str, ...], code: int, expected: Expected, request: pytest.FixtureRequest) -> None:
    run = run_plugin(*args, env={"K8S_HEALTH_TOKEN": SECRET})
    assert_plugin_output(run, code, expected, request)
    assert run.seconds < 10


# ============================================================================================================
# files
# ============================================================================================================

TOKEN = "right-token"


@pytest.fixture(scope="module")
def token_api() -> Iterator[FakeApiServer]:
    """A k3s-like server: anonymous access off, so a token that reaches it intact is the only way to OK."""
    with FakeApiServer(healthy_routes(), token=TOKEN, anonymous=False) as server:
        yield server


@pytest.fixture
def public_dir() -> Iterator[Path]:
    """A folder every user can reach (pytest's tmp_path lies under a 0700 folder, so nobody could not)."""
    folder = Path(tempfile.mkdtemp(prefix="hostile-"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def _as_nobody() -> list[str]:
    """Root reads every file, so an unreadable file needs another user; the venv must be reachable by it."""
    if os.geteuid() != 0:
        return [str(plugin())]
    switching = plugin_as_nobody()
    if switching is not None:
        return [str(switching)]
    if shutil.which("setpriv") is None:
        pytest.skip("setpriv is missing")
    command = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", str(plugin())]
    probe = subprocess.run([*command, "--version"], capture_output=True, check=False)
    if probe.returncode != 3:
        pytest.skip("the plugin's interpreter is not readable by nobody (a venv or a Python under a private "
                    "folder)")
    return command


def _write(path: Path, data: bytes, mode: int = 0o644) -> str:
    path.write_bytes(data)
    path.chmod(mode)
    return str(path)


def _public_ca(folder: Path, api: FakeApiServer) -> str:
    """A copy of the server's CA that user nobody can read (the server keeps its own in a 0700 folder)."""
    return _write(folder / "ca.crt", Path(api.ca_file).read_bytes())


def _fifo(folder: Path) -> str:
    path = folder / "fifo"
    os.mkfifo(path)
    return str(path)


def _token_file(data: bytes, mode: int = 0o644) -> Callable[[Path, FakeApiServer], list[str]]:
    def build(folder: Path, api: FakeApiServer) -> list[str]:
        return ["-s", api.url, "--certificate-authority", _public_ca(folder, api),
                "--token-file", _write(folder / "token", data, mode)]
    return build


def _token_path(path: str) -> Callable[[Path, FakeApiServer], list[str]]:
    def build(folder: Path, api: FakeApiServer) -> list[str]:
        return ["-s", api.url, "--certificate-authority", _public_ca(folder, api),
                "--token-file", path.format(d=folder)]
    return build


def _token_fifo(folder: Path, api: FakeApiServer) -> list[str]:
    return ["-s", api.url, "--certificate-authority", api.ca_file, "--token-file", _fifo(folder), "-t", "1"]


def _kubeconfig(data: Optional[bytes], mode: int = 0o644) -> Callable[[Path, FakeApiServer], list[str]]:
    def build(folder: Path, api: FakeApiServer) -> list[str]:
        path = str(folder / "config") if data is None else _write(folder / "config", data, mode)
        return ["--kubeconfig", path]
    return build


def _kubeconfig_path(path: str) -> Callable[[Path, FakeApiServer], list[str]]:
    def build(folder: Path, api: FakeApiServer) -> list[str]:
        return ["--kubeconfig", path.format(d=folder), "-t", "2"]
    return build


def kubeconfig_text(server: str, cluster: str, context: str = "ctx", user: str = "token: right-token") -> str:
    """A minimal kubeconfig with one context; ``cluster`` is one line of the cluster's TLS settings."""
    return (f"apiVersion: v1\nkind: Config\ncurrent-context: {json.dumps(context)}\n"
            f"clusters:\n- name: c\n  cluster:\n    server: {server}\n    {cluster}\n"
            f"users:\n- name: u\n  user:\n    {user}\n"
            f"contexts:\n- name: {json.dumps(context)}\n  context: {{cluster: c, user: u}}\n")


def _kubeconfig_ca_data(data: bytes) -> Callable[[Path, FakeApiServer], list[str]]:
    def build(folder: Path, api: FakeApiServer) -> list[str]:
        text = kubeconfig_text(api.url, f"certificate-authority-data: {base64.b64encode(data).decode()}")
        return ["--kubeconfig", _write(folder / "config", text.encode())]
    return build


def _kubeconfig_fifo(folder: Path, api: FakeApiServer) -> list[str]:
    return ["--kubeconfig", _fifo(folder), "-t", "1"]


def _ca(data: Optional[bytes], mode: int = 0o644) -> Callable[[Path, FakeApiServer], list[str]]:
    def build(folder: Path, api: FakeApiServer) -> list[str]:
        path = str(folder / "ca.crt") if data is None else _write(folder / "ca.crt", data, mode)
        return ["-s", api.url, "--certificate-authority", path]
    return build


def _ca_path(path: str) -> Callable[[Path, FakeApiServer], list[str]]:
    def build(folder: Path, api: FakeApiServer) -> list[str]:
        return ["-s", api.url, "--certificate-authority", path.format(d=folder), "-t", "2"]
    return build


def _ca_fifo(folder: Path, api: FakeApiServer) -> list[str]:
    return ["-s", api.url, "--certificate-authority", _fifo(folder), "-t", "1"]


def _ca_in_private_folder(folder: Path, api: FakeApiServer) -> list[str]:
    private = folder / "private"
    private.mkdir(mode=0o700)
    return ["-s", api.url, "--certificate-authority", _public_ca(private, api)]


def _client(cert: Optional[bytes], key: Optional[bytes], cert_mode: int = 0o644
            ) -> Callable[[Path, FakeApiServer], list[str]]:
    def build(folder: Path, api: FakeApiServer) -> list[str]:
        args = ["-s", api.url, "--certificate-authority", _public_ca(folder, api)]
        args += ["--client-certificate",
                 str(folder / "client.crt") if cert is None else _write(folder / "client.crt", cert, cert_mode)]
        if key is not None:
            args += ["--client-key", _write(folder / "client.key", key)]
        return args
    return build


def _client_key_folder(folder: Path, api: FakeApiServer) -> list[str]:
    cert, _ = api.issue_client_cert(folder)
    return ["-s", api.url, "--certificate-authority", api.ca_file, "--client-certificate", cert,
            "--client-key", str(folder)]


def _client_cert_without_key(folder: Path, api: FakeApiServer) -> list[str]:
    cert, _ = api.issue_client_cert(folder)
    return ["-s", api.url, "--certificate-authority", api.ca_file, "--client-certificate", cert]


def _client_key_mismatch(folder: Path, api: FakeApiServer) -> list[str]:
    cert, _ = api.issue_client_cert(folder)
    _, other_key = api.issue_client_cert(folder)
    return ["-s", api.url, "--certificate-authority", api.ca_file, "--client-certificate", cert,
            "--client-key", other_key]


def _client_fifo(folder: Path, api: FakeApiServer) -> list[str]:
    return ["-s", api.url, "--certificate-authority", api.ca_file, "--client-certificate", _fifo(folder), "-t", "1"]


GARBAGE = bytes(range(256)) * 4
#: JSON nested deeper than Python's recursion limit: json.loads raises RecursionError, which is no ValueError.
DEEP_JSON = b'{"health":' + b"[" * LONG
DEEP_JWT = b"eyJhbGciOiJub25lIn0." + base64.urlsafe_b64encode(b"[" * 40 * KIB).rstrip(b"=") + b".c2ln\n"
BIG = 50 * MIB
OK_LINE = "K8S_HEALTH OK - readyz: all 33 sub-checks passed"
HINT = "check the path and that the monitoring user may read it"
PEM_HINT = "give the cluster CA, e.g. /etc/kubernetes/pki/ca.crt"
NO_PEM = "K8S_HEALTH UNKNOWN - --certificate-authority"
DEADLINE_FILES = "K8S_HEALTH UNKNOWN - the 1 s deadline (-t) ran out while reading the kubeconfig and credentials"
DEADLINE_TLS = "K8S_HEALTH UNKNOWN - the 1 s deadline (-t) ran out while reading the TLS files"

Build = Callable[[Path, FakeApiServer], list[str]]


@dataclass(frozen=True)
class Files:
    """One file case: the arguments (built from a folder everyone can reach and the token server) and the outcome."""

    build: Build
    code: int
    expected: Expected
    as_nobody: bool = False
    seconds: float = 10.0
    #: The configuration is usable, so the server is asked (and answers 401 to a wrong token).
    asks: bool = False


FILE_CASES = [
    # -- token file ------------------------------------------------------------------------------------------
    pytest.param(Files(_token_file(b"right-token\r\n"), 0, OK_LINE), id="OK-token-file-crlf"),
    pytest.param(Files(_token_file(b"  \t right-token \t \n\n"), 0, OK_LINE), id="OK-token-file-spaces-around"),
    pytest.param(Files(_token_file(b"\r\n right-token\r\n\r\n"), 0, OK_LINE), id="OK-token-file-crlf-lines-around"),
    pytest.param(Files(_token_path("{d}/missing"), 3, "K8S_HEALTH UNKNOWN - cannot read token file {d}/missing: No "
                                                      f"such file or directory; {HINT}"),
                 id="UNKNOWN-token-file-missing"),
    pytest.param(Files(_token_path("{d}"), 3, "K8S_HEALTH UNKNOWN - token file {d} is a directory: give the file"),
                 id="UNKNOWN-token-file-directory"),
    pytest.param(Files(_token_file(b""), 3, "K8S_HEALTH UNKNOWN - token file {d}/token is empty: write the token into "
                                            "it (kubectl create token SA or a service-account-token Secret)"),
                 id="UNKNOWN-token-file-empty"),
    pytest.param(Files(_token_file(b" \r\n\t\n"), 3, Prefix("K8S_HEALTH UNKNOWN - token file {d}/token is empty: ")),
                 id="UNKNOWN-token-file-only-whitespace"),
    pytest.param(Files(_token_file(GARBAGE), 3,
                       "K8S_HEALTH UNKNOWN - token file {d}/token holds binary data, not a bearer token"),
                 id="UNKNOWN-token-file-binary-garbage"),
    pytest.param(Files(_token_file(b"right\x00token\n"), 3,
                       "K8S_HEALTH UNKNOWN - the token from --token-file {d}/token contains spaces or control "
                       "characters: a bearer token is one word of printable characters"),
                 id="UNKNOWN-token-file-nul-inside"),
    pytest.param(Files(_token_file(b"right-token\nsecond-line\n"), 3,
                       Prefix("K8S_HEALTH UNKNOWN - the token from --token-file {d}/token contains spaces")),
                 id="UNKNOWN-token-file-two-lines"),
    pytest.param(Files(_token_file(b"a" * BIG), 3,
                       "K8S_HEALTH UNKNOWN - token file {d}/token is larger than 64 KiB: check the path"),
                 id="UNKNOWN-token-file-50MB"),
    pytest.param(Files(_token_path("/dev/zero"), 3,
                       "K8S_HEALTH UNKNOWN - token file /dev/zero is larger than 64 KiB: check the path"),
                 id="UNKNOWN-token-file-dev-zero"),
    pytest.param(Files(_token_fifo, 3, DEADLINE_FILES, seconds=1 + 1.5), id="UNKNOWN-token-file-fifo-never-written"),
    # A JWT's payload is read (no signature check) only to name expiry: a hostile one must not break the run.
    pytest.param(Files(_token_file(DEEP_JWT), 3, "K8S_HEALTH UNKNOWN - readyz: HTTP 401 Unauthorized: the token from "
                                                 "--token-file {d}/token was rejected (expired or revoked?)",
                       asks=True),
                 id="UNKNOWN-token-file-jwt-with-deeply-nested-payload"),
    pytest.param(Files(_token_file(b"right-token\n", 0o600), 3, "K8S_HEALTH UNKNOWN - cannot read token file "
                                                                "{d}/token: Permission denied; " + HINT,
                       as_nobody=True), id="UNKNOWN-token-file-unreadable"),
    # -- kubeconfig ------------------------------------------------------------------------------------------
    pytest.param(Files(_kubeconfig(None), 3, "K8S_HEALTH UNKNOWN - cannot read kubeconfig {d}/config: No such file or "
                                             f"directory; {HINT}"), id="UNKNOWN-kubeconfig-missing"),
    pytest.param(Files(_kubeconfig_path("{d}"), 3, "K8S_HEALTH UNKNOWN - kubeconfig {d} is a directory: give the file"),
                 id="UNKNOWN-kubeconfig-directory"),
    pytest.param(Files(_kubeconfig(GARBAGE), 3, Prefix("K8S_HEALTH UNKNOWN - kubeconfig {d}/config is not valid YAML")),
                 id="UNKNOWN-kubeconfig-binary-garbage"),
    pytest.param(Files(_kubeconfig(b"[" * LONG), 3, Prefix("K8S_HEALTH UNKNOWN - kubeconfig {d}/config is not valid "
                                                          "YAML")),
                 id="UNKNOWN-kubeconfig-100k-nested-lists"),
    pytest.param(Files(_kubeconfig(b"- clusters\n- users\n"), 3, "K8S_HEALTH UNKNOWN - kubeconfig {d}/config is not a "
                                                                  "kubeconfig (a mapping with clusters, users, "
                                                                  "contexts)"),
                 id="UNKNOWN-kubeconfig-a-list"),
    pytest.param(Files(_kubeconfig(b"a" * BIG), 3,
                       "K8S_HEALTH UNKNOWN - kubeconfig {d}/config is larger than 4 MiB: check the path"),
                 id="UNKNOWN-kubeconfig-50MB"),
    pytest.param(Files(_kubeconfig_ca_data(b"not a certificate\n"), 3,
                       Prefix("K8S_HEALTH UNKNOWN - certificate-authority-data of cluster 'c' in {d}/config holds no "
                              "usable PEM certificate")),
                 id="UNKNOWN-kubeconfig-ca-data-that-is-no-certificate"),
    pytest.param(Files(_kubeconfig_path("/dev/zero"), 3,
                       "K8S_HEALTH UNKNOWN - kubeconfig /dev/zero is larger than 4 MiB: check the path"),
                 id="UNKNOWN-kubeconfig-dev-zero"),
    pytest.param(Files(_kubeconfig_fifo, 3, DEADLINE_FILES, seconds=1 + 1.5),
                 id="UNKNOWN-kubeconfig-fifo-never-written"),
    pytest.param(Files(_kubeconfig(b"{}\n", 0o600), 3, "K8S_HEALTH UNKNOWN - cannot read kubeconfig {d}/config: "
                                                       f"Permission denied; {HINT}", as_nobody=True),
                 id="UNKNOWN-kubeconfig-unreadable"),
    # -- --certificate-authority ----------------------------------------------------------------------------
    pytest.param(Files(_ca(None), 3, "K8S_HEALTH UNKNOWN - --certificate-authority {d}/ca.crt does not exist: check "
                                     "the path"), id="UNKNOWN-ca-missing"),
    pytest.param(Files(_ca_path("{d}"), 3,
                       "K8S_HEALTH UNKNOWN - --certificate-authority {d} is a directory: give the PEM file"),
                 id="UNKNOWN-ca-directory"),
    pytest.param(Files(_ca(b""), 3, "K8S_HEALTH UNKNOWN - --certificate-authority {d}/ca.crt holds no usable PEM "
                                    f"certificate (no certificate or crl found): {PEM_HINT}"), id="UNKNOWN-ca-empty"),
    pytest.param(Files(_ca(GARBAGE), 3, Prefix(f"{NO_PEM} {{d}}/ca.crt holds no usable PEM certificate")),
                 id="UNKNOWN-ca-binary-garbage"),
    pytest.param(Files(_ca(b"a" * BIG), 3, Prefix(f"{NO_PEM} {{d}}/ca.crt holds no usable PEM certificate")),
                 id="UNKNOWN-ca-50MB"),
    pytest.param(Files(_ca_path("/dev/zero"), 3, Prefix(f"{NO_PEM} /dev/zero holds no usable PEM certificate")),
                 id="UNKNOWN-ca-dev-zero"),
    pytest.param(Files(_ca_fifo, 3, DEADLINE_TLS, seconds=1 + 1.5), id="UNKNOWN-ca-fifo-never-written"),
    pytest.param(Files(_ca(b"-----BEGIN CERTIFICATE-----\n", 0o600), 3,
                       "K8S_HEALTH UNKNOWN - --certificate-authority {d}/ca.crt is not readable by this user: check "
                       "its permissions", as_nobody=True), id="UNKNOWN-ca-unreadable"),
    # Not "does not exist": root finds the file, and the operator would be misled.
    pytest.param(Files(_ca_in_private_folder, 3, "K8S_HEALTH UNKNOWN - --certificate-authority {d}/private/ca.crt "
                                                 "cannot be reached (Permission denied): check the permissions of its "
                                                 "folders for the monitoring user", as_nobody=True),
                 id="UNKNOWN-ca-in-a-folder-nobody-may-enter"),
    # -- --client-certificate / --client-key ----------------------------------------------------------------
    pytest.param(Files(_client(None, b"key"), 3, "K8S_HEALTH UNKNOWN - --client-certificate {d}/client.crt does not "
                                                 "exist: check the path"),
                 id="UNKNOWN-client-cert-missing"),
    pytest.param(Files(_client_key_folder, 3, "K8S_HEALTH UNKNOWN - --client-key {d} is a directory: give the PEM "
                                              "file"), id="UNKNOWN-client-key-directory"),
    pytest.param(Files(_client(GARBAGE, GARBAGE), 3, "K8S_HEALTH UNKNOWN - cannot use --client-certificate "
                                                     "{d}/client.crt: not PEM, or the key is missing or encrypted: "
                                                     "give a PEM certificate and its unencrypted key"),
                 id="UNKNOWN-client-cert-binary-garbage"),
    pytest.param(Files(_client_cert_without_key, 3, ": it holds no private key: give --client-key"),
                 id="UNKNOWN-client-cert-without-key"),
    pytest.param(Files(_client_key_mismatch, 3, ": the key does not belong to the certificate"),
                 id="UNKNOWN-client-key-mismatch"),
    pytest.param(Files(_client(b"-----BEGIN CERTIFICATE-----\n", None, 0o600), 3,
                       "K8S_HEALTH UNKNOWN - --client-certificate {d}/client.crt is not readable by this user: check "
                       "its permissions", as_nobody=True), id="UNKNOWN-client-cert-unreadable"),
    pytest.param(Files(_client_fifo, 3, DEADLINE_TLS, seconds=1 + 1.5), id="UNKNOWN-client-cert-fifo-never-written"),
]


@pytest.mark.parametrize("case", FILE_CASES)
def test_hostile_files(case: Files, token_api: FakeApiServer, public_dir: Path, request: pytest.FixtureRequest
                       ) -> None:
    command = _as_nobody() if case.as_nobody else None
    token_api.clear_requests()
    run = run_plugin(*case.build(public_dir, token_api), command=command)
    assert_plugin_output(run, case.code, case.expected, request, d=public_dir)
    assert run.seconds < case.seconds, f"took {run.seconds:.2f} s"
    if case.code != 0 and not case.asks:
        assert token_api.requests == [], "a broken configuration must stop the run before any request"


# ============================================================================================================
# server answers and TLS
# ============================================================================================================

Routes = Callable[[], dict[str, Reply]]


def readyz(reply: Reply) -> Routes:
    return lambda: {"/readyz": reply}


def big_readyz(status: int, size: int, headers: tuple[tuple[str, str], ...] = ()) -> Routes:
    """Built when the case runs, so a 100 MB body is not held by the module for the whole session."""
    return lambda: {"/readyz": Reply(status, b"x" * size, headers)}


def gzip_bomb() -> dict[str, Reply]:
    """About 100 KB on the wire, 100 MiB once decompressed (requests asks for gzip by default)."""
    return {"/readyz": Reply(200, gzip.compress(b"ok\n" + b" " * (100 * MIB), 1), (("Content-Encoding", "gzip"),))}


def failed_checks(*names: bytes, passed: int = 1) -> bytes:
    head = b"".join(b"[+]passing-%d ok\n" % n for n in range(passed))
    return head + b"".join(b"[-]" + name + b" failed: reason withheld\n" for name in names) + b"readyz check failed\n"


class _NotYetValidCA(trustme.CA):
    """trustme can issue certificates valid from the future; FakeApiServer only passes ``not_after``."""

    def issue_cert(self, *identities: str, **kwargs: Any) -> trustme.LeafCert:
        kwargs["not_before"] = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=3)
        return super().issue_cert(*identities, **kwargs)


def _stranger_client_cert(folder: Path, api: FakeApiServer) -> list[str]:
    leaf = clientcert.issue(trustme.CA(), "intruder", "system:masters")
    cert, key = folder / "stranger.crt", folder / "stranger.key"
    cert.write_bytes(leaf.cert_pem)
    key.write_bytes(leaf.key_pem)
    return ["--client-certificate", str(cert), "--client-key", str(key)]


@dataclass(frozen=True)
class Serve:
    """One server-side case: what the fake answers, how the plugin is pointed at it, and what must come out."""

    routes: Routes
    code: int
    expected: Expected
    args: tuple[str, ...] = ()
    #: "own": --certificate-authority of the server's CA; "stranger": another CA; "none": no CA option.
    trust: str = "own"
    #: Scheme the plugin is told to use (None: the server's own).
    scheme: Optional[str] = None
    tls: bool = True
    server_names: tuple[str, ...] = (HOST, "localhost")
    cert_not_after: Optional[datetime.datetime] = None
    ca: Optional[Callable[[], trustme.CA]] = None
    require_client_cert: bool = False
    client_files: Optional[Callable[[Path, FakeApiServer], list[str]]] = None
    seconds: float = 10.0


HAPROXY_503 = (b"<html><body><h1>503 Service Unavailable</h1>\nNo server is available to handle this request.\n"
               b"</body></html>\n")
NGINX_503 = (b"<html>\r\n<head><title>503 Service Temporarily Unavailable</title></head>\r\n<body>\r\n<center><h1>503 "
             b"Service Temporarily Unavailable</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n")
CHUNKED_OK = (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nTransfer-Encoding: chunked\r\n"
              b"Connection: close\r\n\r\nb\r\n[+]ping ok\n\r\nb\r\n[+]etcd ok\n\r\n14\r\nreadyz check passed\n\r\n"
              b"0\r\n\r\n")
CHUNKED_500 = (b"HTTP/1.1 500 Internal Server Error\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"b\r\n[+]ping ok\n\r\n20\r\n[-]etcd failed: reason withheld\n\r\n14\r\nreadyz check failed\n\r\n"
               b"0\r\n\r\n")
PAST = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=3)
TLS_UNTRUSTED = ("K8S_HEALTH CRITICAL - readyz: TLS error: the server certificate is not trusted: pass the cluster CA "
                 "with --certificate-authority (kubeadm: /etc/kubernetes/pki/ca.crt)")
NO_LIST = "K8S_HEALTH OK - readyz: HTTP 200 without a sub-check list"
BROKE_OFF = Prefix("K8S_HEALTH CRITICAL - readyz: {host} broke off its answer to {url}/readyz?verbose: ")

SERVER_CASES = [
    # -- bodies ----------------------------------------------------------------------------------------------
    # The status decides: garbage with 200 is OK, but the line must say the body was not understood.
    pytest.param(Serve(readyz(Reply(200, GARBAGE)), 0, NO_LIST), id="OK-server-garbage-200"),
    pytest.param(Serve(readyz(Reply(200, bytes(range(255, -1, -1)) * 4)), 0, Prefix(f"{NO_LIST}: \ufffd\ufffd")),
                 id="OK-server-garbage-200-high-bytes-first"),
    pytest.param(Serve(readyz(Reply(500, GARBAGE)), 2,
                       Prefix("K8S_HEALTH CRITICAL - readyz: HTTP 500 Internal Server Error: ")),
                 id="CRITICAL-server-garbage-500"),
    pytest.param(Serve(readyz(Reply(500, failed_checks(b"\xff\xfeetcd", b"caf\xe9"))), 2,
                     "K8S_HEALTH CRITICAL - readyz: \ufffd\ufffdetcd, caf\ufffd failed (2 of 3 sub-checks)"),
                 id="CRITICAL-server-non-utf8-check-names"),
    pytest.param(Serve(readyz(Reply(200, b"[+]caf\xe9 ok\n[+]\xff ok\nreadyz check passed\n")), 0,
                     "K8S_HEALTH OK - readyz: all 2 sub-checks passed", args=("-vv",)),
                 id="OK-server-non-utf8-check-names-passing"),
    pytest.param(Serve(readyz(Reply(500)), 2, "K8S_HEALTH CRITICAL - readyz: HTTP 500 Internal Server Error"),
                 id="CRITICAL-server-500-without-body"),
    pytest.param(Serve(readyz(Reply(200)), 0, NO_LIST), id="OK-server-empty-200"),
    pytest.param(Serve(big_readyz(500, 100 * MIB), 2,
                       Prefix("K8S_HEALTH CRITICAL - readyz: HTTP 500 Internal Server Error: xxxxxxxxxx"),
                       args=("-vv",), seconds=5), id="CRITICAL-server-100MB-body-500"),
    pytest.param(Serve(big_readyz(200, 100 * MIB), 0, Prefix(f"{NO_LIST}: xxxxxxxxxx"), seconds=5),
                 id="OK-server-100MB-body-200"),
    pytest.param(Serve(gzip_bomb, 0, "K8S_HEALTH OK - readyz: ok", seconds=5), id="OK-server-gzip-bomb"),
    pytest.param(Serve(readyz(Reply(200, GARBAGE, (("Content-Encoding", "gzip"),))), 2,
                       "K8S_HEALTH CRITICAL - readyz: {host} sent an answer to {url}/readyz?verbose that cannot be "
                       "decoded (broken Content-Encoding)"),
                 id="CRITICAL-server-gzip-that-is-not-gzip"),
    pytest.param(Serve(readyz(Reply(200, DEEP_JSON)), 0, Prefix("K8S_HEALTH OK - readyz: ")),
                 id="OK-server-deeply-nested-json-200"),
    pytest.param(Serve(readyz(Reply(503, DEEP_JSON)), 2, Prefix("K8S_HEALTH CRITICAL - readyz: HTTP 503 Service "
                                                                "Unavailable")),
                 id="CRITICAL-server-deeply-nested-json-503"),
    pytest.param(Serve(readyz(Reply(403, DEEP_JSON, (("Content-Type", "application/json"),))), 3,
                       Prefix("K8S_HEALTH UNKNOWN - readyz: HTTP 403 Forbidden")),
                 id="UNKNOWN-server-deeply-nested-json-403"),
    pytest.param(Serve(lambda: {"/health": Reply(503, DEEP_JSON)}, 2, Prefix("K8S_HEALTH CRITICAL - health: HTTP 503 "
                                                                             "Service Unavailable"),
                       args=("--component", "etcd")),
                 id="CRITICAL-etcd-deeply-nested-json-503"),
    # -- check names -----------------------------------------------------------------------------------------
    pytest.param(Serve(readyz(Reply(500, failed_checks(b"a|b", b"c||d"))), 2,
                       "K8S_HEALTH CRITICAL - readyz: a/b, c/d failed (2 of 3 sub-checks)", args=("-v",)),
                 id="CRITICAL-server-check-names-with-pipes"),
    pytest.param(Serve(readyz(Reply(500, failed_checks(b"it's", b"x=1", b"'quoted'"))), 2,
                       "K8S_HEALTH CRITICAL - readyz: it's, x=1, 'quoted' failed (3 of 4 sub-checks)", args=("-v",)),
                 id="CRITICAL-server-check-names-with-quotes-and-equals"),
    pytest.param(Serve(readyz(Reply(500, failed_checks(b"new\nline", b"carriage\rreturn", b"esc\x1b[31mred\x1b[0m"))),
                       2, "K8S_HEALTH CRITICAL - readyz: new, carriage, esc [31mred [0m failed (3 of 4 sub-checks)",
                       args=("-vv",)),
                 id="CRITICAL-server-check-names-with-newlines-and-escapes"),
    pytest.param(Serve(readyz(Reply(500, failed_checks(b"n" * 500))), 2,
                       f"K8S_HEALTH CRITICAL - readyz: {'n' * 97}... failed (1 of 2 sub-checks)", args=("-v",)),
                 id="CRITICAL-server-500-character-check-name"),
    pytest.param(Serve(readyz(Reply(500, failed_checks(*(b"check-%d" % n for n in range(5000)), passed=0))), 2,
                       "K8S_HEALTH CRITICAL - readyz: check-0, check-1, check-2 and 4997 more failed "
                       "(5000 of 5000 sub-checks)", args=("-v",)),
                 id="CRITICAL-server-5000-failed-sub-checks"),
    pytest.param(Serve(readyz(Reply(200, b"".join(b"[+]check-%d ok\n" % n for n in range(5000)) +
                                    b"readyz check passed\n")), 0,
                       "K8S_HEALTH OK - readyz: all 5000 sub-checks passed"),
                 id="OK-server-5000-passed-sub-checks"),
    # -- timing ----------------------------------------------------------------------------------------------
    # A slow answer is the server's problem like a missing one: CRITICAL, not the UNKNOWN of the plugin's own alarm.
    pytest.param(Serve(readyz(Reply(200, b"[+]ping ok\n" * 10, trickle=1.0)), 2,
                       ("K8S_HEALTH CRITICAL - readyz: {url}/readyz?verbose did not answer within the 2 s deadline "
                        "(-t)",
                        "K8S_HEALTH CRITICAL - readyz: {url}/readyz?verbose did not finish its answer within the 2 s "
                        "deadline (-t)"), args=("-t", "2"), seconds=2 + 1.5),
                 id="CRITICAL-server-trickles-one-byte-per-second"),
    pytest.param(Serve(readyz(Reply(200, hang=True)), 2,
                       "K8S_HEALTH CRITICAL - readyz: {url}/readyz?verbose did not answer within the 1 s deadline (-t)",
                       args=("-t", "1"), seconds=1 + 1.5), id="CRITICAL-server-accepts-and-never-answers"),
    pytest.param(Serve(readyz(Reply(200, b"[+]ping ok\n" * 1000, close_mid_body=True)), 2, BROKE_OFF),
                 id="CRITICAL-server-closes-mid-body"),
    # -- framing ---------------------------------------------------------------------------------------------
    pytest.param(Serve(readyz(Reply(200, raw=b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n"
                                             b"[+]ping ok\n[+]etcd ok\nreadyz check passed\n")), 0,
                       "K8S_HEALTH OK - readyz: all 2 sub-checks passed"),
                 id="OK-server-http10-without-content-length"),
    pytest.param(Serve(readyz(Reply(200, raw=CHUNKED_OK)), 0, "K8S_HEALTH OK - readyz: all 2 sub-checks passed"),
                 id="OK-server-chunked-encoding"),
    pytest.param(Serve(readyz(Reply(200, raw=CHUNKED_500)), 2,
                       "K8S_HEALTH CRITICAL - readyz: etcd failed (1 of 2 sub-checks)", args=("--no-reasons",)),
                 id="CRITICAL-server-chunked-500"),
    pytest.param(Serve(readyz(Reply(200, raw=b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nok\r\n")),
                       2, BROKE_OFF), id="CRITICAL-server-chunked-garbage"),
    pytest.param(Serve(readyz(Reply(200, raw=b"\x00\x01garbage\xff\r\n\r\n")), 2,
                       "K8S_HEALTH CRITICAL - readyz: {host} answered {url}/readyz?verbose with something that is "
                       "not HTTP: check the port and scheme"),
                 id="CRITICAL-server-garbage-instead-of-http"),
    pytest.param(Serve(readyz(Reply(200, raw=b"HTTP/1.1 200 OK\r\n" +
                                             b"".join(b"X-Junk-%d: y\r\n" % n for n in range(200)) +
                                             b"Content-Length: 2\r\n\r\nok")), 2,
                       "K8S_HEALTH CRITICAL - readyz: request to {url}/readyz?verbose failed: got more than 100 "
                       "headers"), id="CRITICAL-server-200-headers"),
    pytest.param(Serve(readyz(Reply(200, raw=b"HTTP/1.1 999 Whatever\r\nContent-Length: 2\r\n\r\nok")), 3,
                       "K8S_HEALTH UNKNOWN - readyz: unexpected answer HTTP 999 Whatever: ok"),
                 id="UNKNOWN-server-status-999"),
    # -- statuses --------------------------------------------------------------------------------------------
    pytest.param(Serve(readyz(Reply(429, b"Too many requests, please try again later.\n", (("Retry-After", "30"),))),
                       3, "K8S_HEALTH UNKNOWN - readyz: HTTP 429 Too Many Requests (Retry-After 30 s): the server is "
                          "throttling requests"), id="UNKNOWN-server-429-retry-after-seconds"),
    pytest.param(Serve(readyz(Reply(429, b"", (("Retry-After", "Wed, 21 Oct 2015 07:28:00 GMT"),))), 3,
                       "K8S_HEALTH UNKNOWN - readyz: HTTP 429 Too Many Requests (Retry-After Wed, 21 Oct 2015 07:28:00 "
                       "GMT): the server is throttling requests"), id="UNKNOWN-server-429-retry-after-http-date"),
    pytest.param(Serve(readyz(Reply(503, NGINX_503, (("Content-Type", "text/html"), ("Server", "nginx")))), 2,
                       Prefix("K8S_HEALTH CRITICAL - readyz: HTTP 503 Service Unavailable: <html> <head><title>503 "
                              "Service ")),
                 id="CRITICAL-server-503-html-from-nginx"),
    pytest.param(Serve(readyz(Reply(503, HAPROXY_503, (("Cache-Control", "no-cache"), ("Connection", "close"),
                                                       ("Content-Type", "text/html")))), 2,
                       Prefix("K8S_HEALTH CRITICAL - readyz: HTTP 503 Service Unavailable: ")),
                 id="CRITICAL-server-503-html-from-haproxy-connection-close"),
    pytest.param(Serve(healthy_routes, 0, "K8S_HEALTH OK - readyz: all 33 sub-checks passed",
                       args=("--warning-check", "g" * LONG)), id="OK-server-100kB-check-glob"),
    # -- TLS -------------------------------------------------------------------------------------------------
    pytest.param(Serve(healthy_routes, 2, "K8S_HEALTH CRITICAL - readyz: TLS error: the server certificate has "
                                          "expired: renew it (kubeadm certs renew)", cert_not_after=PAST),
                 id="CRITICAL-tls-expired-server-certificate"),
    pytest.param(Serve(healthy_routes, 2, "K8S_HEALTH CRITICAL - readyz: TLS error: the server certificate is not "
                                          "valid yet: check the clocks of both machines", ca=_NotYetValidCA),
                 id="CRITICAL-tls-server-certificate-not-yet-valid"),
    # OpenSSL checks the name with urllib3 2 and says only that it differs; urllib3 1.26 (the Debian package)
    # checks it itself and names the names the certificate holds.
    pytest.param(Serve(healthy_routes, 2, ("K8S_HEALTH CRITICAL - readyz: TLS error: the server certificate does not "
                                           "name {host}: give --tls-server-name kubernetes (or another name it "
                                           "holds)",
                                           "K8S_HEALTH CRITICAL - readyz: TLS error: the server certificate is valid "
                                           "for 'kubernetes', 'kubernetes.default', not 127.0.0.1: give "
                                           "--tls-server-name with one of those names"),
                       server_names=("kubernetes", "kubernetes.default")),
                 id="CRITICAL-tls-wrong-host-name"),
    pytest.param(Serve(healthy_routes, 2, TLS_UNTRUSTED, trust="stranger"), id="CRITICAL-tls-ca-of-another-cluster"),
    pytest.param(Serve(healthy_routes, 2, TLS_UNTRUSTED, trust="none"), id="CRITICAL-tls-unknown-ca-default-bundle"),
    pytest.param(Serve(healthy_routes, 2, "K8S_HEALTH CRITICAL - readyz: TLS error: {host} demands a client "
                                          "certificate: give --client-certificate and --client-key",
                       require_client_cert=True), id="CRITICAL-tls-client-certificate-demanded-not-given"),
    pytest.param(Serve(healthy_routes, 2, "K8S_HEALTH CRITICAL - readyz: TLS error: {host} does not trust the client "
                                          "certificate: use one signed by the cluster CA",
                       require_client_cert=True, client_files=_stranger_client_cert),
                 id="CRITICAL-tls-client-certificate-of-another-ca"),
    pytest.param(Serve(healthy_routes, 2, ("K8S_HEALTH CRITICAL - readyz: {host} reset the connection (a TLS port? "
                                           "use https://); token withheld (plain http)",
                                           "K8S_HEALTH CRITICAL - readyz: {host} answered http://{host}/readyz?verbose "
                                           "with something that is not HTTP: check the port and scheme; token "
                                           "withheld (plain http)",
                                           "K8S_HEALTH CRITICAL - readyz: {host} closed the connection without "
                                           "answering http://{host}/readyz?verbose; token withheld (plain http)"),
                       trust="none", scheme="http"), id="CRITICAL-tls-plain-http-to-a-tls-port"),
    pytest.param(Serve(readyz(Reply(400, raw=b"HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an "
                                             b"HTTPS server.\n")), 3,
                       "HTTP 400 Bad Request: Client sent an HTTP request to an HTTPS server.", tls=False,
                       trust="none"),
                 id="UNKNOWN-tls-plain-http-to-a-go-tls-port"),
    pytest.param(Serve(healthy_routes, 2, "K8S_HEALTH CRITICAL - readyz: TLS error: {host} does not speak TLS on this "
                                          "port: check the port, or use http://", tls=False, scheme="https"),
                 id="CRITICAL-tls-spoken-to-a-plain-port"),
]


@pytest.mark.parametrize("case", SERVER_CASES)
def test_hostile_server(case: Serve, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    ca = case.ca() if case.ca is not None else None
    with FakeApiServer(case.routes(), tls=case.tls, server_names=case.server_names, ca=ca,
                       cert_not_after=case.cert_not_after, require_client_cert=case.require_client_cert) as server:
        host = f"{HOST}:{server.port}"
        url = f"{case.scheme}://{host}" if case.scheme else server.url
        args = ["-s", url]
        if case.trust == "own":
            args += ["--certificate-authority", server.ca_file]
        elif case.trust == "stranger":
            stranger = tmp_path / "other-cluster-ca.crt"
            trustme.CA().cert_pem.write_to_path(str(stranger))
            args += ["--certificate-authority", str(stranger)]
        if case.client_files is not None:
            args += case.client_files(tmp_path, server)
        run = run_plugin(*args, *case.args, env={"K8S_HEALTH_TOKEN": SECRET})
    assert_plugin_output(run, case.code, case.expected, request, url=url, host=host)
    assert run.seconds < case.seconds, f"took {run.seconds:.2f} s"


# ============================================================================================================
# redirects: never followed, the token never travels
# ============================================================================================================

@pytest.mark.parametrize(("status", "reason", "other_scheme"), [
    pytest.param(301, "Moved Permanently", "https", id="UNKNOWN-redirect-301-to-another-https-server"),
    pytest.param(302, "Found", "http", id="UNKNOWN-redirect-302-to-a-plain-http-server"),
    pytest.param(307, "Temporary Redirect", "https", id="UNKNOWN-redirect-307-to-another-https-server"),
])
def test_hostile_redirect(status: int, reason: str, other_scheme: str, request: pytest.FixtureRequest) -> None:
    with FakeApiServer(healthy_routes(), tls=other_scheme == "https", token=SECRET, anonymous=False) as other:
        target = f"{other.url}/readyz?verbose"
        reply = Reply(status, b"<a href='elsewhere'>moved</a>\n", (("Location", target),))
        with FakeApiServer({"/readyz": reply}, token=SECRET, anonymous=False) as server:
            run = run_plugin("-s", server.url, "--certificate-authority", server.ca_file,
                             env={"K8S_HEALTH_TOKEN": SECRET})
            sent = [seen.header("Authorization") for seen in server.requests]
        elsewhere = other.requests
    assert_plugin_output(run, 3, f"K8S_HEALTH UNKNOWN - readyz: HTTP {status} {reason}: redirect to {target} not "
                                 "followed; point -s at the API server itself", request)
    assert sent == [f"Bearer {SECRET}"], "the token went to the server named with -s, once"
    assert elsewhere == [], "the redirect target was contacted"


# ============================================================================================================
# memory: a hostile body costs at most the 1 MiB the plugin reads
# ============================================================================================================

@pytest.mark.parametrize(("status", "headers", "code"), [
    pytest.param(500, (), 2, id="CRITICAL-rss-100MB-body-500"),
    # requests reads a redirect's whole body even with allow_redirects=False, unless the plugin prevents it.
    pytest.param(302, (("Location", "https://127.0.0.1:1/readyz"),), 3, id="UNKNOWN-rss-100MB-body-of-a-redirect"),
])
def test_hostile_body_memory_is_bounded(status: int, headers: tuple[tuple[str, str], ...], code: int,
                                        tmp_path: Path, request: pytest.FixtureRequest) -> None:
    time_command = "/usr/bin/time"
    if not os.access(time_command, os.X_OK):
        pytest.skip("/usr/bin/time is not installed")
    report = tmp_path / "time.txt"
    with FakeApiServer(big_readyz(status, 100 * MIB, headers)()) as server:
        run = run_plugin("-s", server.url, "--certificate-authority", server.ca_file,
                         command=[time_command, "-v", "-o", str(report), str(plugin())])
    assert_plugin_output(run, code, Prefix(f"K8S_HEALTH {STATES[code]} - readyz: HTTP {status} "), request)
    match = re.search(r"Maximum resident set size \(kbytes\): (\d+)", report.read_text())
    assert match is not None, report.read_text()
    assert int(match[1]) < 64 * 1024, f"max RSS {int(match[1]) // 1024} MiB"
    assert run.seconds < 5, f"took {run.seconds:.2f} s"


# ============================================================================================================
# a request the server cuts off: the handshake had completed, so TLS must not be blamed
# ============================================================================================================

@pytest.mark.parametrize("size", [
    pytest.param(4 * 120 * KIB, id="UNKNOWN-server-414-for-a-480kB-request-line"),
])
def test_hostile_request_cut_off_is_not_blamed_on_the_handshake(size: int, request: pytest.FixtureRequest) -> None:
    """A server that reads part of a huge request line, answers 414 and closes races the plugin's write: the
    plugin would see a TLS EOF and could blame the handshake. It keeps its URLs small instead."""
    part = size // 4
    excludes = [arg for n in range(4) for arg in ("--exclude", chr(ord("a") + n) * part)]
    with FakeApiServer(healthy_routes()) as server:
        # The plugin refuses to build such a URL at all, so the race cannot start: no request reaches the server.
        run = run_plugin("-s", server.url, "--certificate-authority", server.ca_file, *excludes,
                         env={"K8S_HEALTH_TOKEN": SECRET})
        assert_plugin_output(run, 3, "K8S_HEALTH UNKNOWN - the --exclude names add up to more than 4 KiB, more "
                                     "than a URL should carry: name the sub-checks to skip, not other text", request)
        assert server.requests == []


# ============================================================================================================
# long output (-v, -vv): every line is one line, without "|" (Nagios reads perfdata after the first "|")
# ============================================================================================================

FORGED = "FORGED LINE"

def _ca_file_named(name: str) -> Callable[[Path, FakeApiServer], list[str]]:
    def build(folder: Path, api: FakeApiServer) -> list[str]:
        path = folder / name
        path.write_bytes(Path(api.ca_file).read_bytes())
        return ["-s", api.url, "--certificate-authority", str(path)]
    return build


def _token_file_named(name: str) -> Callable[[Path, FakeApiServer], list[str]]:
    def build(folder: Path, api: FakeApiServer) -> list[str]:
        path = folder / name
        path.write_text("long-output-token-0815\n")
        return ["-s", api.url, "--certificate-authority", api.ca_file, "--token-file", str(path)]
    return build


def _context_named(name: str) -> Callable[[Path, FakeApiServer], list[str]]:
    def build(folder: Path, api: FakeApiServer) -> list[str]:
        text = kubeconfig_text(api.url, f"certificate-authority: {api.ca_file}", context=name)
        return ["--kubeconfig", _write(folder / "config", text.encode(), 0o600)]
    return build


def _flags(*args: str) -> Callable[[Path, FakeApiServer], list[str]]:
    def build(folder: Path, api: FakeApiServer) -> list[str]:
        return ["-s", api.url, "--certificate-authority", api.ca_file, *args]
    return build


def _server_path(path: str) -> Callable[[Path, FakeApiServer], list[str]]:
    def build(folder: Path, api: FakeApiServer) -> list[str]:
        return ["-s", api.url + path, "--certificate-authority", api.ca_file]
    return build


@dataclass(frozen=True)
class Long:
    routes: Routes
    build: Build
    code: int
    expected: Expected
    verbosity: str = "-vv"


LONG_OUTPUT_CASES = [
    pytest.param(Long(healthy_routes, _flags("--exclude", "a|b"), 0, OK_LINE),
                 id="OK-long-output-pipe-in-exclude"),
    pytest.param(Long(healthy_routes, _flags("--exclude", f"a\n{FORGED}"), 0, OK_LINE),
                 id="OK-long-output-newline-in-exclude"),
    pytest.param(Long(healthy_routes, _flags("--warning-check", "x|y"), 0, OK_LINE, "-v"),
                 id="OK-long-output-pipe-in-check-glob"),
    pytest.param(Long(healthy_routes, _token_file_named("tok|en"), 0, OK_LINE),
                 id="OK-long-output-pipe-in-token-file-name"),
    pytest.param(Long(healthy_routes, _token_file_named(f"token\n{FORGED}"), 0, OK_LINE),
                 id="OK-long-output-newline-in-token-file-name"),
    pytest.param(Long(healthy_routes, _ca_file_named("c|a.crt"), 0, OK_LINE),
                 id="OK-long-output-pipe-in-ca-file-name"),
    pytest.param(Long(healthy_routes, _context_named(f"prod|eu\n{FORGED}"), 0, OK_LINE),
                 id="OK-long-output-pipe-and-newline-in-context-name"),
    pytest.param(Long(healthy_routes, _server_path("/proxy|x"), 3, "K8S_HEALTH UNKNOWN - readyz: HTTP 404 Not Found "
                                                                  "for {url}/proxy/x/readyz?verbose: this server does "
                                                                  "not serve that endpoint"),
                 id="UNKNOWN-long-output-pipe-in-server-path"),
    pytest.param(Long(readyz(Reply(200, hang=True)), _flags("--exclude", "a|b", "-t", "1"), 2,
                      "K8S_HEALTH CRITICAL - readyz: {url}/readyz?verbose&exclude=a/b did not answer within the 1 s "
                      "deadline (-t)", "-v"),
                 id="CRITICAL-long-output-pipe-in-exclude-of-a-silent-server"),
    pytest.param(Long(readyz(Reply(200, raw=b"HTTP/1.1 200 O|K\x1b[31m\r\nContent-Length: 2\r\n\r\nok")),
                      _flags(), 0, "K8S_HEALTH OK - readyz: ok"),
                 id="OK-long-output-pipe-and-escape-in-reason-phrase"),
    pytest.param(Long(readyz(Reply(500, failed_checks(b"a|b\x1b[2J"))), _flags(), 2,
                      "K8S_HEALTH CRITICAL - readyz: a/b [2J failed (1 of 2 sub-checks)"),
                 id="CRITICAL-long-output-pipe-and-escape-in-check-name"),
    pytest.param(Long(lambda: {"/readyz": Reply(500, failed_checks(b"etcd")),
                               "/readyz/etcd": Reply(500, b"internal server error: a|b\n" + FORGED.encode())},
                      _flags(), 2, "K8S_HEALTH CRITICAL - readyz: etcd failed (1 of 2 sub-checks)"),
                 id="CRITICAL-long-output-pipe-and-newline-in-reason"),
]


@pytest.mark.parametrize("case", LONG_OUTPUT_CASES)
def test_hostile_long_output(case: Long, public_dir: Path, request: pytest.FixtureRequest) -> None:
    with FakeApiServer(case.routes()) as server:
        url = server.url
        run = run_plugin(*case.build(public_dir, server), case.verbosity, env={"K8S_HEALTH_TOKEN": SECRET})
    assert_plugin_output(run, case.code, case.expected, request, url=url)
    lines = run.stdout.rstrip("\n").split("\n")
    assert not [line for line in lines if line.startswith(FORGED)], "a value with a newline forged an output line"
