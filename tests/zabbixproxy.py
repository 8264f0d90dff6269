"""A private Zabbix proxy for the consumer tests: Debian's zabbix-proxy-sqlite3, active, between a private Zabbix
server (tests/zabbixserver.py) and the hosts it monitors, on 127.0.0.1 with a free port, in one folder. Zabbix 6.0
is this Debian 12's; Zabbix 7.0 is Debian 13's, run inside the root of tests/debianroot.py like its server.

Debian's proxy packages conflict with its server packages (installing one removes the other), so the package is
never installed: it is unpacked here (``dpkg-deb -x``), the way docs/zabbix-server.md's "Behind a proxy" runs on a
machine of its own. tests/run downloads Debian 12's into ``DEBS``; Debian 13's is downloaded by apt inside the root
on first use and kept beside the root. The SQLite database is the proxy's own: it creates it on its first start.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import pytest
from zabbixserver import HERE, Api, Place, free_port, stop, tail, wait_for

DEBS = Path("/var/cache/check-k8s-health-tests/zabbix-proxy")
#: Debian 13's proxy package, beside the root it runs in (tests/debianroot.py's CACHE).
DEBS_7 = Path(os.environ.get("CHECK_K8S_HEALTH_ROOTS", "/var/cache/check-k8s-health-tests")) / "zabbix-proxy-trixie"
PACKAGE = "zabbix-proxy-sqlite3"


@dataclass(frozen=True)
class ZabbixProxy:
    name: str
    external_scripts: Path
    log: Path
    #: Where a passive proxy listens for the server.
    port: int

    def diagnostics(self) -> str:
        return tail(self.log)


def _download_in(place: Place, into: Path) -> bool:
    """``apt-get download`` inside the root, into a folder of the host's /tmp (the root sees it at the same path);
    a second try after ``apt-get update`` when the root's package lists no longer name a version the archive has."""
    with tempfile.TemporaryDirectory(prefix="check_k8s_health-proxy-deb-") as scratch:
        download = place.command("apt-get", "download", "-qq", "-o", "APT::Sandbox::User=root", PACKAGE, cwd=scratch)
        for attempt in (download, place.command("apt-get", "update", "-qq"), download):
            done = subprocess.run(attempt, capture_output=True, timeout=600, stdin=subprocess.DEVNULL, check=False)
            if attempt is download and done.returncode == 0:
                into.mkdir(parents=True, exist_ok=True)
                for deb in Path(scratch).glob(f"{PACKAGE}_*.deb"):
                    shutil.move(str(deb), into / deb.name)
                return True
    return False


def proxy_deb(place: Place = HERE) -> Path:
    """The proxy package of the place's Zabbix; the test is skipped, saying why, when it cannot be had."""
    folder = DEBS if place.zabbix == "6.0" else DEBS_7
    found = sorted(folder.glob(f"{PACKAGE}_*.deb"))
    if not found and place.zabbix != "6.0" and _download_in(place, folder):
        found = sorted(folder.glob(f"{PACKAGE}_*.deb"))
    if not found:
        how = "tests/run downloads it, as root" if place.zabbix == "6.0" else "apt-get download in the root failed"
        pytest.skip(f"no {PACKAGE} {place.zabbix} package in {folder} ({how})")
    return found[-1]


def register(api: Api, place: Place, name: str, passive_port: Optional[int] = None, **settings: Any) -> str:
    """The proxy as the frontend's Administration -> Proxies creates it, active, or passive where the server
    connects to ``passive_port``; its id. 7.0 renamed the fields and lets a proxy override the global item timeouts
    (``settings``: custom_timeouts, timeout_external_check)."""
    if place.zabbix == "6.0":
        if passive_port is not None:
            settings = {"status": 6, "interface": {"useip": 1, "ip": "127.0.0.1", "dns": "",
                                                   "port": str(passive_port)}, **settings}
        return str(api.call("proxy.create", {"host": name, "status": 5, **settings})["proxyids"][0])
    if passive_port is not None:
        settings = {"operating_mode": 1, "address": "127.0.0.1", "port": str(passive_port), **settings}
    if settings.get("custom_timeouts") == 1:
        # Overriding one timeout means giving them all, as the frontend's form does: the others stay global.
        globals_ = api.call("settings.get", {"output": "extend"})
        settings = {**{key: value for key, value in globals_.items() if key.startswith("timeout_")}, **settings}
    return str(api.call("proxy.create", {"name": name, "operating_mode": 0, **settings})["proxyids"][0])


def monitored_by(place: Place, proxyid: str) -> dict[str, Any]:
    """host.create's fields for "Monitored by proxy"."""
    return {"proxy_hostid": proxyid} if place.zabbix == "6.0" else {"monitored_by": 1, "proxyid": proxyid}


@contextlib.contextmanager
def zabbix_proxy(folder: Path, server_port: int, name: str, timeout: Optional[int] = None,
                 place: Place = HERE, *, pollers: Optional[int] = 2, passive: bool = False) -> Iterator[ZabbixProxy]:
    """An active proxy that asks the server on ``server_port`` for its configuration every 2 s and sends its values
    every second; or, ``passive``, one the server connects to (its trapper answers on ``ZabbixProxy.port``).
    ``timeout``: zabbix_proxy.conf's Timeout, None for the shipped default (on 6.0 it bounds external checks; on
    7.0 only connections). ``pollers``: StartPollers, the processes that run external checks, None for the shipped
    5."""
    unpacked = folder / "package"
    subprocess.run(["dpkg-deb", "-x", str(proxy_deb(place)), str(unpacked)], check=True, capture_output=True)
    run, scripts = folder / "run", folder / "externalscripts"
    for path in (run, scripts):
        path.mkdir()
    place.chown(run, "zabbix")
    scripts.chmod(0o755)
    log = run / "zabbix_proxy.log"
    config = folder / "zabbix_proxy.conf"
    # 7.0 deprecates ConfigFrequency for ProxyConfigFrequency (its shipped zabbix_proxy.conf says so).
    frequency = "ConfigFrequency" if place.zabbix == "6.0" else "ProxyConfigFrequency"
    port = free_port()
    config.write_text("\n".join([
        # A passive proxy's Server= names who may connect (no port), an active one's where to connect.
        f"Server=127.0.0.1{'' if passive else f':{server_port}'}", f"Hostname={name}",
        f"ProxyMode={1 if passive else 0}", "ListenIP=127.0.0.1", f"ListenPort={port}", "LogType=file",
        f"LogFile={log}", "LogFileSize=0",
        f"PidFile={run / 'zabbix_proxy.pid'}", f"SocketDir={run}", f"DBName={run / 'proxy.db'}",
        f"ExternalScripts={scripts}", f"{frequency}=2", "DataSenderFrequency=1",
        *([f"Timeout={timeout}"] if timeout else []),
        *([f"StartPollers={pollers}"] if pollers else []),
        "User=zabbix", "AllowRoot=0", "StartPollersUnreachable=1", f"StartTrappers={1 if passive else 0}",
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
        yield ZabbixProxy(name, scripts, log, port)
    finally:
        stop(proc)
