"""Distributed Icinga 2 as operators run it (docs/icinga2.md): a master, a satellite and an agent, real icinga2
daemons joined by Icinga's ticket PKI (tests/icingacluster.py). The master schedules one Service on the agent
(``command_endpoint``) and the satellite runs the Services of its zone; the results are read from the master's REST
API. Each of the two ways to deliver the CheckCommand is a cluster of its own:

- the Debian package on every node (``include <plugins-contrib>``), the master included;
- ``icinga2-commands.conf`` in the global zone ``global-templates``, with no node including the package's copy.
"""

from __future__ import annotations

import contextlib
import re
import secrets
import shutil
import subprocess
import time
from collections.abc import Iterator
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


def _service(name: str, server: str, ca: str, endpoint: str = "", token: bool = False) -> str:
    lines = ['  check_command = "k8s_health"', "  check_interval = 2s", "  retry_interval = 2s",
             f'  vars.k8s_health_server = "{server}"', f'  vars.k8s_health_certificate_authority = "{ca}"']
    if endpoint:
        lines.append(f'  command_endpoint = "{endpoint}"')
    if token:
        lines.append("  vars.k8s_health_token = K8sHealthToken")
    host = "k8s-cp" if endpoint else "k8s-cp-satellite"
    return f'object Service "{name}" {{\n  host_name = "{host}"\n' + "\n".join(lines) + "\n}\n"


def _configs(delivery: str, servers: tuple[str, str, str, str], satellite_token: bool = True
             ) -> tuple[dict[str, str], dict[str, str]]:
    """Each node's own configuration and the master's zones.d for one way of delivering the CheckCommand;
    ``servers``: the CA file and the URLs ``_servers`` gives."""
    ca, healthy, down, secured = servers
    includes = "include <itl>\ninclude <plugins>\n"
    if delivery == "package":
        includes += "include <plugins-contrib>\n"
    constants = f'const PluginDir = "{PLUGINS}"\nconst PluginContribDir = "{PLUGINS}"\n'
    # The token constant: wherever a zone's Services are compiled, the master and that zone's satellite.
    token = f'const K8sHealthToken = "{TOKEN}"\n'
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
                                + _service("satellite-token", secured, ca, token=True),
    }
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


# -- the traps the two deliveries set, each shown by the real icinga2 ------------------------------------------

def _validate(folder: Path, text: str) -> str:
    """``icinga2 daemon -C`` on ``text``; its output (it must fail: these are the configurations to avoid)."""
    config = folder / "check.conf"
    config.write_text(text)
    config.chmod(0o644)
    cache = folder / "cache"
    cache.mkdir(exist_ok=True)
    cache.chmod(0o777)
    result = subprocess.run(["icinga2", "daemon", "-C", "-c", str(config), f"-DConfiguration.CacheDir={cache}",
                             f"-DConfiguration.ObjectsPath={cache}/objects", f"-DConfiguration.VarsPath={cache}/vars"],
                            capture_output=True, text=True, timeout=60, check=False, stdin=subprocess.DEVNULL)
    assert result.returncode == 1, result.stdout
    return result.stdout


@pytest.fixture
def validation_folder() -> Iterator[Path]:
    need("icinga2")
    folder = world_readable_dir("check_k8s_health-icinga-traps-")
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


CONSTANTS = f'const PluginDir = "{PLUGINS}"\nconst PluginContribDir = "{PLUGINS}"\ninclude <itl>\ninclude <plugins>\n'
SERVICE = ('object Host "k8s-cp" { check_command = "dummy" }\n'
           'object Service "k8s-apiserver" { host_name = "k8s-cp"; check_command = "k8s_health" }\n')


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


def test_switching_from_the_global_zone_to_the_package(own_cluster_folder: Path) -> None:
    """As docs/icinga2.md says: the master changes in one reload (the global-zone file out, the package's include
    in); each child takes the package only once its synced copy of the zone has lost the file."""
    folder = own_cluster_folder
    with _servers(folder) as servers:
        local, zone_files = _configs("global-zone", servers)
        # The zone holds more than the command, as global-templates does in practice.
        zone_files["global-templates/templates.conf"] = 'template Host "generic-k8s" { max_check_attempts = 3 }\n'
        with icinga_cluster(folder, local, zone_files) as cluster:
            _switch(cluster)


def _switch(cluster: Cluster) -> None:
    cluster.wait_for("the agent's first result", lambda found: found.get(
        "agent-healthy", {}).get("output", "").startswith("K8S_HEALTH OK"))
    master, agent = cluster.nodes["master"], cluster.nodes["agent"]
    (master.folder / "zones.d" / "global-templates" / "k8s_health.conf").unlink()
    _add_include(master.folder / "icinga2.conf")
    cluster.reload("master")
    synced = agent.folder / "data" / "api" / "zones" / "global-templates"
    deadline = time.monotonic() + 60
    while any(synced.rglob("k8s_health.conf")):
        assert time.monotonic() < deadline, cluster.logs()
        time.sleep(1)
    assert any(synced.rglob("templates.conf")), "the rest of the zone stays"
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
