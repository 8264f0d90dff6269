"""Distributed Icinga 2 as operators run it (docs/icinga2.md): a master, a satellite and an agent, real icinga2
daemons joined by Icinga's ticket PKI (tests/icingacluster.py). The master schedules one Service on the agent
(``command_endpoint``) and the satellite runs the Services of its zone; the results are read from the master's REST
API. Each of the two ways to deliver the CheckCommand is a cluster of its own:

- the Debian package on every node (``include <plugins-contrib>``), the master included;
- ``icinga2-commands.conf`` in the global zone ``global-templates``, with no node including the package's copy.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import subprocess
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from consumers import need, readable_copy, world_readable_dir
from fakeapi import FakeApiServer, etcd_down_routes, healthy_routes
from icingacluster import Cluster, icinga_cluster

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "icinga-cluster-" + secrets.token_hex(12)
HEALTHY = "K8S_HEALTH OK - readyz: all 33 sub-checks passed"
ETCD_DOWN = "K8S_HEALTH CRITICAL - readyz: etcd, etcd-readiness failed (2 of 33 sub-checks)"
#: The packaged plugin and its folder: PluginContribDir on Debian.
PLUGINS = "/usr/lib/nagios/plugins"


def _service(name: str, server: str, ca: str, endpoint: str = "", token: str = "") -> str:
    """``token``: "constant" (``vars.k8s_health_token = K8sHealthToken``), or a token file's path."""
    lines = ['  check_command = "k8s_health"', "  check_interval = 2s", "  retry_interval = 2s",
             f'  vars.k8s_health_server = "{server}"', f'  vars.k8s_health_certificate_authority = "{ca}"']
    if endpoint:
        lines.append(f'  command_endpoint = "{endpoint}"')
    if token == "constant":
        lines.append("  vars.k8s_health_token = K8sHealthToken")
    elif token:
        lines.append(f'  vars.k8s_health_token_file = "{token}"')
    host = "k8s-cp" if endpoint else "k8s-cp-satellite"
    return f'object Service "{name}" {{\n  host_name = "{host}"\n' + "\n".join(lines) + "\n}\n"


def _configs(delivery: str, servers: tuple[str, str, str, str], satellite_token: bool = True,
             token_file: str = "") -> tuple[dict[str, str], dict[str, str]]:
    """Each node's own configuration and the master's zones.d for one way of delivering the CheckCommand;
    ``servers``: the CA file and the URLs ``_servers`` gives. ``token_file``: the way docs/icinga2.md recommends,
    a token file on every node that runs the check and no constant anywhere; otherwise the constant."""
    ca, healthy, down, secured = servers
    includes = "include <itl>\ninclude <plugins>\n"
    if delivery == "package":
        includes += "include <plugins-contrib>\n"
    constants = f'const PluginDir = "{PLUGINS}"\nconst PluginContribDir = "{PLUGINS}"\n'
    # The token constant: wherever a zone's Services are compiled, the master and that zone's satellite.
    token = "" if token_file else f'const K8sHealthToken = "{TOKEN}"\n'
    local = {
        "master": constants + token + includes + 'object CheckerComponent "checker" {}\n',
        "satellite": (constants + (token if satellite_token else "") + includes
                      + 'object CheckerComponent "checker" {}\n'),
        "agent": constants + includes,
    }
    zone_files = {
        "master/hosts.conf": 'object Host "k8s-cp" { check_command = "dummy"; address = "127.0.0.1" }\n'
                             + _service("agent-healthy", healthy, ca, endpoint="agent")
                             + _service("agent-etcd-down", down, ca, endpoint="agent"),
        "satellite/hosts.conf": 'object Host "k8s-cp-satellite" { check_command = "dummy" }\n'
                                + _service("satellite-token", secured, ca, token=token_file or "constant"),
    }
    if token_file:  # the agent too runs a check that needs the token, from the same file on its own disk
        zone_files["master/hosts.conf"] += _service("agent-token", secured, ca, endpoint="agent", token=token_file)
    if delivery == "global-zone":
        zone_files["global-templates/k8s_health.conf"] = (ROOT / "icinga2-commands.conf").read_text()
    return local, zone_files


@contextlib.contextmanager
def _servers(folder: Path) -> Iterator[tuple[str, str, str, str]]:
    """The CA file, a healthy server, one with etcd down and one that refuses anonymous requests."""
    with FakeApiServer(healthy_routes()) as healthy, \
            FakeApiServer(etcd_down_routes(), ca=healthy.ca) as down, \
            FakeApiServer(healthy_routes(), ca=healthy.ca, token=TOKEN, anonymous=False) as secured:
        yield readable_copy(healthy.ca_file, folder, "ca.crt"), healthy.url, down.url, secured.url


@pytest.fixture
def own_cluster_folder(request: pytest.FixtureRequest) -> Iterator[Path]:
    """A folder for a cluster of its own, with the package installed on "every node" (this machine)."""
    need("icinga2")
    request.getfixturevalue("debian_plugin")
    folder = world_readable_dir("check_k8s_health-icinga-own-")
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module", params=["package", "global-zone"])
def cluster_run(request: pytest.FixtureRequest) -> Iterator[tuple[str, Cluster, dict[str, dict[str, Any]]]]:
    need("icinga2")
    request.getfixturevalue("debian_plugin")  # the package is installed on "every node" (this machine)
    delivery = request.param
    folder = world_readable_dir("check_k8s_health-icinga-cluster-")
    try:
        with _servers(folder) as servers, icinga_cluster(folder, *_configs(delivery, servers)) as cluster:
            names = {"agent-healthy", "agent-etcd-down", "satellite-token"}
            # A child runs a check before the synced CheckCommand arrives ("Check command 'k8s_health' does
            # not exist"): its configuration is staged, validated and loaded a few seconds after it connects.
            results = cluster.wait_for("a result of the plugin for every service on the master",
                                       lambda found: all(found.get(name, {}).get("output", "").startswith(
                                           "K8S_HEALTH ") for name in names))
            yield delivery, cluster, results
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_the_agent_runs_the_check_for_the_master(cluster_run: tuple[str, Cluster, dict[str, dict[str, Any]]]) -> None:
    _, _, results = cluster_run
    result = results["agent-healthy"]
    assert (result["state"], result["output"].rstrip()) == (0, HEALTHY), result
    assert result["check_source"] == "agent"
    perfdata = " ".join(result["performance_data"])
    assert re.search(r"(^| )readyz_time=[0-9.]+s;;;0( |$)", perfdata), perfdata
    assert "readyz_failed=0;;;0" in result["performance_data"]


def test_etcd_down_reaches_the_master(cluster_run: tuple[str, Cluster, dict[str, dict[str, Any]]]) -> None:
    _, _, results = cluster_run
    result = results["agent-etcd-down"]
    lines = result["output"].rstrip().split("\n")
    assert (result["state"], lines[0]) == (2, ETCD_DOWN), result
    assert "[-] readyz etcd: failed: error getting data from etcd: context deadline exceeded" in lines
    assert "readyz_failed=2;;;0" in result["performance_data"]
    # Icinga keeps one "\n": the break before nagiosplugin's "| perfdata" line, not the plugin's last newline.
    assert result["output"].endswith("failed: reason withheld\n"), repr(result["output"])


def test_the_token_constant_works_through_the_satellite(
        cluster_run: tuple[str, Cluster, dict[str, dict[str, Any]]]) -> None:
    """The server refuses anonymous requests: OK proves the token reached the plugin on the satellite."""
    _, cluster, results = cluster_run
    result = results["satellite-token"]
    assert (result["state"], result["output"].rstrip()) == (0, HEALTHY), result
    assert result["check_source"] == "satellite"
    assert TOKEN not in str(cluster.api("/v1/objects/services?attrs=last_check_result"))
    assert result["command"] and all(TOKEN not in part for part in result["command"]), result["command"]


def test_a_constant_is_readable_through_the_rest_api(cluster_run: tuple[str, Cluster, dict[str, dict[str, Any]]]
                                                    ) -> None:
    """What docs/icinga2.md warns of: a token in a constant is shown by /v1/variables, and a custom variable set
    from it by /v1/objects/services, to every API user allowed to query them (protected custom variables only
    hide them in Icinga Web)."""
    _, cluster, _ = cluster_run
    assert TOKEN in json.dumps(cluster.api("/v1/variables"))
    assert TOKEN in json.dumps(cluster.api("/v1/objects/services?attrs=vars"))


def test_the_recommended_token_file_keeps_the_token_out_of_the_rest_api(own_cluster_folder: Path) -> None:
    """The way docs/icinga2.md recommends for a distributed setup: the token in a file on each node that runs the
    check (here the satellite and the agent), no constant anywhere. The server refuses anonymous requests, so OK
    proves the token reached the plugin on both; nothing the master's REST API serves holds it."""
    folder = own_cluster_folder
    token_file = folder / "k8s-token"
    token_file.write_text(TOKEN + "\n")
    subprocess.run(["chown", "root:nagios", str(token_file)], check=True)
    token_file.chmod(0o640)
    with _servers(folder) as servers, \
            icinga_cluster(folder, *_configs("package", servers, token_file=str(token_file))) as cluster:
        results = cluster.wait_for("the checks that need the token, run by the satellite and the agent",
                                   lambda found: all(found.get(name, {}).get("output", "").startswith("K8S_HEALTH ")
                                                     for name in ("satellite-token", "agent-token")))
        for name, source in (("satellite-token", "satellite"), ("agent-token", "agent")):
            assert (results[name]["state"], results[name]["output"].rstrip(), results[name]["check_source"]) == (
                0, HEALTHY, source), results[name]
        exposed = {path: json.dumps(cluster.api(path)) for path in (
            "/v1/objects/services", "/v1/objects/hosts", "/v1/objects/checkcommands", "/v1/variables",
            "/v1/status")}
        assert str(token_file) in exposed["/v1/objects/services"]  # what the master holds: the file's path
        assert [path for path, text in exposed.items() if TOKEN in text] == []


# -- the traps the two deliveries set, each shown by the real icinga2 ------------------------------------------

def _validate(folder: Path, text: str) -> str:
    """``icinga2 daemon -C`` on ``text``; its output (it must fail: these are the configurations to avoid)."""
    code, output = _check(folder, text)
    assert code == 1, output
    return output


@pytest.fixture
def validation_folder() -> Iterator[Path]:
    need("icinga2")
    folder = world_readable_dir("check_k8s_health-icinga-traps-")
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


CONSTANTS = f'const PluginDir = "{PLUGINS}"\nconst PluginContribDir = "{PLUGINS}"\ninclude <itl>\ninclude <plugins>\n'
SERVICE = ('object Host "k8s-cp" { check_command = "dummy" }\n'
           'object Service "k8s-apiserver" { host_name = "k8s-cp"; check_command = "k8s_health" }\n')


CONTRIB_COMMAND = "/usr/share/icinga2/include/plugins-contrib.d/k8s_health.conf"
DIVERTED = CONTRIB_COMMAND + ".global-zone"


def test_a_diversion_keeps_the_plugin_and_drops_only_the_packages_command(
        validation_folder: Path, request: pytest.FixtureRequest) -> None:
    """A node whose cluster takes the command from the global zone keeps the package for the plugin and moves the
    package's copy of the command aside with dpkg-divert, as docs/icinga2.md says: include <plugins-contrib> then
    clashes with the global-zone copy no more, the plugin stays, and a reinstall (an upgrade) keeps it aside."""
    package = request.getfixturevalue("debian_package")
    copy = validation_folder / "global-templates.conf"
    copy.write_text((ROOT / "icinga2-commands.conf").read_text())
    copy.chmod(0o644)
    config = CONSTANTS + "include <plugins-contrib>\n" + f'include "{copy}"\n' + SERVICE
    divert = ["dpkg-divert", "--local", "--rename", "--divert", DIVERTED]
    subprocess.run([*divert, "--add", CONTRIB_COMMAND], check=True, capture_output=True)
    try:
        assert not Path(CONTRIB_COMMAND).exists() and Path(DIVERTED).exists()
        assert _check(validation_folder, config) == (0, "")
        # Unpacked again, as an upgrade does: the file goes to the diverted name again.
        subprocess.run(["dpkg", "-i", str(package.deb)], check=True, capture_output=True)
        assert not Path(CONTRIB_COMMAND).exists() and Path(DIVERTED).exists()
        assert os.access(PLUGINS + "/check_k8s_health", os.X_OK)
    finally:
        subprocess.run([*divert, "--remove", CONTRIB_COMMAND], check=True, capture_output=True)
    assert Path(CONTRIB_COMMAND).exists()
    assert "re-defined" in _check(validation_folder, config)[1]


def _check(folder: Path, text: str) -> tuple[int, str]:
    """``icinga2 daemon -C`` on ``text``: 0 and "" when valid, else the exit code and the errors."""
    config = folder / "check.conf"
    config.write_text(text)
    config.chmod(0o644)
    cache = folder / "cache"
    cache.mkdir(exist_ok=True)
    cache.chmod(0o777)
    result = subprocess.run(["icinga2", "daemon", "-C", "-c", str(config), f"-DConfiguration.CacheDir={cache}",
                             f"-DConfiguration.ObjectsPath={cache}/objects", f"-DConfiguration.VarsPath={cache}/vars"],
                            capture_output=True, text=True, timeout=60, check=False, stdin=subprocess.DEVNULL)
    return result.returncode, "" if result.returncode == 0 else result.stdout


def test_a_master_without_the_command_refuses_its_configuration(validation_folder: Path) -> None:
    """The master compiles every Service it hands to an agent: it needs the CheckCommand too."""
    output = _validate(validation_folder, CONSTANTS + SERVICE)
    assert "Object 'k8s_health' of type 'CheckCommand' does not exist" in output


def test_the_package_and_a_global_zone_copy_clash(validation_folder: Path,
                                                  request: pytest.FixtureRequest) -> None:
    """With the package installed, include <plugins-contrib> (Debian's default icinga2.conf has it) defines the
    command; a copy of icinga2-commands.conf from a global zone defines it again."""
    request.getfixturevalue("debian_plugin")
    copy = validation_folder / "global-templates.conf"
    copy.write_text((ROOT / "icinga2-commands.conf").read_text())
    copy.chmod(0o644)
    output = _validate(validation_folder, CONSTANTS + "include <plugins-contrib>\n" + f'include "{copy}"\n')
    assert "Object 'k8s_health' of type 'CheckCommand' re-defined" in output


def test_a_satellite_without_the_token_constant_rejects_its_zone(own_cluster_folder: Path) -> None:
    """The satellite compiles the Services of its zone: without the constant it rejects the whole synced zone,
    and its Services stay pending on the master."""
    folder = own_cluster_folder
    with _servers(folder) as servers, \
            icinga_cluster(folder, *_configs("package", servers, satellite_token=False)) as cluster:
        cluster.wait_for("the agent's results", lambda found: "agent-healthy" in found)
        logged = cluster.wait_for_log("satellite", "Tried to access undefined script variable 'K8sHealthToken'")
        assert "Config validation failed for staged cluster config sync" in logged
        assert "satellite-token" not in cluster.results()


def test_an_agent_with_the_package_refuses_a_global_zone_copy_silently(own_cluster_folder: Path) -> None:
    """The master delivers the command through the global zone, an agent also has the package: the agent keeps
    running checks with its own copy and refuses every sync of the global zone, saying so only in its log."""
    folder = own_cluster_folder
    with _servers(folder) as servers:
        local, zone_files = _configs("global-zone", servers)
        local["agent"] += "include <plugins-contrib>\n"
        with icinga_cluster(folder, local, zone_files) as cluster:
            results = cluster.wait_for("the agent's result", lambda found: found.get(
                "agent-healthy", {}).get("output", "").startswith("K8S_HEALTH "))
            logged = cluster.wait_for_log("agent", "Config validation failed for staged cluster config sync")
            assert "Object 'k8s_health' of type 'CheckCommand' re-defined" in logged
            assert results["agent-healthy"]["state"] == 0  # the check itself goes on: nothing on the master


@contextlib.contextmanager
def _cluster_with_a_fuller_zone(folder: Path, delivery: str) -> Iterator[Cluster]:
    """A cluster whose global zone holds more than the command, as global-templates does in practice: what makes a
    child refuse a sync that would leave its Services without the command."""
    with _servers(folder) as servers:
        local, zone_files = _configs(delivery, servers)
        zone_files["global-templates/templates.conf"] = 'template Host "generic-k8s" { max_check_attempts = 3 }\n'
        with icinga_cluster(folder, local, zone_files) as cluster:
            yield cluster


#: The Services the switch tests watch: the agent's (command_endpoint) and the satellite's.
CHILD_SERVICES = ("agent-healthy", "satellite-token")


def _first_ok(cluster: Cluster) -> None:
    cluster.wait_for("first OK results of the agent and the satellite", lambda found: all(
        found.get(name, {}).get("output", "").startswith("K8S_HEALTH OK") for name in CHILD_SERVICES))


def test_master_first_leaves_an_agent_without_the_command(own_cluster_folder: Path) -> None:
    """The order docs/icinga2.md warns against: the master switches first (the global-zone file out, the package's
    include in); each child then loses its synced copy of the command before it can take the package's, and the
    master shows its checks as UNKNOWN "does not exist" until it does. The child still gets there."""
    with _cluster_with_a_fuller_zone(own_cluster_folder, "global-zone") as cluster:
        _switch(cluster)


def _switch(cluster: Cluster) -> None:
    cluster.wait_for("the agent's first result", lambda found: found.get(
        "agent-healthy", {}).get("output", "").startswith("K8S_HEALTH OK"))
    master, agent = cluster.nodes["master"], cluster.nodes["agent"]
    (master.folder / "zones.d" / "global-templates" / "k8s_health.conf").unlink()
    _add_include(master.folder / "icinga2.conf")
    cluster.reload("master")
    synced = _synced(cluster, "agent")
    deadline = time.monotonic() + 60
    while any(synced.rglob("k8s_health.conf")):
        assert time.monotonic() < deadline, cluster.logs()
        time.sleep(1)
    assert any(synced.rglob("templates.conf")), "the rest of the zone stays"
    lost = time.time()
    seen: list[str] = []
    _sample(cluster, 6, seen, lost)  # three of the agent's check intervals without the command
    assert any(text.startswith("agent-healthy on agent") and "'k8s_health' does not exist" in text
               for text in seen), seen
    switched = time.time()
    _add_include(agent.folder / "icinga2.conf")
    cluster.reload("agent")
    results = cluster.wait_for("an OK result run by the agent after the switch", lambda found: found.get(
        "agent-healthy", {}).get("execution_end", 0) > switched + 1 and found["agent-healthy"][
        "output"].startswith("K8S_HEALTH OK"))
    assert results["agent-healthy"]["check_source"] == "agent"
    assert "re-defined" not in cluster.log_of("agent")


def _add_include(config: Path) -> None:
    text = config.read_text()
    assert "include <plugins-contrib>" not in text
    config.write_text(text.replace("include <plugins>\n", "include <plugins>\ninclude <plugins-contrib>\n", 1))


def _synced(cluster: Cluster, name: str) -> Path:
    """A child's synced copy of the global zone, where Icinga keeps what the master sent it."""
    return cluster.nodes[name].folder / "data" / "api" / "zones" / "global-templates"


def _sample(cluster: Cluster, seconds: float, seen: list[str], since: float) -> None:
    """Every output the master shows for a few seconds of checks run after ``since``, into ``seen``: a child
    without the command shows as UNKNOWN "Check command 'k8s_health' does not exist", however briefly."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        seen += [f"{name} on {result.get('check_source')} at {result.get('execution_end', 0):.1f}: {result['output']}"
                 for name, result in cluster.results().items() if result.get("execution_end", 0) >= since]
        time.sleep(0.5)


def test_switching_satellite_and_agent_to_the_package_children_first(own_cluster_folder: Path) -> None:
    """docs/icinga2.md's switch from the global zone to the package, on a satellite (whose zone's Services need
    the command to compile) and an agent: each child first, in one step (its synced copy of the command deleted,
    the package's include added, reloaded), the master last. No node is ever without the command: no check says
    it does not exist; the children refuse the global zone's syncs while the master still sends the file, and take
    them again once it no longer does."""
    with _cluster_with_a_fuller_zone(own_cluster_folder, "global-zone") as cluster:
        _first_ok(cluster)
        seen: list[str] = []
        steps: list[str] = []
        began = time.time()
        for child in ("satellite", "agent"):
            steps.append(f"{child} {time.time():.1f}")
            synced = _synced(cluster, child)
            for copy in synced.rglob("k8s_health.conf"):
                copy.unlink()
            _add_include(cluster.nodes[child].folder / "icinga2.conf")
            cluster.reload(child)
            _sample(cluster, 8, seen, began)
            assert not any(synced.rglob("k8s_health.conf")), "a refused sync leaves the copy as it was"
        master = cluster.nodes["master"]
        steps.append(f"master {time.time():.1f}")
        (master.folder / "zones.d" / "global-templates" / "k8s_health.conf").unlink()
        _add_include(master.folder / "icinga2.conf")
        cluster.reload("master")
        _sample(cluster, 8, seen, began)
        switched = time.time()
        _zone_flows_again(cluster, seen, began)
        results = cluster.wait_for("OK results run after the switch", lambda found: all(
            found.get(name, {}).get("execution_end", 0) > switched + 1
            and found[name]["output"].startswith("K8S_HEALTH OK") for name in CHILD_SERVICES))
    assert sorted({output for output in seen if "does not exist" in output}) == [], (switched, steps)
    assert {results[name]["check_source"] for name in CHILD_SERVICES} == {"agent", "satellite"}


def test_switching_satellite_and_agent_from_the_package_to_the_global_zone(own_cluster_folder: Path) -> None:
    """The other way, as docs/icinga2.md gives it: the master first (the file into the global zone, its own include
    out), while every child keeps the package and refuses the zone's syncs; then each child drops the package's
    command (its include out; on a real node the package itself stays, for the plugin) and reloads. Measured:
    whether and how long a child is without the command."""
    with _cluster_with_a_fuller_zone(own_cluster_folder, "package") as cluster:
        _first_ok(cluster)
        began = time.time()
        seen: list[str] = []
        master = cluster.nodes["master"]
        (master.folder / "zones.d" / "global-templates" / "k8s_health.conf").write_text(
            (ROOT / "icinga2-commands.conf").read_text())
        _drop_include(master.folder / "icinga2.conf")
        cluster.reload("master")
        _sample(cluster, 8, seen, began)
        for child in ("satellite", "agent"):
            # The step Icinga cannot take alone: the child refused the zone while it had the package, and a
            # satellite without the command cannot load its zone's Services, so it would never reload. The
            # master's file goes into the child's synced copy by hand, in the same step.
            copy = _synced(cluster, child) / "_etc" / "k8s_health.conf"
            copy.write_text((ROOT / "icinga2-commands.conf").read_text())
            shutil.chown(copy, "nagios", "nagios")
            _drop_include(cluster.nodes[child].folder / "icinga2.conf")
            reloaded = time.time()
            cluster.reload(child)
            cluster.wait_for(f"a result run by the {child} after its reload", partial(_ran_since, child, reloaded))
            _sample(cluster, 6, seen, began)
        _zone_flows_again(cluster, seen, began)
        switched = time.time()
        results = cluster.wait_for("OK results run after the switch", lambda found: all(
            found.get(name, {}).get("execution_end", 0) > switched + 1
            and found[name]["output"].startswith("K8S_HEALTH OK") for name in CHILD_SERVICES))
    assert sorted({text for text in seen if "does not exist" in text}) == []
    assert {results[name]["check_source"] for name in CHILD_SERVICES} == {"agent", "satellite"}


def _zone_flows_again(cluster: Cluster, seen: list[str], began: float) -> None:
    """A change the master makes to the global zone now reaches both children: they take its syncs again."""
    master = cluster.nodes["master"]
    (master.folder / "zones.d" / "global-templates" / "templates.conf").write_text(
        'template Host "generic-k8s" { max_check_attempts = 5 }\n')
    cluster.reload("master")
    for child in ("satellite", "agent"):
        deadline = time.monotonic() + 60
        while "max_check_attempts = 5" not in "".join(
                path.read_text() for path in _synced(cluster, child).rglob("templates.conf")):
            assert time.monotonic() < deadline, f"{child} did not take the global zone again:\n" \
                                                f"{cluster.log_of(child)[-3000:]}"
            _sample(cluster, 1, seen, began)


def _ran_since(child: str, since: float, found: dict[str, dict[str, Any]]) -> bool:
    return any(result.get("check_source") == child and result.get("execution_end", 0) > since + 1
               for result in found.values())


def _drop_include(config: Path) -> None:
    text = config.read_text()
    assert "include <plugins-contrib>\n" in text
    config.write_text(text.replace("include <plugins-contrib>\n", "", 1))
