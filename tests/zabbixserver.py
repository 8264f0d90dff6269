"""A private Zabbix server for the template tests: Debian's zabbix-server-pgsql on its own PostgreSQL cluster,
and the frontend's JSON-RPC API served by ``php -S``, everything on 127.0.0.1 with free ports, in one folder, and
stopped however the tests end (consumers.md section 6.6). Zabbix 6.0 is this Debian 12's; Zabbix 7.0 is Debian 13's,
run inside the root of tests/debianroot.py (a ``Place``), whose network and /tmp are the host's.

Nothing under /etc or /var is used: the cluster lives in the folder, and the frontend is a copy of
/usr/share/zabbix whose configuration path points into the folder.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, TypeVar

import pytest
from consumers import user_ids
from fakeapi import HOST

SCHEMA = Path("/usr/share/zabbix-server-pgsql")
FRONTEND = Path("/usr/share/zabbix")


@dataclass(frozen=True)
class Place:
    """Where the server's programs are: this machine (files under /), or a Debian root (its files under
    ``files``, its programs run through ``command``, its own user ids)."""

    files: Path = Path("/")
    command: Callable[..., list[str]] = lambda *argv, cwd="/": list(argv)
    postgresql: int = 15
    #: The frontend's version; "7.0" takes the API token in a header, 6.0 in the request body.
    zabbix: str = "6.0"

    def path(self, inside: Path) -> Path:
        """A file of the place, as this machine reaches it."""
        return self.files / str(inside).lstrip("/")

    def ids(self, user: str) -> tuple[int, int]:
        return user_ids(self.files, user)

    def chown(self, path: Path, user: str) -> None:
        os.chown(path, *self.ids(user))

    @property
    def pg_bin(self) -> Path:
        return Path(f"/usr/lib/postgresql/{self.postgresql}/bin")


HERE = Place()


def place_of(version: str, request: pytest.FixtureRequest) -> tuple[Place, Path]:
    """Where Zabbix ``version`` runs, and the Debian package's plugin as its programs see it: 6.0 on this machine;
    7.0 in the Debian 13 root, with the same .deb installed there (tests/debianroot.py's fixtures)."""
    if version == "6.0":
        return HERE, Path(request.getfixturevalue("debian_plugin"))
    from debianroot import PLUGIN, RootPackage

    package: RootPackage = request.getfixturevalue("debian13_package")
    return Place(package.root.path, package.root.command, postgresql=17, zabbix="7.0"), Path(PLUGIN)
#: What a server on this machine needs (tests/run installs it).
PROGRAMS = ("zabbix_server", "php", str(HERE.pg_bin / "postgres"), str(FRONTEND / "api_jsonrpc.php"),
            str(SCHEMA / "schema.sql.gz"))
#: Generous bounds for waits that normally take seconds (a slow CI machine must not fail a correct template).
WAIT = 120.0

T = TypeVar("T")


def free_port(low: int = 20000, high: int = 26000) -> int:
    """A port nobody listens on now, below the kernel's ephemeral range (zabbix_server refuses ListenPort above
    32767)."""
    for candidate in range(low + os.getpid() % 1000, high):
        with socket.socket() as sock:
            try:
                sock.bind((HOST, candidate))
            except OSError:
                continue
            return candidate
    raise AssertionError(f"no free port between {low} and {high}")


def wait_for(what: str, probe: Callable[[], Optional[T]], timeout: float = WAIT, every: float = 0.5,
             diagnostics: Callable[[], str] = lambda: "") -> T:
    """Poll until ``probe`` returns something other than None; fail with ``what`` and the diagnostics."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value is not None:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {timeout:g} s\n{diagnostics()}")
        time.sleep(every)


def as_user(user: str, *argv: str) -> list[str]:
    return ["setpriv", f"--reuid={user}", f"--regid={user}", "--init-groups", *argv]


def stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    """Ask, then kill the session the process was started in (it and its children only)."""
    if proc.poll() is None:
        proc.send_signal(sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=20)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=10)


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError as exc:
        return f"({path.name}: {exc})"


@dataclass
class Api:
    """The frontend's JSON-RPC API (Zabbix 6.0: the session token travels in "auth")."""

    url: str
    token: Optional[str] = None
    #: Zabbix 7.0 wants the token in an Authorization header (the body's "auth" is deprecated since 6.4).
    bearer: bool = False

    def call(self, method: str, params: Any) -> Any:
        body = {"jsonrpc": "2.0", "method": method, "params": params, "id": 1}
        headers = {"Content-Type": "application/json-rpc"}
        if self.token is not None and method not in ("user.login", "apiinfo.version"):
            if self.bearer:
                headers["Authorization"] = f"Bearer {self.token}"
            else:
                body["auth"] = self.token
        assert self.url.startswith(f"http://{HOST}:"), self.url
        request = urllib.request.Request(self.url, json.dumps(body).encode(), headers)  # noqa: S310 (checked)
        with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310
            answer = json.loads(response.read())
        assert "error" not in answer, f"{method}: {answer['error']}"
        return answer["result"]

    def login(self) -> None:
        self.token = self.call("user.login", {"username": "Admin", "password": "zabbix"})


@dataclass
class ZabbixServer:
    folder: Path
    api: Api
    external_scripts: Path
    log: Path
    place: Place

    def diagnostics(self) -> str:
        return tail(self.log)

    def import_template(self, path: Path) -> bool:
        """configuration.import with the rules everything the templates hold needs (7.0 names template groups
        apart from host groups)."""
        groups = "groups" if self.place.zabbix == "6.0" else "template_groups"
        rules = {name: {"createMissing": True, "updateExisting": True}
                 for name in (groups, "templates", "items", "discoveryRules", "triggers", "valueMaps")}
        return self.api.call("configuration.import", {"format": "yaml", "source": path.read_text(),
                                                      "rules": rules}) is True

    @property
    def port(self) -> int:
        """The trapper's port, where active proxies and agents connect."""
        for line in (self.folder / "zabbix_server.conf").read_text().splitlines():
            if line.startswith("ListenPort="):
                return int(line.split("=", 1)[1])
        raise AssertionError("zabbix_server.conf names no ListenPort")


def _postgres(folder: Path, stack: contextlib.ExitStack, place: Place) -> int:
    """initdb as postgres into the folder (PostgreSQL wants its data folder 0700), started on 127.0.0.1."""
    data, sockets = folder / "pgdata", folder / "pgsock"
    for path in (data, sockets):
        path.mkdir()
        place.chown(path, "postgres")
    data.chmod(0o700)
    subprocess.run(place.command(*as_user("postgres", str(place.pg_bin / "initdb"), "-D", str(data), "-U",
                                          "postgres", "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8")),
                   check=True, capture_output=True, timeout=120)
    port = free_port(26000, 29000)
    log = folder / "postgres.log"
    with log.open("wb") as output:
        proc = subprocess.Popen(place.command(*as_user(
            "postgres", str(place.pg_bin / "postgres"), "-D", str(data), "-p", str(port),
            "-c", f"listen_addresses={HOST}", "-c", f"unix_socket_directories={sockets}", "-c", "fsync=off",
            "-c", "synchronous_commit=off", "-c", "full_page_writes=off")),
            stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT, start_new_session=True)
    stack.callback(stop, proc, signal.SIGINT)  # SIGINT: PostgreSQL's fast shutdown

    def ready() -> Optional[bool]:
        if proc.poll() is not None:
            pytest.fail(f"postgres exited with {proc.returncode}:\n{tail(log)}")
        probe = subprocess.run(place.command(str(place.pg_bin / "pg_isready"), "-h", HOST, "-p", str(port)),
                               capture_output=True, check=False)
        return True if probe.returncode == 0 else None

    wait_for("PostgreSQL accepting connections", ready, diagnostics=lambda: tail(log))
    return port


def _psql(place: Place, port: int, user: str, database: str, sql: bytes) -> None:
    proc = subprocess.run(place.command("psql", "-h", HOST, "-p", str(port), "-U", user, "-d", database, "-q", "-v",
                                        "ON_ERROR_STOP=1"), input=sql, capture_output=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")[-2000:]


def _database(place: Place, port: int) -> None:
    _psql(place, port, "postgres", "postgres",
          b"CREATE ROLE zabbix LOGIN;\nCREATE DATABASE zabbix OWNER zabbix ENCODING 'UTF8' TEMPLATE template0;\n")
    for part in ("schema", "images", "data"):
        _psql(place, port, "zabbix", "zabbix", gzip.decompress(place.path(SCHEMA / f"{part}.sql.gz").read_bytes()))
    # The stock host "Zabbix server" polls an agent on 127.0.0.1:10050 that is not this test's.
    _psql(place, port, "zabbix", "zabbix", b"UPDATE hosts SET status = 1 WHERE host = 'Zabbix server';\n")


def _server(folder: Path, pg_port: int, stack: contextlib.ExitStack, place: Place,
            timeout: Optional[int]) -> tuple[Path, Path]:
    run = folder / "server"
    scripts = folder / "externalscripts"
    for path in (run, scripts):
        path.mkdir()
    place.chown(run, "zabbix")
    scripts.chmod(0o755)
    log = run / "zabbix_server.log"
    config = folder / "zabbix_server.conf"
    config.write_text("\n".join([
        f"ListenIP={HOST}", f"ListenPort={free_port()}", "LogType=file", f"LogFile={log}", "LogFileSize=0",
        f"PidFile={run / 'zabbix_server.pid'}", f"SocketDir={run}", f"DBHost={HOST}", f"DBPort={pg_port}",
        "DBName=zabbix", "DBUser=zabbix", f"ExternalScripts={scripts}", "CacheUpdateFrequency=2",
        # Passive proxies: their configuration every 2 s (6.0's default is 3600), their values every second.
        "ProxyConfigFrequency=2", "ProxyDataFrequency=1", "StartProxyPollers=1",
        *([f"Timeout={timeout}"] if timeout else []),
        "User=zabbix", "AllowRoot=0", "StartPollers=2", "StartPollersUnreachable=1", "StartTrappers=1",
        "StartPingers=1", "StartDiscoverers=0", "StartHTTPPollers=0", "StartLLDProcessors=1",
        "StartPreprocessors=2", "StartAlerters=1", "StartDBSyncers=1", "HousekeepingFrequency=0",
    ]) + "\n")
    config.chmod(0o644)
    with (folder / "zabbix_server.out").open("wb") as output:
        proc = subprocess.Popen(place.command("zabbix_server", "-c", str(config), "-f"), stdin=subprocess.DEVNULL,
                                stdout=output, stderr=subprocess.STDOUT, start_new_session=True)
    stack.callback(stop, proc)

    def started() -> Optional[bool]:
        if proc.poll() is not None:
            pytest.fail(f"zabbix_server exited with {proc.returncode}:\n{tail(folder / 'zabbix_server.out')}\n"
                        f"{tail(log)}")
        return True if "server #0 started [main process]" in tail(log, 400) else None

    wait_for("zabbix_server started", started, diagnostics=lambda: tail(log))
    return scripts, log


def _frontend(folder: Path, pg_port: int, stack: contextlib.ExitStack, place: Place) -> Api:
    """A copy of Debian's frontend whose configuration file is in the folder (Debian fixes it at /etc)."""
    root = folder / "frontend"
    shutil.copytree(place.path(FRONTEND), root, symlinks=True)
    conf = folder / "zabbix.conf.php"
    conf.write_text("<?php\n" + "".join(f"$DB['{key}'] = {value};\n" for key, value in {
        "TYPE": "'POSTGRESQL'", "SERVER": f"'{HOST}'", "PORT": f"'{pg_port}'", "DATABASE": "'zabbix'",
        "USER": "'zabbix'", "PASSWORD": "''", "SCHEMA": "''", "ENCRYPTION": "false", "KEY_FILE": "''",
        "CERT_FILE": "''", "CA_FILE": "''", "VERIFY_HOST": "false", "CIPHER_LIST": "''", "VAULT_URL": "''",
        "VAULT_DB_PATH": "''", "VAULT_TOKEN": "''", "DOUBLE_IEEE754": "true"}.items())
                    + "$ZBX_SERVER_NAME = 'check_k8s_health tests';\n$IMAGE_FORMAT_DEFAULT = IMAGE_FORMAT_PNG;\n")
    config_class = root / "include" / "classes" / "core" / "CConfigFile.php"
    original = place.path(Path(os.readlink(config_class))) if config_class.is_symlink() else config_class
    text = original.read_text()
    assert "'/etc/zabbix/zabbix.conf.php'" in text
    config_class.unlink()  # a copy of a symlink would write through to /usr/share
    config_class.write_text(text.replace("'/etc/zabbix/zabbix.conf.php'", f"'{conf}'"))
    port = free_port(29000, 32000)
    log = folder / "php.log"
    with log.open("wb") as output:
        proc = subprocess.Popen(place.command("php", "-S", f"{HOST}:{port}", "-t", str(root), cwd=str(root)),
                                stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT,
                                start_new_session=True, cwd=root)
    stack.callback(stop, proc)
    api = Api(f"http://{HOST}:{port}/api_jsonrpc.php", bearer=place.zabbix != "6.0")

    def answers() -> Optional[str]:
        if proc.poll() is not None:
            pytest.fail(f"php -S exited with {proc.returncode}:\n{tail(log)}")
        try:
            return str(api.call("apiinfo.version", {}))
        except OSError:
            return None

    version = wait_for("the frontend API answering", answers, diagnostics=lambda: tail(log))
    assert version.startswith(f"{place.zabbix}."), version
    api.login()
    return api


@contextlib.contextmanager
def zabbix_server(folder: Path, place: Place = HERE, timeout: Optional[int] = 10) -> Iterator[ZabbixServer]:
    """Cluster, schema, server and frontend, in that order; torn down in reverse however the caller ends.
    ``timeout`` is zabbix_server.conf's Timeout, None for the shipped default."""
    with contextlib.ExitStack() as stack:
        pg_port = _postgres(folder, stack, place)
        _database(place, pg_port)
        scripts, log = _server(folder, pg_port, stack, place, timeout)
        api = _frontend(folder, pg_port, stack, place)
        yield ZabbixServer(folder, api, scripts, log, place)
