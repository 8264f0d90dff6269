"""The external-check template behind a real, active Zabbix proxy (tests/zabbixproxy.py), as docs/zabbix-server.md's
"Behind a proxy" sets it up on Zabbix 6.0: the plugin installed on the proxy's side only (the server's
ExternalScripts stays empty), the host monitored by the proxy, the values read back from the server's API while a
fake API server changes state. An external check behind a proxy runs on the proxy host, under the proxy's Timeout.

Skipped without root, the Debian packages, or the proxy's package (tests/run downloads it).
"""

from __future__ import annotations

import contextlib
import dataclasses
import grp
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Optional

import pytest
from consumers import need, readable_copy, token_file_for, world_readable_dir
from fakeapi import FakeApiServer, Reply, etcd_down_routes, healthy_routes
from test_zabbix import EXTERNAL_TEMPLATE, SERVER_NAMES, TOKEN, master_keys, template, the_template
from zabbixproxy import ZabbixProxy, proxy_deb, zabbix_proxy
from zabbixserver import PROGRAMS, ZabbixServer, wait_for, zabbix_server

#: /readyz (and /livez) of an API server whose etcd is down answer this late: the etcd probes' own 2 s timeout.
ETCD_PROBE = 2.0
HOST = "k8s-behind-proxy"


@dataclasses.dataclass
class Proxied:
    zabbix: ZabbixServer
    proxy: ZabbixProxy
    server: FakeApiServer
    hostid: str
    document_key: str

    def item(self, key: str) -> dict[str, Any]:
        (item,) = self.zabbix.api.call("item.get", {"hostids": self.hostid, "filter": {"key_": key},
                                                    "output": ["lastvalue", "error", "state"]})
        return dict(item)

    def value(self, key: str) -> str:
        return str(self.item(key)["lastvalue"])

    def check_now(self) -> None:
        """Zabbix's "Execute now" (task type 6) for the item that runs the plugin: the server hands it to the
        proxy, which runs it at once instead of at the next minute."""
        (item,) = self.zabbix.api.call("item.get", {"hostids": self.hostid, "filter": {"key_": self.document_key},
                                                    "output": ["itemid"]})
        self.zabbix.api.call("task.create", [{"type": 6, "request": {"itemid": item["itemid"]}}])

    def until(self, what: str, key: str, holds: Any) -> str:
        asked = [0.0]

        def arrived() -> Optional[str]:
            value = self.value(key)
            if value and holds(value):
                return value
            if time.monotonic() - asked[0] > 5:
                self.check_now()
                asked[0] = time.monotonic()
            return None

        return wait_for(f"{key} {what}", arrived, timeout=120,
                        diagnostics=lambda: f"server:\n{self.zabbix.diagnostics()}\nproxy:\n{self.proxy.diagnostics()}")

    def trigger(self, name: str) -> Optional[int]:
        triggers = self.zabbix.api.call("trigger.get", {"hostids": self.hostid, "output": ["description", "value"],
                                                        "expandDescription": True})
        values = [int(trigger["value"]) for trigger in triggers if trigger["description"] == name]
        return values[0] if values else None


@pytest.fixture(scope="module")
def proxies(request: pytest.FixtureRequest) -> Iterator[dict[str, Proxied]]:
    """Two active proxies of one server, each monitoring a host of its own: "raised" with the Timeout of 10 the docs
    ask for, "default" with the proxy's shipped Timeout of 3 s."""
    need(*PROGRAMS)
    proxy_deb()
    plugin: Path = request.getfixturevalue("debian_plugin")
    folder = world_readable_dir("check_k8s_health-zabbix-proxy-")
    try:
        with contextlib.ExitStack() as stack:
            server = stack.enter_context(FakeApiServer(healthy_routes(), token=TOKEN, anonymous=False,
                                                       server_names=(*SERVER_NAMES, "127.0.0.1")))
            # The CA and the token on the proxy's side, readable by zabbix, as docs/zabbix-server.md says.
            ca_file = readable_copy(server.ca_file, folder, "k8s-ca.crt")
            token_file = token_file_for(folder, TOKEN, grp.getgrnam("zabbix").gr_gid)
            (folder / "zabbix").mkdir()
            zabbix = stack.enter_context(zabbix_server(folder / "zabbix", timeout=10))
            export = template(EXTERNAL_TEMPLATE)
            rules = {name: {"createMissing": True, "updateExisting": True}
                     for name in ("groups", "templates", "items", "discoveryRules", "triggers", "valueMaps")}
            assert zabbix.api.call("configuration.import", {"format": "yaml", "source": EXTERNAL_TEMPLATE.read_text(),
                                                            "rules": rules}) is True
            (found,) = zabbix.api.call("template.get", {"filter": {"host": the_template(export)["template"]},
                                                        "output": ["templateid"]})
            groupid = zabbix.api.call("hostgroup.create", {"name": "Kubernetes"})["groupids"][0]
            found_proxies = {}
            for kind, timeout in (("raised", 10), ("default", None)):
                (folder / kind).mkdir()
                proxy = stack.enter_context(zabbix_proxy(folder / kind, zabbix.port, f"k8s-proxy-{kind}", timeout))
                # The plugin on the proxy's side only: an external check behind a proxy runs there.
                (proxy.external_scripts / "check_k8s_health").symlink_to(plugin)
                proxyid = zabbix.api.call("proxy.create", {"host": proxy.name, "status": 5})["proxyids"][0]
                hostid = zabbix.api.call("host.create", {
                    "host": f"{HOST}-{kind}", "groups": [{"groupid": groupid}], "proxy_hostid": proxyid,
                    "templates": [{"templateid": found["templateid"]}],
                    # 6.0 wants an interface for an External check item; nothing listens behind this one.
                    "interfaces": [{"type": 1, "main": 1, "useip": 1, "ip": "127.0.0.1", "dns": "", "port": "10050"}],
                    "macros": [{"macro": "{$K8S.HEALTH.URL}", "value": server.url},
                               {"macro": "{$K8S.HEALTH.CA_FILE}", "value": ca_file},
                               {"macro": "{$K8S.HEALTH.TOKEN_FILE}", "value": str(token_file)},
                               {"macro": "{$K8S.HEALTH.TIMEOUT}", "value": "8"}]})["hostids"][0]
                found_proxies[kind] = Proxied(zabbix, proxy, server, hostid, master_keys(export)[0])
            yield found_proxies
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def proxied(proxies: dict[str, Proxied]) -> Proxied:
    return proxies["raised"]


def _set(proxied: Proxied, routes: dict[str, Reply]) -> None:
    for path in ("/readyz", "/livez", "/healthz", "/readyz/etcd"):
        proxied.server.set_route(path, routes.get(path))


def test_the_proxy_runs_the_plugin_and_the_values_reach_the_server(proxied: Proxied) -> None:
    assert list(proxied.zabbix.external_scripts.iterdir()) == [], "the server has no plugin to run"
    summary = proxied.until("from the proxy", "k8s.health.summary", lambda text: text.startswith("livez"))
    assert summary == "livez: all 30 sub-checks passed; readyz: all 33 sub-checks passed", summary
    assert proxied.value("k8s.health.code") == "0"


def test_an_etcd_outage_answering_after_2_s_fires_the_trigger_on_the_server(proxied: Proxied) -> None:
    """The proxy's Timeout (10) above the plugin's deadline (8), as documented: the 2.0 s answers of an etcd
    outage arrive with the failed sub-checks named, and the server's CRITICAL trigger fires."""
    routes = etcd_down_routes()
    for path in ("/livez", "/readyz"):
        routes[path] = dataclasses.replace(routes[path], delay=ETCD_PROBE)
    _set(proxied, routes)
    try:
        summary = proxied.until("naming the failed sub-checks", "k8s.health.summary",
                                lambda text: "etcd-readiness" in text)
        assert "timed out" not in summary and "deadline" not in summary, summary
        assert proxied.until("CRITICAL", "k8s.health.code", lambda value: value == "2") == "2"
        wait_for("the CRITICAL trigger", lambda: True if proxied.trigger("K8s health: API server is CRITICAL") == 1
                 else None, timeout=60, diagnostics=proxied.proxy.diagnostics)
    finally:
        _set(proxied, healthy_routes())
    proxied.until("back to OK", "k8s.health.code", lambda value: value == "0")
    wait_for("the trigger resolved", lambda: True if proxied.trigger("K8s health: API server is CRITICAL") == 0
             else None, timeout=60, diagnostics=proxied.proxy.diagnostics)


def test_the_proxys_timeout_bounds_the_check(proxies: dict[str, Proxied]) -> None:
    """Why the docs raise the proxy's Timeout: a /readyz that takes 4 s (a real one while etcd is down, two 2 s
    probes) outlasts the shipped 3 s, and the proxy kills the plugin before its deadline of 8 s: the item turns
    unsupported, with no document and no state, while the proxy with Timeout=10 names the failed sub-checks."""
    default, raised = proxies["default"], proxies["raised"]
    default.until("from the proxy with the shipped Timeout", "k8s.health.code", lambda value: value == "0")
    routes = etcd_down_routes()
    routes["/readyz"] = dataclasses.replace(routes["/readyz"], delay=2 * ETCD_PROBE)
    routes["/livez"] = dataclasses.replace(routes["/livez"], delay=ETCD_PROBE)
    _set(default, routes)
    try:
        asked = [0.0]

        def killed() -> Optional[str]:
            item = default.item(default.document_key)
            if item["state"] == "1" and "Timeout while executing a shell script" in item["error"]:
                return str(item["error"])
            if time.monotonic() - asked[0] > 5:
                default.check_now()
                asked[0] = time.monotonic()
            return None

        wait_for("the document item unsupported by the proxy's Timeout", killed, timeout=120,
                 diagnostics=default.proxy.diagnostics)
        summary = raised.until("naming the failed sub-checks", "k8s.health.summary",
                               lambda text: "etcd-readiness" in text)
        assert "deadline" not in summary, summary
    finally:
        _set(default, healthy_routes())
    default.until("back to OK", "k8s.health.code", lambda value: value == "0")
