"""Icinga 2 (2.13) with icinga2-commands.conf, using the real program (consumers.md section 3): the file validates
with every variable set, its HA example validates, a private daemon runs real checks against HTTPS servers on
127.0.0.1 (state, output, perfdata, argv without the token), and Icinga's own perfdata parser accepts every
perfdata item the plugin prints. Skipped without root or icinga2."""

from __future__ import annotations

import json
import re
import secrets
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Union

import pytest
from conftest import ca_args, run_plugin
from consumers import need, readable_copy, stop_daemon, world_readable_dir
from fakeapi import FakeApiServer, Reply, etcd_down_routes, healthy_routes
from fakeblind import APISERVICES_PATH, BLOCKED_LINE, broken_webhook_routes, unavailable_apiservice_routes
from fakecluster import ControlPlane, control_plane
from fakeleaders import CONTROLLER_MANAGER, CONTROLLER_MANAGER_CRASHING, SCHEDULER, SCHEDULER_STOPPED, lease_reply

from check_k8s_health.cli import build_parser

CONF = Path(__file__).resolve().parent.parent / "icinga2-commands.conf"
CONSTANTS = 'const PluginDir = "/usr/lib/nagios/plugins"\nconst PluginContribDir = "/usr/lib/nagios/plugins"\n'
INCLUDES = "include <itl>\ninclude <plugins>\n"

#: Options without a CheckCommand argument: JSON for Zabbix and scripts, of no use to Icinga.
NOT_FOR_ICINGA = ("--help", "--version", "--verbose", "--output", "--discover")

#: A token the private daemon passes to the plugin; it must never show in a logged command line.
TOKEN = "icinga-e2e-" + secrets.token_hex(12)

Value = Union[bool, int, str, list[str]]

#: A value for every k8s_health_* variable (arrays for the repeatable options). Nothing here reaches the network:
#: the kubeconfig does not exist, so the plugin stops before connecting.
EVERY_VARIABLE: dict[str, Value] = {
    "server": ["https://127.0.0.1:1", "https://127.0.0.1:2"],
    "hostname": ["127.0.0.1", "localhost"],
    "port": 6443,
    "endpoint": ["livez", "readyz"],
    "component": "apiserver",
    "min_healthy": 2,
    "members": True,
    "expect_members": 3,
    "webhooks": True,
    "aggregated_apis": True,
    "leaders": True,
    "leader_lease": ["kube-system/cloud-controller-manager", "cert-manager/cert-manager-controller"],
    "write_probe": True,
    "write_lease": "monitoring/probe-host-1",
    "etcd_quota": "8GiB",
    "write_warning": 1,
    "write_critical": "2.5",
    "etcd_warning": 70,
    "etcd_critical": 90,
    "exclude": ["etcd", "informer-sync"],
    "kubeconfig": "/nonexistent/kubeconfig",
    "context": "admin@kubernetes",
    "token_file": "/nonexistent/token",
    "certificate_authority": "/nonexistent/ca.crt",
    "insecure_skip_tls_verify": True,
    "tls_server_name": "kubernetes",
    "client_certificate": "/nonexistent/client.crt",
    "client_key": "/nonexistent/client.key",
    "warning_check": ["etcd", "poststarthook/*"],
    "critical_check": ["etcd-readiness", "shutdown"],
    "ignore_check": ["informer-sync", "log"],
    "no_reasons": True,
    "warning": "1",
    "critical": "~:5",
    "cert_warning": 30,
    "cert_critical": 7,
    "timeout": 5,
    "verbose": 2,
    "token": TOKEN,
}


def _options() -> dict[str, str]:
    """Long option -> kind ('flag', 'repeat' or 'value') for every option that has a CheckCommand argument."""
    kinds = {}
    for action in build_parser()._actions:
        longs = [opt for opt in action.option_strings if opt.startswith("--")]
        if longs and longs[0] not in NOT_FOR_ICINGA:
            kinds[longs[0]] = ("flag" if action.nargs == 0 else
                               "repeat" if type(action).__name__ == "_AppendAction" else "value")
    return kinds


def _dsl(value: Value) -> str:
    """An Icinga 2 DSL literal (JSON string escapes are valid Icinga escapes)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[ " + ", ".join(json.dumps(item) for item in value) + " ]"
    return json.dumps(value)


def _vars(values: dict[str, Value]) -> str:
    return "".join(f"  vars.k8s_health_{name} = {_dsl(value)}\n" for name, value in values.items())


def _icinga2(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["icinga2", *args], capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL, check=False)


@pytest.fixture(scope="module")
def workdir() -> Iterator[Path]:
    """A world-readable folder (icinga2 drops to nagios before reading its config) holding a copy of the file."""
    need("icinga2")
    folder = world_readable_dir("check_k8s_health-icinga2-")
    target = folder / "icinga2-commands.conf"
    target.write_text(CONF.read_text())
    target.chmod(0o644)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def validation_argv(folder: Path, name: str, text: str) -> list[str]:
    """``icinga2 daemon -C`` of ``text``, written to ``folder`` (which nagios must be able to read)."""
    config = folder / name
    config.write_text(text)
    config.chmod(0o644)
    # icinga2.vars and icinga2.debug go to a folder nagios may write, not to /var/cache/icinga2.
    cache = folder / "cache"
    cache.mkdir(exist_ok=True)
    cache.chmod(0o777)
    return ["daemon", "-C", "-c", str(config), f"-DConfiguration.CacheDir={cache}",
            f"-DConfiguration.ObjectsPath={cache}/icinga2.debug", f"-DConfiguration.VarsPath={cache}/icinga2.vars"]


def _validate(folder: Path, name: str, text: str, *defines: str) -> subprocess.CompletedProcess[str]:
    return _icinga2(*validation_argv(folder, name, text), *defines)


# -- icinga2 daemon -C ----------------------------------------------------------------------------------------

def test_every_variable_has_a_sample_value() -> None:
    variables = set(re.findall(r"\$k8s_health_(\w+)\$", CONF.read_text()))
    expected = {option[2:].replace("-", "_") for option in _options()} | {"verbose", "token"}
    assert variables == expected == set(EVERY_VARIABLE)


def test_the_commands_validate_with_every_variable_set(workdir: Path) -> None:
    text = (CONSTANTS + INCLUDES + f'include "{workdir}/icinga2-commands.conf"\n'
            'object Host "k8s-cp-1" {\n  check_command = "dummy"\n  address = "10.0.0.11"\n'
            + _vars(EVERY_VARIABLE) + "}\n"
            'object Service "k8s-health" {\n  host_name = "k8s-cp-1"\n  check_command = "k8s_health"\n'
            + _vars(EVERY_VARIABLE) + "}\n")
    result = _validate(workdir, "every.conf", text)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Instantiated 1 Service." in result.stdout, result.stdout


def test_a_typo_fails_validation(workdir: Path) -> None:
    """Proves the validation above can fail: an unknown key in an argument dictionary is an error."""
    broken = workdir / "broken-commands.conf"
    broken.write_text(CONF.read_text().replace('\t\t"--server" = {\n', '\t\t"--server" = {\n\t\t\trequird = true\n', 1))
    broken.chmod(0o644)
    assert "requird" in broken.read_text()
    result = _validate(workdir, "broken.conf", CONSTANTS + INCLUDES + f'include "{broken}"\n')
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Invalid attribute: requird" in result.stdout, result.stdout


def test_the_blind_spots_example_in_the_comments_validates(workdir: Path) -> None:
    block = re.search(r"^/\*\n \* Example: what /readyz cannot see.*?^ \*/", CONF.read_text(), re.M | re.S)
    assert block is not None
    example = "".join(line[5:] + "\n" for line in block.group(0).splitlines() if line.startswith(" *   "))
    assert "vars.k8s_health_webhooks = true" in example and "vars.k8s_health_aggregated_apis = true" in example
    example += 'object Host "k8s-api" {\n  check_command = "hostalive"\n  address = "10.0.0.10"\n}\n'
    (workdir / "blind-example.conf").write_text(example)
    (workdir / "blind-example.conf").chmod(0o644)
    text = CONSTANTS + INCLUDES + f'include "{workdir}/icinga2-commands.conf"\ninclude "{workdir}/blind-example.conf"\n'
    result = _validate(workdir, "blind.conf", text)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Instantiated 1 Service." in result.stdout, result.stdout


def test_the_ha_example_in_the_comments_validates(workdir: Path) -> None:
    """The commented HA example, uncommented, with the zones its agent variant needs (command_endpoint must name
    an Endpoint in a child zone of the checkable's zone: the example goes to zones.d/master)."""
    block = re.search(r"^/\*\n \* Example: an HA control plane.*?^ \*/", CONF.read_text(), re.M | re.S)
    assert block is not None
    example = "".join(line[5:] + "\n" for line in block.group(0).splitlines() if line.startswith(" *   "))
    assert "command_endpoint = host.name" in example and "apply Service" in example
    example += ('object Host "k8s-cp-2" {\n  check_command = "hostalive"\n  address = "10.0.0.12"\n'
                "  vars.k8s_control_plane = true\n  vars.icinga_agent = true\n}\n")
    zone = workdir / "zones.d" / "master"
    zone.mkdir(parents=True, exist_ok=True)
    for folder in (workdir / "zones.d", zone):
        folder.chmod(0o755)
    (zone / "example.conf").write_text(example)
    (zone / "example.conf").chmod(0o644)
    zones = ('object Endpoint "master" {}\nobject Zone "master" { endpoints = [ "master" ] }\n'
             + "".join(f'object Endpoint "{node}" {{}}\n'
                       f'object Zone "{node}" {{ endpoints = [ "{node}" ]; parent = "master" }}\n'
                       for node in ("k8s-cp-1", "k8s-cp-2")))
    text = (CONSTANTS + 'const K8sHealthToken = "not-a-real-token"\n' + INCLUDES
            + f'include "{workdir}/icinga2-commands.conf"\n' + zones)
    result = _validate(workdir, "example.conf", text, f"-DConfiguration.ZonesDir={workdir}/zones.d")
    assert result.returncode == 0, result.stdout + result.stderr
    # the members check, k8s-apiserver on both nodes, the load balancer, and the agent variant on k8s-cp-2
    assert "Instantiated 5 Services." in result.stdout, result.stdout


# -- a private icinga2 daemon runs the checks -------------------------------------------------------------------

@dataclass(frozen=True)
class Result:
    state: int
    output: str
    perfdata: str


@dataclass(frozen=True)
class DaemonRun:
    results: dict[str, Result]
    command_lines: dict[str, str]  # service name -> the logged "Running command" argv
    debug_log: str
    healthy: FakeApiServer
    cut_member: str  # the member cut off from etcd, as the status line names it


def _services(healthy: FakeApiServer, etcd_down: FakeApiServer, plane: ControlPlane, plane_ca: str,
              blind: FakeApiServer) -> dict[str, dict[str, Value]]:
    """Services the daemon runs, with the variables each sets besides the CA. Each has its own timeout, which
    tells their logged command lines apart."""
    return {
        # authenticates with the token from the environment: the server refuses anonymous requests
        "healthy": {"server": healthy.url, "endpoint": ["livez", "readyz"], "token": TOKEN, "timeout": 7},
        # the same server without a token: UNKNOWN, so the OK above proves the token arrived
        "no-token": {"server": healthy.url, "timeout": 6},
        "etcd-down": {"server": etcd_down.url, "timeout": 8},
        # no server: --hostname defaults to the host's address, with --port; the verbosity as a string, as a
        # Director data field of type String gives it
        "by-hostname": {"port": healthy.port, "token": TOKEN, "verbose": "0", "timeout": 4},
        "every-variable": EVERY_VARIABLE,
        # every member of a control plane found through its load balancer, one of them cut off from etcd
        "members": {"server": plane.lb.url, "members": True, "expect_members": 3, "min_healthy": 2,
                    "certificate_authority": plane_ca, "timeout": 9},
        # what /readyz cannot see: a webhook whose service is gone, unavailable aggregated APIs
        "blind-spots": {"server": blind.url, "webhooks": True, "aggregated_apis": True, "timeout": 3},
        # the control plane's loops: its scheduler stopped, its controller manager unable to start
        "leaders": {"server": blind.url, "leaders": True, "leader_lease": ["kube-system/kube-scheduler"],
                    "timeout": 10},
        # etcd out of space: the write refused, the size near the quota, with the thresholds the example sets
        "writes": {"server": blind.url, "write_probe": True, "etcd_quota": "2GiB", "etcd_warning": 70,
                   "write_critical": 2, "timeout": 11},
    }


PERFDATA_TEMPLATE = ("SERVICE::$service.name$\\tSTATE::$service.state_id$\\tOUTPUT::$service.output$"
                     "\\tPERF::$service.perfdata$")
RECORD = re.compile(r"^SERVICE::([^\t\n]*)\tSTATE::(\d+)\tOUTPUT::(.*?)\tPERF::([^\n]*)$", re.M | re.S)


def _run_daemon(workdir: Path, name: str, plugin_dir: str, includes: str, *, services: dict[str, dict[str, Value]],
                ca_file: str) -> tuple[dict[str, Result], dict[str, str], str]:
    """Runs a private icinga2 daemon until every service has a result; returns the results, the logged command
    line of each service and the debug log."""
    out = workdir / f"out-{name}"
    out.mkdir()
    out.chmod(0o777)  # the daemon runs as nagios
    objects = "".join(
        f'object Service "{service}" {{\n  host_name = "k8s-cp"\n  check_command = "k8s_health"\n'
        "  check_interval = 2s\n  retry_interval = 2s\n"
        + _vars({"certificate_authority": ca_file, **variables}) + "}\n"
        for service, variables in services.items())
    config = workdir / f"{name}.conf"
    config.write_text(
        f'const PluginDir = "/usr/lib/nagios/plugins"\nconst PluginContribDir = "{plugin_dir}"\n' + includes
        + 'object CheckerComponent "checker" {}\n'
        f'object FileLogger "debug" {{\n  path = "{out}/debug.log"\n  severity = "debug"\n}}\n'
        'object PerfdataWriter "perfdata" {\n'
        f'  service_perfdata_path = "{out}/service-perfdata"\n  service_temp_path = "{out}/service-tmp"\n'
        f'  host_perfdata_path = "{out}/host-perfdata"\n  host_temp_path = "{out}/host-tmp"\n'
        f'  rotation_interval = 5s\n  service_format_template = "{PERFDATA_TEMPLATE}"\n}}\n'
        'object Host "k8s-cp" {\n  check_command = "dummy"\n  address = "127.0.0.1"\n}\n' + objects)
    config.chmod(0o644)
    paths = {"InitRunDir": out, "StatePath": out / "icinga2.state", "ModAttrPath": out / "modattr.conf",
             "ObjectsPath": out / "objects.debug", "VarsPath": out / "icinga2.vars", "CacheDir": out,
             "DataDir": out, "SpoolDir": out, "LogDir": out}
    defines = [f"-DConfiguration.{key}={value}" for key, value in paths.items()]
    with open(out / "daemon.log", "wb") as log:
        daemon = subprocess.Popen(["icinga2", "daemon", "-c", str(config), *defines], stdout=log,
                                  stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    results: dict[str, Result] = {}
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and daemon.poll() is None and set(results) != set(services):
            time.sleep(0.25)
            for path in sorted(out.glob("service-perfdata.*")):
                for match in RECORD.finditer(path.read_text(errors="replace")):
                    results.setdefault(match[1], Result(int(match[2]), match[3], match[4]))
    finally:
        stop_daemon(daemon)
    diagnostics = (out / "daemon.log").read_text(errors="replace")[-3000:]
    assert set(results) == set(services), f"no result for {set(services) - set(results)}: {diagnostics}"
    debug_log = (out / "debug.log").read_text(errors="replace")
    command_lines: dict[str, str] = {}
    for line in debug_log.splitlines():
        for service, variables in services.items():
            if "Running command" in line and f"'--timeout' '{variables['timeout']}'" in line:
                command_lines.setdefault(service, line)
    assert set(command_lines) == set(services), debug_log[-3000:]
    return results, command_lines, debug_log


@pytest.fixture(scope="module")
def daemon_run(workdir: Path, consumer_plugin: Path) -> Iterator[DaemonRun]:
    cut = {"/readyz": Reply.from_capture("members/readyz_verbose_member3_cut_from_etcd.txt")}
    with FakeApiServer(healthy_routes(), token=TOKEN, anonymous=False) as healthy, \
            FakeApiServer(etcd_down_routes(), ca=healthy.ca) as etcd_down, \
            control_plane([healthy_routes(), healthy_routes(), cut]) as plane, \
            FakeApiServer({**broken_webhook_routes(), APISERVICES_PATH: unavailable_apiservice_routes()[
                APISERVICES_PATH], **_leaderless()}, ca=healthy.ca) as blind:
        ca_file = readable_copy(healthy.ca_file, workdir, "ca.crt")
        plane_ca = readable_copy(plane.lb.ca_file, workdir, "members-ca.crt")
        results, command_lines, debug_log = _run_daemon(
            workdir, "e2e", str(consumer_plugin.parent), INCLUDES + f'include "{workdir}/icinga2-commands.conf"\n',
            services=_services(healthy, etcd_down, plane, plane_ca, blind), ca_file=ca_file)
        yield DaemonRun(results, command_lines, debug_log, healthy, plane.name(2))


def test_daemon_healthy_is_ok_with_perfdata(daemon_run: DaemonRun) -> None:
    result = daemon_run.results["healthy"]
    assert result.state == 0, result
    lines = result.output.rstrip().split("\n")
    assert lines[0] == "K8S_HEALTH OK - livez: all 30 sub-checks passed; readyz: all 33 sub-checks passed", result
    # A token without expiry is said only at -vv: at the default -v it would be noise on every check.
    assert not any(line.startswith("token from") for line in lines), result
    labels = [item.split("=", 1)[0] for item in result.perfdata.split()]
    assert {"cert_days_left", "livez_checks", "livez_failed", "livez_time", "readyz_checks", "readyz_failed",
            "readyz_time"} <= set(labels), result.perfdata
    assert "readyz_failed=0;;;0" in result.perfdata.split()
    assert re.search(r"(^| )readyz_time=[0-9.]+s;;;0( |$)", result.perfdata), result.perfdata


def test_daemon_token_reaches_the_plugin_through_the_environment_only(daemon_run: DaemonRun) -> None:
    """OK against a server that refuses anonymous requests (no-token proves it does), and the token is in no
    logged command line."""
    assert daemon_run.results["healthy"].state == 0
    refused = daemon_run.results["no-token"]
    assert refused.state == 3 and refused.output.startswith("K8S_HEALTH UNKNOWN - "), refused
    assert f"Bearer {TOKEN}" in [seen.header("Authorization") for seen in daemon_run.healthy.requests]
    running = [line for line in daemon_run.debug_log.splitlines() if "Running command" in line]
    assert len(running) >= 5, running
    assert all(TOKEN not in line for line in running)
    assert TOKEN not in daemon_run.debug_log
    healthy_argv = daemon_run.command_lines["healthy"]
    assert "--token-file" not in healthy_argv and "K8S_HEALTH_TOKEN" not in healthy_argv, healthy_argv


def test_daemon_etcd_down_is_critical_with_reasons(daemon_run: DaemonRun) -> None:
    result = daemon_run.results["etcd-down"]
    assert result.state == 2, result
    lines = result.output.rstrip().split("\n")
    assert lines[0] == "K8S_HEALTH CRITICAL - readyz: etcd, etcd-readiness failed (2 of 33 sub-checks)", result
    # k8s_health_verbose defaults to 1: the failed sub-checks follow as long output, the perfdata is parsed apart
    assert "[-] readyz etcd: failed: error getting data from etcd: context deadline exceeded" in lines, result
    assert "|" not in result.output, result
    assert "readyz_failed=2;;;0" in result.perfdata.split() and "readyz_checks=33;;;0" in result.perfdata.split()
    assert re.search(r"(^| )readyz_time=[0-9.]+s;;;0( |$)", result.perfdata), result.perfdata


def test_daemon_checks_every_member(daemon_run: DaemonRun) -> None:
    result = daemon_run.results["members"]
    lines = result.output.rstrip().split("\n")
    assert (result.state, lines[0]) == (1, f"K8S_HEALTH WARNING - 2 of 3 API servers healthy (--min-healthy 2); "
                                           f"{daemon_run.cut_member} readyz: etcd, etcd-readiness failed (2 of 33 "
                                           "sub-checks)"), result
    assert "'--members'" in daemon_run.command_lines["members"]
    assert "'--expect-members' '3'" in daemon_run.command_lines["members"]
    perf = result.perfdata.split()
    assert "members_listed=3;;;0" in perf and "members_alive=3;;;0" in perf, result.perfdata
    assert "127_0_0_3_readyz_failed=2;;;0" in perf, result.perfdata


def test_daemon_sees_what_readyz_cannot(daemon_run: DaemonRun) -> None:
    result = daemon_run.results["blind-spots"]
    lines = result.output.rstrip().split("\n")
    assert (result.state, lines[0]) == (2, f"K8S_HEALTH CRITICAL - readyz: all 33 sub-checks passed; {BLOCKED_LINE}; "
                                           "and 1 more"), result
    assert "'--webhooks'" in daemon_run.command_lines["blind-spots"]
    assert "'--aggregated-apis'" in daemon_run.command_lines["blind-spots"]
    assert any(line.startswith("[-] apiservice v1beta1.metrics.k8s.io: ServiceNotFound") for line in lines), result
    perf = result.perfdata.split()
    assert {"webhooks=3;;;0", "webhooks_unserved=2;;;0", "apiservices=24;;;0", "apiservices_unavailable=3;;;0"} <= \
        set(perf), result.perfdata


def _leaderless() -> dict[str, Reply]:
    from fakeleaders import PROBE, PROBE_NOSPACE, metrics_body, metrics_reply, probe_reply

    full = metrics_body(b'apiserver_storage_size_bytes{cluster="etcd-0"} 1.6e+09\n')
    return {SCHEDULER: lease_reply(SCHEDULER_STOPPED), CONTROLLER_MANAGER: lease_reply(CONTROLLER_MANAGER_CRASHING),
            PROBE: probe_reply(PROBE_NOSPACE), "/metrics": metrics_reply(full)}


def test_daemon_runs_the_write_probe_and_the_etcd_size(daemon_run: DaemonRun) -> None:
    result = daemon_run.results["writes"]
    assert result.state == 2, result
    assert result.output.split("\n", 1)[0] == (
        "K8S_HEALTH CRITICAL - readyz: all 33 sub-checks passed; etcd is out of space: every write is refused; "
        "etcd is 75 % full (1.49 GiB of 2 GiB): at 100 % every write is refused"), result
    line = daemon_run.command_lines["writes"]
    assert "'--etcd-quota' '2GiB'" in line and "'--etcd-warning' '70'" in line and "'--write-probe'" in line
    assert "'--write-critical' '2'" in line
    assert re.search(r"(^| )write_time=[\d.]+s;;2;0( |$)", result.perfdata), result.perfdata
    assert re.search(r"(^| )etcd_db_size=1600000000B;1503238553;2040109465;0;2147483648( |$)", result.perfdata), \
        result.perfdata


def test_daemon_judges_the_leaders(daemon_run: DaemonRun) -> None:
    result = daemon_run.results["leaders"]
    lines = result.output.rstrip().split("\n")
    assert result.state == 2, result
    assert re.fullmatch(r"K8S_HEALTH CRITICAL - readyz: all 33 sub-checks passed; no leader for kube-scheduler "
                        r"\(\d\d s\), kube-controller-manager \(\d\d s\)", lines[0]), result
    assert "'--leader-lease' 'kube-system/kube-scheduler' '--leaders'" in daemon_run.command_lines["leaders"]
    assert re.search(r"(^| )leader_kube_scheduler_age=\d\d(\.\d)?s;;;0( |$)", result.perfdata), result.perfdata


def test_daemon_hostname_defaults_to_the_host_address(daemon_run: DaemonRun) -> None:
    result = daemon_run.results["by-hostname"]
    # Icinga keeps the blank before "|" at the end of the output
    assert (result.state, result.output.rstrip()) == (0, "K8S_HEALTH OK - readyz: all 33 sub-checks passed"), result
    argv = daemon_run.command_lines["by-hostname"]
    port = daemon_run.healthy.port
    assert "'--hostname' '127.0.0.1'" in argv and f"'--port' '{port}'" in argv and "--server" not in argv, argv
    assert "'-v'" not in argv and "'-vv'" not in argv and "'-vvv'" not in argv, argv  # k8s_health_verbose = "0"


def test_daemon_renders_every_variable(daemon_run: DaemonRun) -> None:
    """Arrays repeat the key, flags are bare, --hostname and --port give way to --server, the verbosity picks one
    key, and the token is not an argument."""
    argv = daemon_run.command_lines["every-variable"]
    for option, kind in _options().items():
        value = EVERY_VARIABLE[option[2:].replace("-", "_")]
        if option in ("--hostname", "--port"):
            assert f"'{option}'" not in argv, argv
        elif kind == "flag":
            assert f"'{option}'" in argv, option
        elif kind == "repeat":
            assert isinstance(value, list)
            assert " ".join(f"'{option}' '{item}'" for item in value) in argv, option
        else:
            assert f"'{option}' '{value}'" in argv, option
    assert "'-vv'" in argv and "'-v'" not in argv and "'-vvv'" not in argv, argv
    result = daemon_run.results["every-variable"]
    assert result.output.startswith("K8S_HEALTH "), result  # the plugin ran and answered in its own words


def test_the_packaged_command_comes_with_plugins_contrib(workdir: Path, debian_plugin: Path) -> None:
    """The includes of the stock icinga2.conf and Debian's PluginContribDir, nothing of the repository's: the
    Debian package's plugins-contrib.d/k8s_health.conf defines k8s_health, and it runs the packaged plugin."""
    with FakeApiServer(healthy_routes()) as healthy, FakeApiServer(etcd_down_routes(), ca=healthy.ca) as down:
        ca_file = readable_copy(healthy.ca_file, workdir, "packaged-ca.crt")
        services: dict[str, dict[str, Value]] = {"healthy": {"server": healthy.url, "timeout": 7},
                                                 "etcd-down": {"server": down.url, "timeout": 8}}
        results, command_lines, _ = _run_daemon(workdir, "packaged", str(debian_plugin.parent),
                                                INCLUDES + "include <plugins-contrib>\n", services=services,
                                                ca_file=ca_file)
    assert debian_plugin.parent == Path("/usr/lib/nagios/plugins")
    assert results["healthy"].state == 0, results
    assert results["healthy"].output.startswith("K8S_HEALTH OK - readyz: all 33 sub-checks passed"), results
    assert results["etcd-down"].state == 2, results
    assert results["etcd-down"].output.startswith("K8S_HEALTH CRITICAL - readyz: etcd, etcd-readiness failed"), results
    for line in command_lines.values():
        assert f"'{debian_plugin}'" in line, line


# -- Icinga's perfdata parser ----------------------------------------------------------------------------------

def _perfdata_items() -> list[str]:
    """Every kind of perfdata item the plugin prints: one server, two servers (labels prefixed with host and
    port), all three endpoints, thresholds, the etcd outage, an unverified certificate, a 401."""
    items: list[str] = []
    with FakeApiServer(healthy_routes()) as healthy, FakeApiServer(etcd_down_routes(), ca=healthy.ca) as down, \
            FakeApiServer(healthy_routes(), token=TOKEN, anonymous=False, ca=healthy.ca) as strict:
        every_endpoint = ["-e", "livez", "-e", "readyz", "-e", "healthz"]
        runs = [
            (0, ca_args(healthy)),
            (0, [*ca_args(healthy), *every_endpoint, "-w", "1", "-c", "~:5", "--cert-warning", "30",
                 "--cert-critical", "7"]),
            (2, [*ca_args(healthy), "-s", down.url, *every_endpoint]),
            (2, [*ca_args(down), *every_endpoint, "-v"]),
            (0, ["-s", healthy.url, "--insecure-skip-tls-verify", "-vv"]),
            (3, ca_args(strict)),
        ]
        for code, args in runs:
            run = run_plugin(*args)
            assert run.code == code, run
            assert run.perfdata, run
            items += run.perfdata.split()
        prefix = f"127_0_0_1_{healthy.port}_"
    labels = {item.split("=", 1)[0] for item in items}
    for endpoint in ("livez", "readyz", "healthz"):
        for suffix in ("time", "checks", "failed"):
            assert f"{endpoint}_{suffix}" in labels and f"{prefix}{endpoint}_{suffix}" in labels, labels
    assert {"cert_days_left", f"{prefix}cert_days_left"} <= labels, labels
    return sorted(set(items))


def test_icinga_parses_every_perfdata_item() -> None:
    need("icinga2")
    items = _perfdata_items()
    expression = ("var r = []; for (s in [ " + ", ".join(json.dumps(item) for item in items) + " ]) { "
                  "var p = parse_performance_data(s); "
                  "r.add({ label = p.label, value = p.value, unit = p.unit, warn = p.warn, crit = p.crit, "
                  "min = p.min, max = p.max }) }; Json.encode(r)")
    result = _icinga2("console", "--eval", expression)
    assert result.returncode == 0 and "Error" not in result.stdout + result.stderr, result.stdout + result.stderr
    parsed = json.loads(json.loads(result.stdout))  # the console prints the JSON text as a string literal
    assert len(parsed) == len(items)
    for item, value in zip(items, parsed):
        label, number = item.split("=", 1)
        assert value["label"] == label, (item, value)
        assert isinstance(value["value"], (int, float)) and not isinstance(value["value"], bool), (item, value)
        assert value["value"] == pytest.approx(float(number.split(";")[0].rstrip("s"))), (item, value)
        if label.endswith("_time"):
            assert value["unit"] == "seconds", (item, value)
