"""A private Zabbix proxy for the consumer tests: Debian's zabbix-proxy-sqlite3, active, between a private Zabbix
server (tests/zabbixserver.py) and the hosts it monitors, on 127.0.0.1 with a free port, in one folder.

Debian's proxy packages conflict with its server packages (installing one removes the other), so the package is
never installed: tests/run downloads it into /var/cache/check-k8s-health-tests/zabbix-proxy and it is unpacked
here (``dpkg-deb -x``), the way docs/zabbix-server.md's "Behind a proxy" runs on a machine of its own. The SQLite
database is the proxy's own: it creates it on its first start.
"""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import pytest
from zabbixserver import HERE, Place, free_port, stop, tail, wait_for

DEBS = Path("/var/cache/check-k8s-health-tests/zabbix-proxy")


@dataclass(frozen=True)
class ZabbixProxy:
    name: str
    external_scripts: Path
    log: Path

    def diagnostics(self) -> str:
        return tail(self.log)


def proxy_deb() -> Path:
    found = sorted(DEBS.glob("zabbix-proxy-sqlite3_*.deb"))
    if not found:
        pytest.skip(f"no zabbix-proxy-sqlite3 package in {DEBS} (tests/run downloads it, as root)")
    return found[-1]


@contextlib.contextmanager
def zabbix_proxy(folder: Path, server_port: int, name: str, timeout: Optional[int] = None,
                 place: Place = HERE) -> Iterator[ZabbixProxy]:
    """An active proxy that asks the server on ``server_port`` for its configuration every 2 s and sends its values
    every second. ``timeout``: zabbix_proxy.conf's Timeout, None for the shipped default."""
    unpacked = folder / "package"
    subprocess.run(["dpkg-deb", "-x", str(proxy_deb()), str(unpacked)], check=True, capture_output=True)
    run, scripts = folder / "run", folder / "externalscripts"
    for path in (run, scripts):
        path.mkdir()
    place.chown(run, "zabbix")
    scripts.chmod(0o755)
    log = run / "zabbix_proxy.log"
    config = folder / "zabbix_proxy.conf"
    config.write_text("\n".join([
        f"Server=127.0.0.1:{server_port}", f"Hostname={name}", "ProxyMode=0", "ListenIP=127.0.0.1",
        f"ListenPort={free_port()}", "LogType=file", f"LogFile={log}", "LogFileSize=0",
        f"PidFile={run / 'zabbix_proxy.pid'}", f"SocketDir={run}", f"DBName={run / 'proxy.db'}",
        f"ExternalScripts={scripts}", "ConfigFrequency=2", "DataSenderFrequency=1",
        *([f"Timeout={timeout}"] if timeout else []),
        "User=zabbix", "AllowRoot=0", "StartPollers=2", "StartPollersUnreachable=1", "StartTrappers=0",
        "StartPingers=1", "StartDiscoverers=0", "StartHTTPPollers=0", "StartPreprocessors=2",
        "StartDBSyncers=1", "HousekeepingFrequency=0",
    ]) + "\n")
    config.chmod(0o644)
    with (folder / "zabbix_proxy.out").open("wb") as output:
        proc = subprocess.Popen(place.command(str(unpacked / "usr" / "sbin" / "zabbix_proxy"), "-c", str(config),
                                              "-f"), stdin=subprocess.DEVNULL, stdout=output,
                                stderr=subprocess.STDOUT, start_new_session=True)
    try:
        def started() -> Optional[bool]:
            if proc.poll() is not None:
                pytest.fail(f"zabbix_proxy exited with {proc.returncode}:\n{tail(folder / 'zabbix_proxy.out')}\n"
                            f"{tail(log)}")
            return True if "started [main process]" in tail(log, 400) else None

        wait_for("zabbix_proxy started", started, diagnostics=lambda: tail(log))
        yield ZabbixProxy(name, scripts, log)
    finally:
        stop(proc)
