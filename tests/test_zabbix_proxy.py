"""The external-check templates behind real Zabbix proxies (tests/zabbixproxy.py), as docs/zabbix-server.md's
"Behind a proxy" sets them up: the plugin installed on the proxy's side only (the server's ExternalScripts stays
empty), the host monitored by the proxy, the values read back from the server's API while a fake API server changes
state. An external check behind a proxy runs on the proxy host. Every test runs twice:

- Zabbix 6.0, this Debian 12's server and proxy with the 6.0 template: the proxy's Timeout bounds the check;
- Zabbix 7.0, Debian 13's server and proxy in the root of tests/debianroot.py with the 7.0 template: the item's own
  timeout ({$K8S.HEALTH.ITEM.TIMEOUT}) bounds it, whatever the proxy's configuration and its timeouts say.

Each version has three proxies of one server, each monitoring a host of its own: "long", active and set up as the
docs say; "short", active, where what bounds the check is left at 3 s; and "passive", in passive mode (the server
connects to it for its configuration and its values) with the timeouts the docs give.

Skipped without root, the Debian packages, or the proxy's package.
"""

from __future__ import annotations

import contextlib
import dataclasses
import shutil
import time
from collections.abc import Iterator
from typing import Any, Optional

import pytest
from consumers import need, readable_copy, token_file_for, world_readable_dir
from fakeapi import FakeApiServer, Reply, etcd_down_routes, healthy_routes
from test_zabbix import EXTERNAL_TEMPLATE, EXTERNAL_TEMPLATE_7, SERVER_NAMES, TOKEN, master_keys, template, the_template
from zabbixproxy import ZabbixProxy, monitored_by, proxy_deb, register, zabbix_proxy
from zabbixserver import PROGRAMS, ZabbixServer, place_of, wait_for, zabbix_server

#: /readyz (and /livez) of an API server whose etcd is down answer this late: the etcd probes' own 2 s timeout.
ETCD_PROBE = 2.0
HOST = "k8s-behind-proxy"
TEMPLATES = {"6.0": EXTERNAL_TEMPLATE, "7.0": EXTERNAL_TEMPLATE_7}
#: What each proxy and its host are given beyond the shipped defaults: the proxy's Timeout (6.0), the proxy's own
#: item timeouts (7.0's Administration -> Proxies), the host's macros.
SETUPS: dict[str, dict[str, dict[str, Any]]] = {
    "6.0": {
        # docs/zabbix-server.md: Timeout=10 on the proxy and the plugin's deadline at 8.
        "long": {"timeout": 10, "proxy": {}, "macros": {"{$K8S.HEALTH.TIMEOUT}": "8"}},
        # The proxy's shipped Timeout of 3 s.
        "short": {"timeout": None, "proxy": {}, "macros": {"{$K8S.HEALTH.TIMEOUT}": "8"}},
        # A passive proxy (the server connects to it), set up as "long".
        "passive": {"timeout": 10, "proxy": {}, "macros": {"{$K8S.HEALTH.TIMEOUT}": "8"}, "passive": True},
    },
    "7.0": {
        # The shipped proxy configuration and template; the proxy's own external-check timeout lowered to 3 s,
        # which the template's items, carrying their own, do not take.
        "long": {"timeout": None, "proxy": {"custom_timeouts": 1, "timeout_external_check": "3s"}, "macros": {}},
        # The item timeout itself at 3 s on the host.
        "short": {"timeout": None, "proxy": {}, "macros": {"{$K8S.HEALTH.ITEM.TIMEOUT}": "3s"}},
        "passive": {"timeout": None, "proxy": {}, "macros": {}, "passive": True},
    },
}


@dataclasses.dataclass
class Proxied:
    zabbix: ZabbixServer
    proxy: ZabbixProxy
    server: FakeApiServer
    hostid: str
    document_key: str
    version: str

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


@pytest.fixture(scope="module", params=["6.0", "7.0"])
def proxies(request: pytest.FixtureRequest) -> Iterator[dict[str, Proxied]]:
    version: str = request.param
    need(*PROGRAMS)
    place, plugin = place_of(version, request)
    proxy_deb(place)
    folder = world_readable_dir("check_k8s_health-zabbix-proxy-")
    try:
        with contextlib.ExitStack() as stack:
            server = stack.enter_context(FakeApiServer(healthy_routes(), token=TOKEN, anonymous=False,
                                                       server_names=(*SERVER_NAMES, "127.0.0.1")))
            # The CA and the token on the proxy's side, readable by zabbix, as docs/zabbix-server.md says.
            ca_file = readable_copy(server.ca_file, folder, "k8s-ca.crt")
            token_file = token_file_for(folder, TOKEN, place.ids("zabbix")[1])
            (folder / "zabbix").mkdir()
            # The server's own Timeout as in tests/test_zabbix_server.py: 10 on 6.0, shipped on 7.0.
            zabbix = stack.enter_context(zabbix_server(folder / "zabbix", place, 10 if version == "6.0" else None))
            assert zabbix.import_template(TEMPLATES[version])
            export = template(TEMPLATES[version])
            (found,) = zabbix.api.call("template.get", {"filter": {"host": the_template(export)["template"]},
                                                        "output": ["templateid"]})
            groupid = zabbix.api.call("hostgroup.create", {"name": "Kubernetes"})["groupids"][0]
            found_proxies = {}
            for kind, given in SETUPS[version].items():
                (folder / kind).mkdir()
                passive = bool(given.get("passive"))
                proxy = stack.enter_context(zabbix_proxy(folder / kind, zabbix.port, f"k8s-proxy-{kind}",
                                                         given["timeout"], place, passive=passive))
                # The plugin on the proxy's side only: an external check behind a proxy runs there.
                (proxy.external_scripts / "check_k8s_health").symlink_to(plugin)
                proxyid = register(zabbix.api, place, proxy.name, proxy.port if passive else None, **given["proxy"])
                macros = {"{$K8S.HEALTH.URL}": server.url, "{$K8S.HEALTH.CA_FILE}": ca_file,
                          "{$K8S.HEALTH.TOKEN_FILE}": str(token_file), **given["macros"]}
                hostid = zabbix.api.call("host.create", {
                    "host": f"{HOST}-{kind}", "groups": [{"groupid": groupid}], **monitored_by(place, proxyid),
                    "templates": [{"templateid": found["templateid"]}],
                    # 6.0 wants an interface for an External check item; nothing listens behind this one.
                    "interfaces": [{"type": 1, "main": 1, "useip": 1, "ip": "127.0.0.1", "dns": "", "port": "10050"}],
                    "macros": [{"macro": macro, "value": value} for macro, value in macros.items()]})["hostids"][0]
                found_proxies[kind] = Proxied(zabbix, proxy, server, hostid, master_keys(export)[0], version)
            yield found_proxies
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def proxied(proxies: dict[str, Proxied]) -> Proxied:
    return proxies["long"]


def _set(proxied: Proxied, routes: dict[str, Reply]) -> None:
    for path in ("/readyz", "/livez", "/healthz", "/readyz/etcd"):
        proxied.server.set_route(path, routes.get(path))


def test_the_proxy_runs_the_plugin_and_the_values_reach_the_server(proxied: Proxied) -> None:
    assert list(proxied.zabbix.external_scripts.iterdir()) == [], "the server has no plugin to run"
    summary = proxied.until("from the proxy", "k8s.health.summary", lambda text: text.startswith("livez"))
    assert summary == "livez: all 30 sub-checks passed; readyz: all 33 sub-checks passed", summary
    assert proxied.value("k8s.health.code") == "0"


def test_an_etcd_outage_answering_after_2_s_fires_the_trigger_on_the_server(proxied: Proxied) -> None:
    """Set up as documented (6.0: the proxy's Timeout 10 above the plugin's deadline 8; 7.0: the shipped template,
    whose items carry 10s, even with the proxy's own external-check timeout at 3s): the 2.0 s answers of an etcd
    outage arrive with the failed sub-checks named, and the server's CRITICAL trigger fires."""
    if proxied.version == "7.0":
        (proxy,) = proxied.zabbix.api.call("proxy.get", {"filter": {"name": proxied.proxy.name},
                                                         "output": ["custom_timeouts", "timeout_external_check"]})
        assert (proxy["custom_timeouts"], proxy["timeout_external_check"]) == ("1", "3s"), proxy
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


def test_what_bounds_the_check_on_the_proxy(proxies: dict[str, Proxied]) -> None:
    """Why the docs raise the limit: a /readyz that takes 4 s (a real one while etcd is down, two 2 s probes)
    outlasts a limit of 3 s, and the proxy kills the plugin before its deadline of 8 s: the item turns unsupported,
    with no document and no state, while the "long" host names the failed sub-checks. On 6.0 the limit is the
    proxy's Timeout (shipped 3); on 7.0 the item's own timeout, here the host's {$K8S.HEALTH.ITEM.TIMEOUT} of 3s."""
    short, long = proxies["short"], proxies["long"]
    short.until("from the short-limited host", "k8s.health.code", lambda value: value == "0")
    routes = etcd_down_routes()
    routes["/readyz"] = dataclasses.replace(routes["/readyz"], delay=2 * ETCD_PROBE)
    routes["/livez"] = dataclasses.replace(routes["/livez"], delay=ETCD_PROBE)
    _set(short, routes)
    try:
        asked = [0.0]

        def killed() -> Optional[str]:
            item = short.item(short.document_key)
            if item["state"] == "1" and "Timeout while executing a shell script" in item["error"]:
                return str(item["error"])
            if time.monotonic() - asked[0] > 5:
                short.check_now()
                asked[0] = time.monotonic()
            return None

        wait_for("the document item unsupported by the 3 s limit", killed, timeout=120,
                 diagnostics=short.proxy.diagnostics)
        summary = long.until("naming the failed sub-checks", "k8s.health.summary",
                             lambda text: "etcd-readiness" in text)
        assert "deadline" not in summary, summary
    finally:
        _set(short, healthy_routes())
    short.until("back to OK", "k8s.health.code", lambda value: value == "0")


def test_a_passive_proxy_runs_the_plugin_and_hands_over_an_outage(proxies: dict[str, Proxied]) -> None:
    """The server fetches a passive proxy's configuration and values itself (ProxyConfigFrequency and
    ProxyDataFrequency in zabbix_server.conf): the plugin runs on that proxy, OK, then CRITICAL with the failed
    sub-checks named while etcd is down, and OK again."""
    passive = proxies["passive"]
    # The frontend's mode "passive": 6.0's status 6, 7.0's operating_mode 1.
    name, mode, expected = ("host", "status", "6") if passive.version == "6.0" else ("name", "operating_mode", "1")
    (proxy,) = passive.zabbix.api.call("proxy.get", {"filter": {name: passive.proxy.name}, "output": [mode]})
    assert proxy[mode] == expected, proxy
    # The API server is shared with the other proxies' hosts: an outage of an earlier test may still be this host's
    # last value, so wait for the healthy one.
    healthy = "livez: all 30 sub-checks passed; readyz: all 33 sub-checks passed"
    assert passive.until("OK from the passive proxy", "k8s.health.summary", lambda text: text == healthy) == healthy
    assert passive.value("k8s.health.code") == "0"
    _set(passive, etcd_down_routes())
    try:
        summary = passive.until("naming the failed sub-checks", "k8s.health.summary",
                                lambda text: "etcd-readiness" in text)
        assert passive.until("CRITICAL", "k8s.health.code", lambda value: value == "2") == "2", summary
    finally:
        _set(passive, healthy_routes())
    passive.until("back to OK", "k8s.health.code", lambda value: value == "0")
