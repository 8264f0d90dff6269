"""Sizing behind a Zabbix proxy: how many external checks a minute one active zabbix_proxy sustains on this machine.

The proxy is the tests' (tests/zabbixproxy.py: Debian 12's zabbix-proxy-sqlite3 6.0, unpacked privately) with the
settings docs/zabbix-server.md gives (Timeout=10, the plugin's deadline 8) and the shipped StartPollers (5, the
processes that run external checks), between a private Zabbix server (tests/zabbixserver.py) and N hosts, each with
one External check item every 60 s: the plain check of one server, the plugin installed as bench/sizing installs it
and linked into the proxy's ExternalScripts only. The server answers at once with a real kube-apiserver body. For
each rate, N hosts are enabled, the first interval (in which Zabbix spreads the items) is left out, and the values
the server stored in the rest are counted from its history: how many were not OK, how many came more than 5 s
after their interval (late), and how many items turned unsupported. The machine's busy share comes from /proc/stat
(the proxy, its checks, and the server, its database and frontend, all on this machine). A rate is sustained when
at least 95 % of its checks arrived, at least 99 % of those were OK and at most 1 % were late.

Needs root and what tests/run installs (the Zabbix server packages, the proxy's package in its cache).

    bench/sizing zabbix-proxy [--rates 150,300,450] [--seconds 150] [--pollers 5]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))

from fakeapi import FakeApiServer, healthy_routes
from sizing import INTERVAL, busy, install
from zabbixproxy import DEBS, register, zabbix_proxy
from zabbixserver import HERE, PROGRAMS, ZabbixServer, wait_for, zabbix_server

#: The item every host runs: the plain check, as bench/sizing's Icinga Services run it.
KEY = 'check_k8s_health["-s","{$K8S.URL}","--certificate-authority","{$K8S.CA}","-t","8"]'
TEXT = 4  # Zabbix's value type "text"


def hosts(zabbix: ZabbixServer, proxyid: str, server: FakeApiServer, ca: Path, count: int) -> list[str]:
    """``count`` hosts monitored by the proxy, each with the one item (from a template), all disabled."""
    api = zabbix.api
    groupid = api.call("hostgroup.create", {"name": "sizing"})["groupids"][0]
    templateid = api.call("template.create", {
        "host": "K8s sizing", "groups": [{"groupid": groupid}],
        "macros": [{"macro": "{$K8S.URL}", "value": server.url}, {"macro": "{$K8S.CA}", "value": str(ca)}],
    })["templateids"][0]
    api.call("item.create", {"hostid": templateid, "name": "k8s health", "key_": KEY, "type": 10,
                             "value_type": TEXT, "delay": f"{INTERVAL}s", "history": "1d"})
    created = api.call("host.create", [{
        "host": f"k8s-{index:04d}", "groups": [{"groupid": groupid}], "status": 1, "proxy_hostid": proxyid,
        "templates": [{"templateid": templateid}],
        # 6.0 wants an interface for an External check item; nothing listens behind this one.
        "interfaces": [{"type": 1, "main": 1, "useip": 1, "ip": "127.0.0.1", "dns": "", "port": "10050"}],
    } for index in range(count)])
    return [str(hostid) for hostid in created["hostids"]]


def run_rate(zabbix: ZabbixServer, hostids: list[str], rate: int, seconds: int) -> dict[str, float]:
    api = zabbix.api
    on, off = hostids[:rate], hostids[rate:]
    if off:
        api.call("host.massupdate", {"hosts": [{"hostid": hostid} for hostid in off], "status": 1})
    api.call("host.massupdate", {"hosts": [{"hostid": hostid} for hostid in on], "status": 0})
    items = api.call("item.get", {"hostids": on, "output": ["itemid"]})
    itemids = [item["itemid"] for item in items]
    time.sleep(INTERVAL)  # the proxy's configuration arrives; Zabbix spreads the items over one interval
    window_start, busy_start = time.time(), busy()
    time.sleep(max(1, seconds - INTERVAL))
    window_end, busy_end = time.time(), busy()
    time.sleep(5)  # the last values on their way from the proxy
    # From one interval before the window, so that every value in it has the one before it.
    values: list[dict[str, Any]] = api.call("history.get", {
        "history": TEXT, "itemids": itemids, "time_from": int(window_start) - INTERVAL - 10,
        "time_till": int(window_end), "output": ["itemid", "clock", "value"]})
    unsupported = api.call("item.get", {"itemids": itemids, "filter": {"state": 1}, "countOutput": True})
    clocks: dict[str, list[int]] = {}
    for value in values:
        clocks.setdefault(str(value["itemid"]), []).append(int(value["clock"]))
    done = [value for value in values if int(value["clock"]) >= int(window_start)]
    # A check is late when it came more than 5 s after its interval (Zabbix's own queue counts items 5 s
    # overdue): the pollers or the CPU could not keep up. A backlog from the first interval shows as extra values.
    late = checked = 0
    for times in clocks.values():
        times.sort()
        for before, after in zip(times, times[1:]):
            if after >= int(window_start):
                checked += 1
                late += after - before > INTERVAL + 5
    minutes = (int(window_end) - int(window_start)) / 60
    not_ok = sum(not str(value["value"]).startswith("K8S_HEALTH OK") for value in done)
    cpu = (busy_end[0] - busy_start[0]) / max(1, busy_end[1] - busy_start[1])
    return {"per_minute": len(done) / minutes, "not_ok": not_ok / max(1, len(done)), "busy": cpu,
            "late": late / max(1, checked), "unsupported": int(unsupported)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rates", default="150,300,450", help="checks a minute to try, comma-separated")
    parser.add_argument("--seconds", type=int, default=150, help="how long each rate runs (the first 60 s are not "
                                                                 "counted)")
    parser.add_argument("--pollers", type=int, default=5, help="the proxy's StartPollers (shipped: 5)")
    args = parser.parse_args()
    if os.geteuid() != 0 or any(shutil.which(program) is None and not Path(program).exists()
                                for program in PROGRAMS):
        raise SystemExit("bench/sizing zabbix-proxy needs root and the Zabbix server packages (tests/run installs "
                         "them)")
    if not list(DEBS.glob("zabbix-proxy-sqlite3_*.deb")):
        raise SystemExit(f"no zabbix-proxy-sqlite3 package in {DEBS}: tests/run downloads it")
    rates = [int(rate) for rate in args.rates.split(",")]
    print(f"# check_k8s_health sizing: one zabbix_proxy 6.0, StartPollers={args.pollers}, Timeout=10, "
          f"one external check per host every {INTERVAL} s")
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, {platform.platform()}")
    folder = Path(tempfile.mkdtemp(prefix="check_k8s_health-proxy-sizing-"))
    folder.chmod(0o755)
    try:
        plugin = install(folder)
        with contextlib.ExitStack() as stack:
            server = stack.enter_context(FakeApiServer(healthy_routes()))
            ca = folder / "ca.crt"
            shutil.copy(server.ca_file, ca)
            ca.chmod(0o644)
            (folder / "zabbix").mkdir()
            zabbix = stack.enter_context(zabbix_server(folder / "zabbix", HERE, timeout=10))
            (folder / "proxy").mkdir()
            proxy = stack.enter_context(zabbix_proxy(folder / "proxy", zabbix.port, "sizing-proxy", 10, HERE,
                                                     pollers=args.pollers))
            (proxy.external_scripts / "check_k8s_health").symlink_to(plugin)
            proxyid = register(zabbix.api, HERE, proxy.name)
            hostids = hosts(zabbix, proxyid, server, ca, max(rates))
            wait_for("the proxy connected", lambda: True if zabbix.api.call(
                "proxy.get", {"proxyids": [proxyid], "output": ["lastaccess"]})[0]["lastaccess"] != "0" else None,
                diagnostics=proxy.diagnostics)
            print("\n## one proxy at each rate")
            print(f"  {'checks/min asked':>16} {'done/min':>9} {'late':>6} {'not OK':>7} {'unsupported':>12} "
                  f"{'machine busy':>13}  sustained")
            sustained = 0
            for rate in rates:
                found = run_rate(zabbix, hostids, rate, args.seconds)
                held = found["per_minute"] >= 0.95 * rate and found["not_ok"] <= 0.01 and found["late"] <= 0.01
                sustained = rate if held else sustained
                print(f"  {rate:16d} {found['per_minute']:9.0f} {100 * found['late']:5.1f}% "
                      f"{100 * found['not_ok']:6.1f}% "
                      f"{found['unsupported']:12.0f} {100 * found['busy']:12.0f}%  {'yes' if held else 'NO'}",
                      flush=True)
        print(f"\nsustained: {sustained} checks a minute (of those tried), {os.cpu_count()} CPUs, "
              f"StartPollers={args.pollers}")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
