"""A distributed Icinga 2 on loopback for the consumer tests: a master, a satellite and an agent, each a real
``icinga2 daemon`` with its own folder and port, joined by the ticket flow of Icinga's own PKI (``pki new-ca`` on
the master, ``pki ticket`` there, ``pki save-cert`` and ``pki request`` on each child), as docs/icinga2.md tells an
operator to do it. Results are read from the master's REST API, where an operator sees them.

Everything lives in one world-readable folder owned by ``nagios`` (the daemons and the CLI drop to it); nothing
under /etc or /var is used. Needs root and icinga2 (tests/run installs it).
"""

from __future__ import annotations

import base64
import contextlib
import json
import shutil
import signal
import socket
import ssl
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from consumers import stop_daemon

NODES = ("master", "satellite", "agent")
API_USER, API_PASSWORD = "root", "icinga-test-password"
TICKET_SALT = "check-k8s-health-test-salt"
#: Generous: children connect to the master, receive the config and report their first results within seconds.
WAIT = 90.0


@dataclass
class Node:
    name: str
    port: int
    folder: Path

    def defines(self) -> list[str]:
        paths = {"DataDir": "data", "LogDir": "log", "CacheDir": "cache", "SpoolDir": "spool", "InitRunDir": "run",
                 "StatePath": "data/icinga2.state", "ModAttrPath": "data/modattr.conf",
                 "ObjectsPath": "cache/objects", "VarsPath": "cache/vars", "ZonesDir": "zones.d",
                 "PidPath": "run/icinga2.pid"}
        return [f"-DConfiguration.{key}={self.folder / value}" for key, value in paths.items()]

    @property
    def certs(self) -> Path:
        return self.folder / "data" / "certs"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def icinga2(node: Node, *args: str) -> str:
    result = subprocess.run(["icinga2", *args, *node.defines()], capture_output=True, text=True, timeout=60,
                            stdin=subprocess.DEVNULL, check=False)
    assert result.returncode == 0, f"icinga2 {' '.join(args)} on {node.name}:\n{result.stdout}{result.stderr}"
    return result.stdout


def zones(nodes: Mapping[str, Node]) -> str:
    """The same on every node: the master zone, the satellite's and the agent's below it, one global zone."""
    text = ""
    for name, node in nodes.items():
        parent = "" if name == "master" else '; parent = "master"'
        text += (f'object Endpoint "{name}" {{ host = "127.0.0.1"; port = "{node.port}" }}\n'
                 f'object Zone "{name}" {{ endpoints = [ "{name}" ]{parent} }}\n')
    return text + 'object Zone "global-templates" { global = true }\n'


@dataclass
class Cluster:
    nodes: dict[str, Node]
    daemons: dict[str, subprocess.Popen[bytes]]

    def reload(self, name: str) -> None:
        """``systemctl reload icinga2``: SIGHUP makes the daemon validate and load its configuration again."""
        self.daemons[name].send_signal(signal.SIGHUP)

    def api(self, path: str) -> Any:
        """The master's REST API, as an operator's tools ask it (its certificate is the test CA's)."""
        context = ssl.create_default_context(cafile=str(self.nodes["master"].certs / "ca.crt"))
        context.check_hostname = False
        auth = base64.b64encode(f"{API_USER}:{API_PASSWORD}".encode()).decode()
        request = urllib.request.Request(f"https://127.0.0.1:{self.nodes['master'].port}{path}",
                                         headers={"Accept": "application/json", "Authorization": f"Basic {auth}"})
        with urllib.request.urlopen(request, context=context, timeout=10) as answer:  # noqa: S310 (loopback)
            return json.load(answer)

    def results(self) -> dict[str, dict[str, Any]]:
        """The last check result of every service the master knows, by service name."""
        try:
            found = self.api("/v1/objects/services?attrs=last_check_result")
        except OSError:
            return {}
        return {item["name"].split("!", 1)[1]: item["attrs"]["last_check_result"]
                for item in found["results"] if item["attrs"]["last_check_result"]}

    def wait_for(self, what: str, probe: Callable[[dict[str, dict[str, Any]]], bool]) -> dict[str, dict[str, Any]]:
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            results = self.results()
            if probe(results):
                return results
            time.sleep(1)
        raise AssertionError(f"{what}: not within {WAIT:g} s; the master has {self.results()}\n{self.logs()}")

    def log_of(self, name: str) -> str:
        """Everything a node logged: its daemon and debug logs, and the validation log of a synced zone it refused."""
        return "".join(path.read_text(errors="replace") for path in sorted(self.nodes[name].folder.rglob("*.log")))

    def wait_for_log(self, name: str, text: str, seconds: float = 30) -> str:
        deadline = time.monotonic() + seconds
        while text not in self.log_of(name):
            assert time.monotonic() < deadline, f"{name} did not log {text!r}:\n{self.log_of(name)[-3000:]}"
            time.sleep(1)
        return self.log_of(name)

    def logs(self) -> str:
        return "\n".join(f"--- {name}:\n" + (node.folder / "daemon.log").read_text(errors="replace")[-3000:]
                         for name, node in self.nodes.items() if (node.folder / "daemon.log").exists())


def _daemon(node: Node) -> subprocess.Popen[bytes]:
    with open(node.folder / "daemon.log", "wb") as log:
        return subprocess.Popen(["icinga2", "daemon", "-c", str(node.folder / "icinga2.conf"), *node.defines()],
                                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)


def _wait_listening(node: Node, daemon: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", node.port)) == 0:
                return
        if daemon.poll() is not None:
            break
        time.sleep(0.2)
    raise AssertionError(f"{node.name} does not listen:\n" + (node.folder / "daemon.log").read_text(errors="replace"))


@contextlib.contextmanager
def icinga_cluster(folder: Path, local: Mapping[str, str], zone_files: Mapping[str, str]) -> Iterator[Cluster]:
    """Start the three nodes. ``local``: each node's own configuration beyond its ApiListener and the zones
    (constants, includes, CheckerComponent...), which stays on that node; ``zone_files``: files for the master's
    zones.d (``"satellite/hosts.conf"``, ``"global-templates/k8s_health.conf"``), which the master syncs."""
    nodes = {name: Node(name, _free_port(), folder / name) for name in NODES}
    for node in nodes.values():
        for sub in ("data/certs", "log", "run", "cache", "spool", "zones.d"):
            (node.folder / sub).mkdir(parents=True, exist_ok=True)
    for relpath, text in zone_files.items():
        path = nodes["master"].folder / "zones.d" / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    subprocess.run(["chown", "-R", "nagios:nagios", str(folder)], check=True)
    master = nodes["master"]
    icinga2(master, "pki", "new-ca")
    icinga2(master, "pki", "new-cert", "--cn", "master", "--key", str(master.certs / "master.key"), "--csr",
            str(master.certs / "master.csr"))
    icinga2(master, "pki", "sign-csr", "--csr", str(master.certs / "master.csr"), "--cert",
            str(master.certs / "master.crt"))
    shutil.copy(master.folder / "data" / "ca" / "ca.crt", master.certs / "ca.crt")
    for name, node in nodes.items():
        if name == "master":
            listener = (f'object ApiListener "api" {{ bind_host = "127.0.0.1"; bind_port = {node.port}; '
                        f'ticket_salt = "{TICKET_SALT}" }}\n'
                        f'object ApiUser "{API_USER}" {{ password = "{API_PASSWORD}"; permissions = [ "*" ] }}\n')
        else:  # a child takes its configuration and the master's commands
            listener = (f'object ApiListener "api" {{ bind_host = "127.0.0.1"; bind_port = {node.port}; '
                        "accept_config = true; accept_commands = true }\n")
        head = f'const NodeName = "{name}"\nconst ZoneName = "{name}"\n'
        logger = f'object FileLogger "debug" {{ path = "{node.folder / "log" / "debug.log"}"; severity = "debug" }}\n'
        (node.folder / "icinga2.conf").write_text(head + local.get(name, "") + listener + logger + zones(nodes))
    subprocess.run(["chown", "-R", "nagios:nagios", str(folder)], check=True)
    daemons: dict[str, subprocess.Popen[bytes]] = {}
    try:
        daemons["master"] = _daemon(master)
        _wait_listening(master, daemons["master"])
        for name in ("satellite", "agent"):
            node = nodes[name]
            ticket = subprocess.run(["icinga2", "pki", "ticket", "--cn", name, "--salt", TICKET_SALT],
                                    capture_output=True, text=True, check=True).stdout.strip()
            icinga2(node, "pki", "new-cert", "--cn", name, "--key", str(node.certs / f"{name}.key"), "--cert",
                    str(node.certs / f"{name}.crt"))
            icinga2(node, "pki", "save-cert", "--host", "127.0.0.1", "--port", str(master.port), "--trustedcert",
                    str(node.certs / "trusted-parent.crt"))
            icinga2(node, "pki", "request", "--host", "127.0.0.1", "--port", str(master.port), "--ticket", ticket,
                    "--key", str(node.certs / f"{name}.key"), "--cert", str(node.certs / f"{name}.crt"),
                    "--trustedcert", str(node.certs / "trusted-parent.crt"), "--ca", str(node.certs / "ca.crt"))
            subprocess.run(["chown", "-R", "nagios:nagios", str(node.folder)], check=True)
            daemons[name] = _daemon(node)
        yield Cluster(nodes, daemons)
    finally:
        for daemon in reversed(list(daemons.values())):
            stop_daemon(daemon)
