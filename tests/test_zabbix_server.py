"""Both Zabbix templates in a real Zabbix server (tests/zabbixserver.py): imported through the API, each linked to a
host, and the values read back through the API while a fake API server changes state. Every test runs twice:

- Zabbix 6.0, this Debian 12's, with the Debian package's plugin, the server's Timeout raised to 10 and
  {$K8S.HEALTH.TIMEOUT} to 8 on the host, as docs/zabbix-server.md says for 6.0;
- Zabbix 7.0, Debian 13's, in the root of tests/debianroot.py with the same .deb installed there: a server with its
  shipped configuration and global timeouts, the 7.0 external template with its shipped macros.

- "k8s-agent" uses template_k8s_health.yaml: the server polls a private zabbix_agentd (the same system's) running
  the shipped UserParameter lines;
- "k8s-external" uses the external template: the server runs the package's plugin from its ExternalScripts
  folder, with the URL, CA file and token file as host macros.

Skipped without root or the Debian packages (tests/run installs them).
"""

from __future__ import annotations

import contextlib
import dataclasses
import grp
import json
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Optional, TypeVar

import pytest
from consumers import need, readable_copy, token_file_for, world_readable_dir
from fakeapi import FakeApiServer, Reply, etcd_down_routes, healthy_routes
from test_zabbix import (
    EXTERNAL_TEMPLATE,
    EXTERNAL_TEMPLATE_7,
    SERVER_NAMES,
    TEMPLATE,
    TOKEN,
    Agent,
    blind_key,
    control_key,
    local_lines,
    master_keys,
    running_agent,
    template,
    the_template,
)
from zabbixserver import PROGRAMS, ZabbixServer, place_of, wait_for, zabbix_server

#: What each version imports and links: 7.0 reads the 6.0 agent template (converting it) and its own external one.
TEMPLATES = {"6.0": {"agent": TEMPLATE, "external": EXTERNAL_TEMPLATE},
             "7.0": {"agent": TEMPLATE, "external": EXTERNAL_TEMPLATE_7}}
#: /readyz (and /livez) of an API server whose etcd is down answer this late: the etcd probes' own 2 s timeout.
ETCD_PROBE = 2.0
#: /readyz answering this late is a WARNING by the external template's default {$K8S.HEALTH.TIME.WARN} of 1 s.
SLOW = 1.5

T = TypeVar("T")


@dataclasses.dataclass
class Host:
    name: str
    hostid: str
    document_key: str
    discovery_key: str


@dataclasses.dataclass
class Setup:
    zabbix: ZabbixServer
    server: FakeApiServer
    agent: Agent
    hosts: dict[str, Host]  # by template path name: "agent", "external"
    imported: dict[str, bool]
    templates: dict[str, Path]

    @property
    def version(self) -> str:
        return self.zabbix.place.zabbix

    def set_routes(self, routes: dict[str, Reply]) -> None:
        for path in ("/readyz", "/livez", "/healthz", "/readyz/etcd"):
            self.server.set_route(path, routes.get(path))

    def items(self, host: Host, key_search: Optional[str] = None) -> list[dict[str, Any]]:
        params: dict[str, Any] = {"hostids": host.hostid, "output": ["itemid", "key_", "lastvalue", "lastclock",
                                                                     "state", "error", "type"]}
        if key_search:
            params["search"] = {"key_": key_search}
        result = self.zabbix.api.call("item.get", params)
        assert isinstance(result, list)
        return result

    def item(self, host: Host, key: str) -> dict[str, Any]:
        (found,) = [item for item in self.items(host) if item["key_"] == key]
        return found

    def check_now(self, host: Host, *keys: str) -> None:
        """Zabbix's "Execute now" (task type 6) for the items that run the plugin."""
        ids = [self.item(host, key)["itemid"] for key in keys if key != host.discovery_key]
        rules = self.zabbix.api.call("discoveryrule.get", {"hostids": host.hostid, "output": ["itemid", "key_"]})
        ids += [rule["itemid"] for rule in rules if rule["key_"] in keys]
        self.zabbix.api.call("task.create", [{"type": 6, "request": {"itemid": itemid}} for itemid in ids])

    def until(self, host: Host, what: str, probe: Callable[[], Optional[T]], *keys_to_run: str) -> T:
        """Wait until ``probe`` holds, asking the server every few seconds to run the plugin items again
        ("Execute now"): a run begun before the fake server changed state may still store an old value, so tests
        wait for the value they expect instead of taking the next one."""
        asked = [0.0]

        def again() -> Optional[T]:
            found = probe()
            if found is None and time.monotonic() - asked[0] > 5:
                self.check_now(host, *(keys_to_run or (host.document_key,)))
                asked[0] = time.monotonic()
            return found

        return wait_for(f"{what} on {host.name}", again, diagnostics=self.diagnostics)

    def value_becomes(self, host: Host, key: str, expected: str) -> str:
        return self.value_where(host, key, f"= {expected}", lambda value: value == expected)

    def value_where(self, host: Host, key: str, what: str, holds: Callable[[str], bool]) -> str:
        """The item's last value once it satisfies ``holds`` (an empty value, none yet, never does)."""
        def arrived() -> Optional[str]:
            value = str(self.item(host, key)["lastvalue"])
            return value if value and holds(value) else None

        return self.until(host, f"{key} {what}", arrived)

    def trigger_value(self, host: Host, description: str) -> Optional[int]:
        triggers = self.zabbix.api.call("trigger.get", {"hostids": host.hostid, "output": ["description", "value"],
                                                        "expandDescription": True})
        values = [int(trigger["value"]) for trigger in triggers if trigger["description"] == description]
        return values[0] if values else None

    def diagnostics(self) -> str:
        states = []
        for host in self.hosts.values():
            rules = self.zabbix.api.call("discoveryrule.get", {"hostids": host.hostid,
                                                               "output": ["key_", "state", "error"]})
            for element in [*self.items(host), *rules]:
                if element["state"] != "0" or element.get("lastvalue", "x") == "":
                    states.append(f"{host.name} {element['key_'][:60]}: state {element['state']} "
                                  f"{element['error'][:300]}")
        return ("items:\n" + "\n".join(states) + f"\nzabbix_server log:\n{self.zabbix.diagnostics()}\n"
                f"agent log:\n{self.agent.log_tail()}")


def _host(zabbix: ZabbixServer, name: str, path: Path, groupid: str, **extra: Any) -> Host:
    export = template(path)
    (found,) = zabbix.api.call("template.get", {"filter": {"host": the_template(export)["template"]},
                                                "output": ["templateid"]})
    created = zabbix.api.call("host.create", {"host": name, "groups": [{"groupid": groupid}],
                                              "templates": [{"templateid": found["templateid"]}], **extra})
    return Host(name, created["hostids"][0], *master_keys(export))


@pytest.fixture(scope="module", params=["6.0", "7.0"])
def setup(request: pytest.FixtureRequest) -> Iterator[Setup]:
    version: str = request.param
    need(*PROGRAMS, "zabbix_agentd")
    place, plugin = place_of(version, request)
    agent_command, zabbix_ids = None, (0, grp.getgrnam("zabbix").gr_gid)
    if version == "7.0":
        agent_command, zabbix_ids = place.command, place.ids("zabbix")
    templates = TEMPLATES[version]
    folder = world_readable_dir("check_k8s_health-zabbix-server-")
    try:
        with contextlib.ExitStack() as stack:
            # Valid for `kubernetes` (the agent lines verify that name) and for the address, as kubeadm's is.
            server = stack.enter_context(FakeApiServer(healthy_routes(), token=TOKEN, anonymous=False,
                                                       server_names=(*SERVER_NAMES, "127.0.0.1")))
            ca_file = readable_copy(server.ca_file, folder, "k8s-ca.crt")
            token_file = token_file_for(folder, TOKEN, zabbix_ids[1])
            agent_folder = folder / "agent"
            agent_folder.mkdir()
            agent_folder.chmod(0o755)
            lines = local_lines(plugin, str(token_file), ca_file, server.url)
            agent = stack.enter_context(running_agent(agent_folder, lines) if agent_command is None else
                                        running_agent(agent_folder, lines, agent_command, zabbix_ids))
            (folder / "zabbix").mkdir()
            # 6.0 as docs/zabbix-server.md sets it up (Timeout 10); 7.0 with the shipped configuration.
            zabbix = stack.enter_context(zabbix_server(folder / "zabbix", place, 10 if version == "6.0" else None))
            # What the README asks a Zabbix admin to do on Debian: link the packaged plugin into ExternalScripts.
            (zabbix.external_scripts / "check_k8s_health").symlink_to(plugin)
            imported = {kind: zabbix.import_template(path) for kind, path in templates.items()}
            groupid = zabbix.api.call("hostgroup.create", {"name": "Kubernetes"})["groupids"][0]
            macros = [{"macro": "{$K8S.HEALTH.URL}", "value": server.url},
                      {"macro": "{$K8S.HEALTH.CA_FILE}", "value": ca_file},
                      {"macro": "{$K8S.HEALTH.TOKEN_FILE}", "value": str(token_file)}]
            if version == "6.0":
                # The private server's Timeout is 10 s: room for the slow answer of the WARNING test.
                macros.append({"macro": "{$K8S.HEALTH.TIMEOUT}", "value": "8"})
            hosts = {
                "agent": _host(zabbix, "k8s-agent", templates["agent"], groupid, interfaces=[
                    {"type": 1, "main": 1, "useip": 1, "ip": "127.0.0.1", "dns": "", "port": str(agent.port)}]),
                # Zabbix 6.0 wants an interface for an External check item; nothing listens behind this one.
                "external": _host(zabbix, "k8s-external", templates["external"], groupid, interfaces=[
                    {"type": 1, "main": 1, "useip": 1, "ip": "127.0.0.1", "dns": "", "port": "10050"}],
                    macros=macros),
            }
            yield Setup(zabbix, server, agent, hosts, imported, templates)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


HOSTS = [pytest.param("agent", id="agent"), pytest.param("external", id="external")]


def test_both_templates_import_through_the_api(setup: Setup) -> None:
    assert setup.imported == {"agent": True, "external": True}
    for kind, path in setup.templates.items():
        tmpl = the_template(template(path))
        items = setup.items(setup.hosts[kind])
        assert {item["key_"] for item in items} == {item["key"] for item in tmpl["items"]}, kind
    assert {item["type"] for item in setup.items(setup.hosts["external"])} == {"10", "18"}  # External, dependent


def _discovered(setup: Setup, host: Host) -> dict[tuple[str, str], dict[str, Any]]:
    """The per-sub-check items the discovery rule created: (endpoint, check) -> item."""
    found = {}
    for item in setup.items(host, "k8s.health.check["):
        _, endpoint, check = json.loads("[" + item["key_"][len("k8s.health.check["):-1] + "]")
        found[(endpoint, check)] = item
    return found


def _run_discovery(setup: Setup, host: Host) -> dict[tuple[str, str], dict[str, Any]]:
    return setup.until(host, "discovered sub-check items",
                       lambda: _discovered(setup, host) if ("readyz", "etcd") in _discovered(setup, host) else None,
                       host.discovery_key)


@pytest.mark.parametrize("kind", HOSTS)
def test_healthy_state_and_discovered_sub_checks(setup: Setup, kind: str) -> None:
    host = setup.hosts[kind]
    setup.set_routes(healthy_routes())
    found = _run_discovery(setup, host)
    assert {("livez", "etcd"), ("readyz", "etcd-readiness"), ("livez", "poststarthook/rbac/bootstrap-roles")} \
        <= set(found)
    setup.value_becomes(host, "k8s.health.code", "0")

    def all_ok() -> Optional[bool]:
        values = {key: item["lastvalue"] for key, item in _discovered(setup, host).items()}
        return True if values and set(values.values()) == {"0"} else None

    setup.until(host, "every discovered sub-check item OK", all_ok)
    setup.value_where(host, "k8s.health.summary", "saying all passed",
                      lambda summary: summary.startswith("livez: all 30 sub-checks passed; readyz: all 33"))


def test_the_external_check_stores_the_plugins_document(setup: Setup) -> None:
    host = setup.hosts["external"]
    setup.set_routes(healthy_routes())
    value = setup.value_where(host, host.document_key, "being an OK document", lambda text: '"code":0' in text)
    document = json.loads(value)
    assert (document["plugin"], document["code"], document["state"]) == ("check_k8s_health", 0, "OK"), document
    assert [endpoint["endpoint"] for endpoint in document["servers"][0]["endpoints"]] == ["livez", "readyz"]
    assert TOKEN not in value
    # The server ran it as zabbix from ExternalScripts: the fake server saw the token from the host's token file.
    assert f"Bearer {TOKEN}" in [seen.header("Authorization") for seen in setup.server.requests]


@pytest.mark.parametrize("kind", HOSTS)
def test_etcd_down_fires_the_critical_triggers(setup: Setup, kind: str) -> None:
    host = setup.hosts[kind]
    _run_discovery(setup, host)
    setup.set_routes(etcd_down_routes())
    try:
        setup.value_becomes(host, "k8s.health.code", "2")

        def fired() -> Optional[bool]:
            overall = setup.trigger_value(host, "K8s health: API server is CRITICAL")
            server = f"127.0.0.1:{setup.server.port}"
            check = setup.trigger_value(host, f"K8s health: readyz sub-check etcd-readiness failed on {server}")
            return True if (overall, check) == (1, 1) else None

        setup.until(host, "the CRITICAL triggers", fired)
        values = {key: item["lastvalue"] for key, item in _discovered(setup, host).items()}
        assert values[("readyz", "etcd")] == values[("readyz", "etcd-readiness")] == "2", values
        assert setup.trigger_value(host, "K8s health: API server is WARNING") == 0
    finally:
        setup.set_routes(healthy_routes())


def test_a_slow_answer_fires_the_warning_trigger(setup: Setup) -> None:
    """The external template's -w {$K8S.HEALTH.TIME.WARN} (1 s): a /readyz that answers after 1.5 s is a
    WARNING, which the WARNING trigger turns into a problem."""
    host = setup.hosts["external"]
    routes = healthy_routes()
    routes["/readyz"] = dataclasses.replace(routes["/readyz"], delay=SLOW)
    setup.set_routes(routes)
    try:
        setup.value_becomes(host, "k8s.health.code", "1")
        setup.until(host, "the WARNING trigger, and no CRITICAL one", lambda: True if (
            setup.trigger_value(host, "K8s health: API server is WARNING"),
            setup.trigger_value(host, "K8s health: API server is CRITICAL")) == (1, 0) else None)
        summary = setup.value_where(host, "k8s.health.summary", "naming the slow endpoint",
                                    lambda summary: "readyz" in summary)
        assert "1.5" in summary or "slow" in summary, summary
    finally:
        setup.set_routes(healthy_routes())



@pytest.mark.parametrize("kind", HOSTS)
def test_blind_spots_fire_their_triggers(setup: Setup, kind: str) -> None:
    """The recorded outage (a webhook whose service is gone, three aggregated APIs down, /readyz ok): both count
    items and both triggers; then an account without the ClusterRole: -1 and the cannot-judge trigger."""
    from fakeblind import (
        APISERVICES_PATH,
        VALIDATING_PATH,
        broken_webhook_routes,
        healthy_blind_routes,
        unavailable_apiservice_routes,
    )

    host = setup.hosts[kind]
    key = blind_key(template(setup.templates[kind]))
    outage = {**broken_webhook_routes(), APISERVICES_PATH: unavailable_apiservice_routes()[APISERVICES_PATH]}
    forbidden = Reply.from_capture("blind/validatingwebhookconfigurations_forbidden_monitor.txt")
    try:
        for path, reply in outage.items():
            setup.server.set_route(path, reply)

        def counts(expected: tuple[str, str]) -> Callable[[], Optional[bool]]:
            def probe() -> Optional[bool]:
                found = tuple(str(setup.item(host, item)["lastvalue"]) for item in
                              ("k8s.health.webhooks.unserved", "k8s.health.apiservices.unavailable"))
                return True if tuple(float(value or "nan") for value in found) == tuple(map(float, expected)) \
                    else None
            return probe

        setup.until(host, "the counts of the outage", counts(("2", "3")), key)
        setup.until(host, "both blind-spot triggers", lambda: True if (
            setup.trigger_value(host, "K8s health: admission webhooks without a ready backend"),
            setup.trigger_value(host, "K8s health: aggregated APIs unavailable"),
            setup.trigger_value(host, "K8s health: check cannot judge the webhooks or aggregated APIs")) == (1, 1, 0)
            else None, key)
        summary = setup.value_where(host, "k8s.health.blind.summary", "naming the webhook",
                                    lambda text: "guard.example.com" in text)
        assert summary.startswith("readyz: all 33 sub-checks passed; 2 webhooks block writes: guard.example.com "
                                  "(CREATE, UPDATE configmaps), inject.example.com (CREATE pods, services)"), summary
        setup.server.set_route(VALIDATING_PATH, forbidden)
        setup.until(host, "the counts of a forbidden list", counts(("-1", "3")), key)
        setup.until(host, "the cannot-judge trigger", lambda: True if (
            setup.trigger_value(host, "K8s health: admission webhooks without a ready backend"),
            setup.trigger_value(host, "K8s health: check cannot judge the webhooks or aggregated APIs")) == (0, 1)
            else None, key)
        for path, reply in healthy_blind_routes().items():
            setup.server.set_route(path, reply)
        setup.until(host, "the counts of a healthy cluster", counts(("0", "0")), key)
    finally:
        setup.set_routes(healthy_routes())


@pytest.mark.parametrize("kind", HOSTS)
def test_the_control_plane_fires_its_triggers(setup: Setup, kind: str) -> None:
    """The recorded outage of etcd out of space (every write refused, both leaders gone, /readyz ok) with the
    database at 97 % of its quota: the leader, write and size triggers; then an account without the write probe's
    Role: the cannot-judge trigger; then healthy again."""
    from fakeleaders import PROBE_FORBIDDEN, control_plane_routes, outage_routes

    host = setup.hosts[kind]
    key = control_key(template(setup.templates[kind]))
    outage = outage_routes()
    names = ("K8s health: control-plane loop without a leader", "K8s health: the API server cannot write",
             "K8s health: etcd database over 95 % of its quota", "K8s health: etcd database over 80 % of its quota",
             "K8s health: check cannot judge the control plane")

    def triggers(expected: tuple[int, ...]) -> Callable[[], Optional[bool]]:
        return lambda: True if tuple(setup.trigger_value(host, name) for name in names) == expected else None

    try:
        for path, reply in outage.items():
            setup.server.set_route(path, reply)
        setup.until(host, "the leader, write and size triggers", triggers((1, 1, 1, 0, 0)), key)
        summary = setup.value_where(host, "k8s.health.control.summary", "naming the full etcd",
                                    lambda text: "out of space" in text)
        assert summary.startswith("readyz: all 33 sub-checks passed; etcd is out of space: every write is refused; "
                                  "etcd is 97 % full (1.94 GiB of 2 GiB)"), summary
        assert float(setup.item(host, "k8s.health.etcd.percent")["lastvalue"]) == pytest.approx(96.86, abs=0.01)
        for path, reply in control_plane_routes(Reply.from_capture(PROBE_FORBIDDEN)).items():
            setup.server.set_route(path, reply)
        setup.until(host, "the cannot-judge trigger alone", triggers((0, 0, 0, 0, 1)), key)
        for path, reply in control_plane_routes().items():
            setup.server.set_route(path, reply)
        setup.until(host, "no control-plane trigger", triggers((0, 0, 0, 0, 0)), key)
        assert setup.item(host, "k8s.health.etcd.size")["lastvalue"] == "286720"
    finally:
        for path in set(outage) - set(healthy_routes()):
            setup.server.set_route(path, None)
        setup.set_routes(healthy_routes())


def test_zabbix_7_shows_the_sub_checks_of_an_etcd_outage_with_the_shipped_defaults(setup: Setup) -> None:
    """An API server whose etcd is down answers /livez and /readyz only after its etcd probes' 2 s. On Zabbix 7.0,
    with the server's shipped configuration and global timeouts (3s for external checks) and the 7.0 template's
    shipped macros, the external check still delivers the failed sub-checks: the items carry their own timeout and
    the plugin's -t stays below it."""
    if setup.version == "6.0":
        pytest.skip("Zabbix 6.0 has no item timeouts: its documented set-up raises Timeout (the tests above)")
    host = setup.hosts["external"]
    assert "Timeout=" not in (setup.zabbix.folder / "zabbix_server.conf").read_text()
    settings = setup.zabbix.api.call("settings.get", {"output": ["timeout_external_check"]})
    assert settings["timeout_external_check"] == "3s", settings
    masters = [item for item in setup.items(host) if item["type"] == "10"]
    timeouts = setup.zabbix.api.call("item.get", {"itemids": [item["itemid"] for item in masters],
                                                  "output": ["timeout"]})
    assert {item["timeout"] for item in timeouts} == {"{$K8S.HEALTH.ITEM.TIMEOUT}"}, timeouts
    _run_discovery(setup, host)
    routes = etcd_down_routes()
    for path in ("/livez", "/readyz"):
        routes[path] = dataclasses.replace(routes[path], delay=ETCD_PROBE)
    setup.set_routes(routes)
    try:
        summary = setup.value_where(host, "k8s.health.summary", "naming the failed sub-checks",
                                    lambda text: "etcd-readiness" in text)
        assert "timed out" not in summary and "timeout" not in summary, summary
        setup.value_becomes(host, "k8s.health.code", "2")
        values = {key: item["lastvalue"] for key, item in _discovered(setup, host).items()}
        assert values[("readyz", "etcd")] == values[("readyz", "etcd-readiness")] == "2", values
        assert values[("livez", "etcd")] == "2", values
    finally:
        setup.set_routes(healthy_routes())
