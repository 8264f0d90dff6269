"""What a run loads is part of its cost (SPEC: start-up time matters): modules only some runs need must not be
imported by the others. Checked in the installed command's own process, by the modules it ends up with."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import clean_env
from fakeapi import FakeApiServer, healthy_routes
from fakecluster import control_plane

#: Printed by the process itself after main() has run, through an exit hook.
_PROBE = ("import atexit, json, sys\n"
          "atexit.register(lambda: sys.__stderr__.write(json.dumps(sorted(sys.modules))))\n"
          "sys.argv[0] = 'check_k8s_health'\n"
          "from check_k8s_health.cli import main\nmain()\n")
MEMBERS_ONLY = {f"check_k8s_health.checks.members.{stage}" for stage in ("acquire", "read", "judge")}
BLIND_ONLY = {f"check_k8s_health.checks.blindspots.{stage}" for stage in ("acquire", "read", "judge")}
LEADERS_ONLY = {f"check_k8s_health.checks.leaders.{stage}" for stage in ("acquire", "read", "judge")}
WRITES_ONLY = {f"check_k8s_health.checks.writes.{stage}" for stage in ("acquire", "read", "judge")}
ETCD_ONLY = {f"check_k8s_health.checks.etcdsize.{stage}" for stage in ("acquire", "read", "judge")}
SOME_RUNS_ONLY = {"yaml", "check_k8s_health.access.execplugin", "check_k8s_health.output.machine", "_strptime",
                  "dataclasses", "check_k8s_health.transport.tls"}


def _modules(*args: str) -> set[str]:
    result = subprocess.run([sys.executable, "-c", _PROBE, *args], capture_output=True, text=True, env=clean_env(),
                            timeout=30, check=False, stdin=subprocess.DEVNULL, cwd="/")
    assert result.returncode in (0, 1, 2, 3), result
    return set(json.loads(result.stderr))


def test_a_plain_run_imports_nothing_it_does_not_need() -> None:
    with FakeApiServer(healthy_routes()) as server:
        modules = _modules("-s", server.url, "--certificate-authority", server.ca_file)
    assert "check_k8s_health.run.engine" in modules  # the probe sees the run's modules
    unneeded = MEMBERS_ONLY | BLIND_ONLY | LEADERS_ONLY | WRITES_ONLY | ETCD_ONLY | SOME_RUNS_ONLY
    assert not modules & unneeded, modules & unneeded


@pytest.mark.parametrize("mode", [[], ["--output", "json"]])
def test_a_members_run_imports_the_member_modules(mode: list[str]) -> None:
    with control_plane([healthy_routes()]) as plane:
        modules = _modules(*plane.lb_args, "--members", *mode)
    assert modules >= MEMBERS_ONLY


@pytest.mark.parametrize("mode", [[], ["--output", "json"]])
def test_a_blind_spots_run_imports_their_modules(mode: list[str]) -> None:
    from fakeblind import healthy_blind_routes

    with FakeApiServer(healthy_blind_routes()) as server:
        modules = _modules("-s", server.url, "--certificate-authority", server.ca_file, "--webhooks",
                           "--aggregated-apis", *mode)
    assert modules >= BLIND_ONLY
    assert not modules & {"check_k8s_health.checks.members.acquire", "check_k8s_health.checks.members.judge"}


@pytest.mark.parametrize("mode", [[], ["--output", "json"]])
def test_a_leaders_run_imports_their_modules_and_no_other_checks(mode: list[str]) -> None:
    from fakeleaders import leader_routes

    with FakeApiServer(leader_routes()) as server:
        modules = _modules("-s", server.url, "--certificate-authority", server.ca_file, "--leaders", *mode)
    assert modules >= LEADERS_ONLY
    assert not modules & (MEMBERS_ONLY | BLIND_ONLY | WRITES_ONLY | ETCD_ONLY)


@pytest.mark.parametrize("mode", [[], ["--output", "json"]])
def test_the_write_probe_and_the_etcd_size_import_theirs_alone(mode: list[str]) -> None:
    from fakeleaders import control_plane_routes

    with FakeApiServer(control_plane_routes()) as server:
        probe = _modules("-s", server.url, "--certificate-authority", server.ca_file, "--write-probe", *mode)
        size = _modules("-s", server.url, "--certificate-authority", server.ca_file, "--etcd-quota", "2GiB", *mode)
    assert probe >= WRITES_ONLY and not probe & (ETCD_ONLY | LEADERS_ONLY | MEMBERS_ONLY | BLIND_ONLY)
    assert size >= ETCD_ONLY and not size & (WRITES_ONLY | LEADERS_ONLY | MEMBERS_ONLY | BLIND_ONLY)
