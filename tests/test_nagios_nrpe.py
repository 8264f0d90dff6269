"""contrib/nagios and contrib/nrpe, run by the real Debian programs: nagios4 4.4 and NRPE 4.1.

- ``nagios4 -v`` accepts the shipped command and service definitions next to Debian's stock object files, and
  rejects a copy with a typo (so the check can fail).
- A private NRPE daemon on 127.0.0.1 runs the shipped ``command[...]`` lines (plugin, server, token file and CA
  pointed at a fake API server) as user nagios; ``check_nrpe`` must deliver the plugin's exit code and its whole
  output.
- A private nagios4 instance runs the shipped ``check_k8s_health`` command (and once check_nrpe against the NRPE
  daemon) and its status.dat must hold the state, the first line, the long output and the perfdata.
- The README shows the lines contrib/ ships.

Everything listens on 127.0.0.1 only; every daemon is stopped by its PID, every wait is bounded.
"""

from __future__ import annotations

import contextlib
import dataclasses
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import trustme
from conftest import run_plugin
from consumers import need, readable_copy, world_readable_dir
from fakeapi import FakeApiServer, Reply, etcd_down_routes, healthy_routes
from fakeblind import broken_webhook_routes
from fakeleaders import (
    CONTROLLER_MANAGER,
    CONTROLLER_MANAGER_CRASHING,
    METRICS_AFTER_DEFRAG,
    PROBE,
    PROBE_NOSPACE_AFTER_DEFRAG,
    SCHEDULER,
    SCHEDULER_STOPPED,
    lease_reply,
    metrics_body,
    metrics_reply,
    probe_reply,
    storage_lines,
)

CONTRIB = Path(__file__).resolve().parent.parent / "contrib"
NAGIOS_COMMANDS = CONTRIB / "nagios" / "commands.cfg"
NAGIOS_SERVICES = CONTRIB / "nagios" / "services.cfg"
NRPE_COMMANDS = CONTRIB / "nrpe" / "k8s_health.cfg"

NAGIOS4 = "/usr/sbin/nagios4"
NRPE = "/usr/sbin/nrpe"
CHECK_NRPE = "/usr/lib/nagios/plugins/check_nrpe"
#: The object files Debian's /etc/nagios4/nagios.cfg reads; services.cfg uses their templates, 24x7 and admins.
STOCK_OBJECTS = [f"/etc/nagios4/objects/{name}.cfg" for name in ("commands", "contacts", "timeperiods", "templates")]

SHIPPED_PLUGIN = "/usr/lib/nagios/plugins/check_k8s_health"
CHECK_NRPE_DEFAULT_TIMEOUT = 10
TOKEN = "nrpe-token-0123456789abcdef"
WRONG_TOKEN = "nrpe-wrong-token-fedcba9876543210"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _nagios_owned(folder: Path, name: str) -> Path:
    """A folder the daemons write into after dropping to user nagios."""
    path = folder / name
    path.mkdir()
    shutil.chown(path, "nagios", "nagios")
    return path


def _token_file(folder: Path, token: str) -> Path:
    """As the README says: owned by root, group nagios, mode 640 (not world-readable)."""
    path = folder / "k8s-token"
    path.write_text(token + "\n")
    path.chmod(0o640)
    shutil.chown(path, "root", "nagios")
    return path


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM by PID, SIGKILL after 5 s; never waits unbounded."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def _rewrite(line: str, replacements: dict[str, str]) -> str:
    """Point a shipped command line at the test's plugin, server and files; each old value must be there once."""
    for old, new in replacements.items():
        assert line.count(old) == 1, f"expected {old!r} once in {line!r}"
        line = line.replace(old, new)
    return line


def _first_option_value(line: str, option: str) -> str:
    match = re.search(rf"(?:^|\s){re.escape(option)}\s+(\S+)", line)
    assert match, f"{option} missing in {line!r}"
    return match.group(1)


# --------------------------------------------------------------------------------------------------------------
# nagios4 -v


def _nagios_main_cfg(folder: Path, object_files: list[str], extra: str = "") -> Path:
    """A minimal nagios.cfg that writes only into ``folder``; run as root, nagios4 drops to nagios."""
    var = _nagios_owned(folder, "var")
    (var / "checkresults").mkdir()
    shutil.chown(var / "checkresults", "nagios", "nagios")
    # nagios4 reads its objects as nagios: a checkout under a private folder (mktemp -d, a home) is out of its
    # reach, so files from it are copied into the world-readable test folder first.
    readable = []
    for index, path in enumerate(object_files):
        if path.startswith(("/etc/", "/usr/")):
            readable.append(path)
            continue
        copy = folder / f"objects-{index}-{Path(path).name}"
        shutil.copy(path, copy)
        copy.chmod(0o644)
        readable.append(str(copy))
    lines = [f"cfg_file={path}" for path in readable]
    lines += [
        f"log_file={var}/nagios.log",
        f"object_cache_file={var}/objects.cache",
        f"precached_object_file={var}/objects.precache",
        f"status_file={var}/status.dat",
        f"command_file={var}/nagios.cmd",
        f"lock_file={var}/nagios.lock",
        f"temp_file={var}/nagios.tmp",
        f"temp_path={var}",
        f"check_result_path={var}/checkresults",
        f"state_retention_file={var}/retention.dat",
        f"query_socket={var}/nagios.qh",
        f"debug_file={var}/nagios.debug",
        "nagios_user=nagios",
        "nagios_group=nagios",
        "use_syslog=0",
        "enable_notifications=0",
        "check_external_commands=0",
        "illegal_object_name_chars=`~!$%^&*|'\"<>?,()=",
        "illegal_macro_output_chars=`~$&|'\"<>",
    ]
    cfg = folder / "nagios.cfg"
    cfg.write_text("\n".join(lines) + "\n" + extra)
    cfg.chmod(0o644)
    return cfg


def _nagios_verify(cfg: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([NAGIOS4, "-v", str(cfg)], capture_output=True, text=True, timeout=30, check=False,
                          stdin=subprocess.DEVNULL)


def test_nagios4_accepts_the_shipped_definitions() -> None:
    need(NAGIOS4, *STOCK_OBJECTS)
    folder = world_readable_dir("k8s-nagios-verify-")
    try:
        cfg = _nagios_main_cfg(folder, [*STOCK_OBJECTS, str(NAGIOS_COMMANDS), str(NAGIOS_SERVICES)])
        result = _nagios_verify(cfg)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "Total Errors:   0" in result.stdout and "Total Warnings: 0" in result.stdout, result.stdout
        assert "Things look okay" in result.stdout
        # Our files were read: 4 services on k8s-api plus one per control-plane node; 1 + 3 hosts.
        assert "Checked 9 services." in result.stdout and "Checked 4 hosts." in result.stdout, result.stdout
        assert "Checked 1 host groups." in result.stdout, result.stdout
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.parametrize(("name", "old", "new", "error"), [
    ("commands.cfg", "command_name    check_k8s_health\n", "command_name    check_k8s_helth\n",
     "Service check command 'check_k8s_health!https://10.0.0.10:6443!readyz' specified in service 'k8s readyz' "
     "for host 'k8s-api' not defined anywhere"),
    ("services.cfg", "service_description     k8s livez", "service_descripton     k8s livez",
     "Invalid service object directive 'service_descripton'"),
    ("services.cfg", "members                 k8s-cp-1,", "members                 k8s-cp-l,",
     "Could not find any host matching 'k8s-cp-l'"),
])
def test_nagios4_rejects_a_copy_with_a_typo(name: str, old: str, new: str, error: str) -> None:
    need(NAGIOS4, *STOCK_OBJECTS)
    folder = world_readable_dir("k8s-nagios-typo-")
    try:
        for source in (NAGIOS_COMMANDS, NAGIOS_SERVICES):
            text = source.read_text()
            if source.name == name:
                assert text.count(old) == 1, old
                text = text.replace(old, new)
            (folder / source.name).write_text(text)
        cfg = _nagios_main_cfg(folder, [*STOCK_OBJECTS, str(folder / "commands.cfg"), str(folder / "services.cfg")])
        result = _nagios_verify(cfg)
        assert result.returncode != 0, result.stdout
        assert error in result.stdout, result.stdout
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_nagios_commands_take_the_token_from_a_file_only() -> None:
    lines = re.findall(r"^\s*command_line\s+(.*)$", NAGIOS_COMMANDS.read_text(), re.MULTILINE)
    assert len(lines) == 6
    for line in lines:
        assert line.startswith(SHIPPED_PLUGIN + " ")
        assert _first_option_value(line, "--token-file") == "/etc/nagios4/k8s-token"
        assert _first_option_value(line, "--certificate-authority") == "/etc/nagios4/k8s-ca.crt"
        assert not re.search(r"--token(?!-file )|K8S_HEALTH_TOKEN", line), line


def test_the_docs_show_the_shipped_lines() -> None:
    """What the docs say to paste is what contrib/ ships (and what these tests run)."""
    nagios = (CONTRIB.parent / "docs" / "nagios.md").read_text()
    nrpe = (CONTRIB.parent / "docs" / "nrpe.md").read_text()
    shipped = NAGIOS_COMMANDS.read_text()
    lines = re.findall(r"^ +command_line +.+$", nagios, re.MULTILINE)
    assert len(lines) == 6 and all(line in shipped for line in lines), lines
    assert "check_k8s_health!https://10.0.0.10:6443!readyz" in NAGIOS_SERVICES.read_text()
    lines = re.findall(r"^command\[.+$", nrpe, re.MULTILINE)
    assert sorted(lines) == sorted(re.findall(r"^command\[.+$", NRPE_COMMANDS.read_text(), re.MULTILINE))
    assert "chown root:nagios" in nagios and "chmod 640" in nagios and "chmod 640" in nrpe


# --------------------------------------------------------------------------------------------------------------
# NRPE


def _nrpe_command_lines() -> dict[str, str]:
    commands = dict(re.findall(r"^command\[([^\]]+)\]=(.+)$", NRPE_COMMANDS.read_text(), re.MULTILINE))
    assert set(commands) == {"k8s_readyz", "k8s_livez", "k8s_health", "k8s_members", "k8s_blind_spots",
                             "k8s_leaders", "k8s_writes"}
    return commands


def test_nrpe_commands_are_fixed_and_end_before_check_nrpe() -> None:
    for name, line in _nrpe_command_lines().items():
        assert "$ARG" not in line, name  # Debian's NRPE passes no arguments
        assert line.startswith(SHIPPED_PLUGIN + " "), name
        assert _first_option_value(line, "--token-file") == "/etc/nagios/k8s-token", name
        assert _first_option_value(line, "--certificate-authority") == "/etc/nagios/k8s-ca.crt", name
        assert _first_option_value(line, "-s") == "https://127.0.0.1:6443", name
        assert float(_first_option_value(line, "-t")) < CHECK_NRPE_DEFAULT_TIMEOUT, name
        assert "-vv" not in line.split(), name  # NRPE truncates long output from the end, where perfdata is


@dataclasses.dataclass
class Nrpe:
    port: int
    fake: FakeApiServer
    token_file: Path
    plugin_args: dict[str, list[str]]  # the rewritten command lines, split, for running them directly

    def query(self, *args: str) -> subprocess.CompletedProcess[str]:
        result = subprocess.run([CHECK_NRPE, "-H", "127.0.0.1", "-p", str(self.port), *args], capture_output=True,
                                text=True, timeout=30, check=False, stdin=subprocess.DEVNULL)
        assert TOKEN not in result.stdout and WRONG_TOKEN not in result.stdout, "a token reached the output"
        return result

    def set_routes(self, routes: dict[str, Reply]) -> None:
        for path, reply in routes.items():
            self.fake.set_route(path, reply)


@contextlib.contextmanager
def _nrpe_daemon(folder: Path, commands: dict[str, str]) -> Iterator[int]:
    var = _nagios_owned(folder, "var")
    port = _free_port()
    cfg = folder / "nrpe.cfg"
    cfg.write_text("\n".join([
        f"pid_file={var}/nrpe.pid",
        "server_address=127.0.0.1",
        f"server_port={port}",
        "nrpe_user=nagios",
        "nrpe_group=nagios",
        "allowed_hosts=127.0.0.1",
        "dont_blame_nrpe=0",
        "allow_bash_command_substitution=0",
        "command_timeout=10",
        "connection_timeout=30",
        "disable_syslog=1",
        "debug=0",
        *(f"command[{name}]={line}" for name, line in commands.items()),
    ]) + "\n")
    cfg.chmod(0o644)
    with (folder / "nrpe.log").open("wb") as log:
        proc = subprocess.Popen([NRPE, "-c", str(cfg), "-f"], stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while True:
            hello = subprocess.run([CHECK_NRPE, "-H", "127.0.0.1", "-p", str(port), "-t", "2"], capture_output=True,
                                   text=True, timeout=10, check=False, stdin=subprocess.DEVNULL)
            if hello.returncode == 0 and hello.stdout.startswith("NRPE v"):
                break
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"NRPE did not come up: {hello.stdout}{(folder / 'nrpe.log').read_text()}")
            time.sleep(0.1)
        yield port
    finally:
        _stop(proc)


@pytest.fixture(scope="module")
def nrpe(consumer_plugin: Path) -> Iterator[Nrpe]:
    """The shipped NRPE lines, pointed at a fake API server that needs a token and answers as "kubernetes"."""
    need(NRPE, CHECK_NRPE)
    folder = world_readable_dir("k8s-nrpe-")
    try:
        # Only the name "kubernetes" in the certificate: the shipped --tls-server-name must be what makes
        # https://127.0.0.1 verify, as on a kubeadm node.
        with FakeApiServer(healthy_routes(), token=TOKEN, anonymous=False, server_names=("kubernetes",)) as fake:
            ca = readable_copy(fake.ca_file, folder, "k8s-ca.crt")
            token_file = _token_file(folder, TOKEN)
            replacements = {SHIPPED_PLUGIN: str(consumer_plugin), "https://127.0.0.1:6443": fake.url,
                            "/etc/nagios/k8s-token": str(token_file), "/etc/nagios/k8s-ca.crt": ca}
            commands = {name: _rewrite(line, replacements) for name, line in _nrpe_command_lines().items()}
            with _nrpe_daemon(folder, commands) as port:
                yield Nrpe(port, fake, token_file, {name: line.split()[1:] for name, line in commands.items()})
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_nrpe_readyz_ok(nrpe: Nrpe) -> None:
    result = nrpe.query("-c", "k8s_readyz")
    assert result.returncode == 0, result.stdout
    assert re.fullmatch(r"K8S_HEALTH OK - readyz: all 33 sub-checks passed \| cert_days_left=\S+ readyz_checks=33;;;0 "
                        r"readyz_failed=0;;;0 readyz_time=[0-9.]+s;;;0\n", result.stdout), result.stdout
    livez = nrpe.query("-c", "k8s_livez")
    assert livez.returncode == 0 and livez.stdout.startswith("K8S_HEALTH OK - livez: all 30 sub-checks passed | ")


def test_nrpe_members_finds_the_control_plane_through_this_node(nrpe: Nrpe) -> None:
    """The node lists itself as the one member (as a single control-plane node does) and one fresh Lease."""
    from fakecluster import LEASES_PATH, SLICE_PATH, fresh_leases, slice_reply

    nrpe.set_routes({SLICE_PATH: slice_reply(["127.0.0.1"], nrpe.fake.port), LEASES_PATH: fresh_leases(1)})
    result = nrpe.query("-c", "k8s_members")
    assert result.returncode == 0, result.stdout
    assert result.stdout.startswith("K8S_HEALTH OK - 1 of 1 API servers healthy (livez, readyz)\n"), result.stdout
    assert "members_listed=1;;;0" in result.stdout and "members_alive=1;;;0" in result.stdout


def test_nrpe_blind_spots_name_the_webhook_that_blocks_writes(nrpe: Nrpe) -> None:
    from fakeblind import APISERVICES_PATH, BLOCKED_LINE, broken_webhook_routes, unavailable_apiservice_routes

    routes = {**broken_webhook_routes(), APISERVICES_PATH: unavailable_apiservice_routes()[APISERVICES_PATH]}
    nrpe.set_routes(routes)
    try:
        result = nrpe.query("-c", "k8s_blind_spots")
    finally:
        nrpe.set_routes(healthy_routes())
    assert result.returncode == 2, result.stdout
    assert result.stdout.startswith(f"K8S_HEALTH CRITICAL - readyz: all 33 sub-checks passed; {BLOCKED_LINE}; and 1 "
                                    "more\n"), result.stdout
    assert "[-] apiservice v1beta1.metrics.k8s.io: ServiceNotFound" in result.stdout
    assert "webhooks_unserved=2;;;0" in result.stdout and "apiservices_unavailable=3;;;0" in result.stdout


def test_nrpe_writes_say_etcd_is_out_of_space(nrpe: Nrpe) -> None:
    from fakeleaders import PROBE_NOSPACE, control_plane_routes, probe_reply

    nrpe.set_routes(control_plane_routes(probe_reply(PROBE_NOSPACE)))
    try:
        result = nrpe.query("-c", "k8s_writes")
    finally:
        nrpe.set_routes(healthy_routes())
    assert result.returncode == 2, result.stdout
    assert result.stdout.startswith("K8S_HEALTH CRITICAL - readyz: all 33 sub-checks passed; etcd is out of space: "
                                    "every write is refused; etcd under 1 % of quota (280 KiB of 2 GiB)\n"), \
        result.stdout
    assert "etcdctl alarm disarm" in result.stdout
    assert re.search(r" etcd_db_size=286720B;1717986918;2040109465;0;2147483648 ", result.stdout), result.stdout


def test_nrpe_leaders_name_the_loops_without_a_leader(nrpe: Nrpe) -> None:
    from fakeleaders import CONTROLLER_MANAGER_CRASHING, SCHEDULER_STOPPED, leader_routes, lease_reply

    nrpe.set_routes(leader_routes(lease_reply(SCHEDULER_STOPPED), lease_reply(CONTROLLER_MANAGER_CRASHING)))
    try:
        result = nrpe.query("-c", "k8s_leaders")
    finally:
        nrpe.set_routes(healthy_routes())
    assert result.returncode == 2, result.stdout
    assert re.match(r"K8S_HEALTH CRITICAL - readyz: all 33 sub-checks passed; no leader for kube-scheduler \(3\d s\), "
                    r"kube-controller-manager \(3\d s\)\n", result.stdout), result.stdout
    assert "holder vm_a4035a0e-ae58-431f-b88e-288a45210bf6" in result.stdout
    assert re.search(r" leader_kube_scheduler_age=3\d(\.\d)?s;;;0", result.stdout), result.stdout


def test_nrpe_etcd_down_is_critical_and_names_etcd(nrpe: Nrpe) -> None:
    nrpe.set_routes(etcd_down_routes())
    try:
        result = nrpe.query("-c", "k8s_readyz")
    finally:
        nrpe.set_routes(healthy_routes())
    assert result.returncode == 2, result.stdout
    assert result.stdout.startswith("K8S_HEALTH CRITICAL - readyz: etcd, etcd-readiness failed (2 of 33 sub-checks) | ")
    assert result.stdout.count("\n") == 1


def _shape(output: str) -> str:
    """Output with the measured numbers masked: what NRPE must not change."""
    return re.sub(r"(_time=[0-9.]+s|cert_days_left=[0-9.]+)", "X", output)


@pytest.mark.parametrize(("routes", "code", "lines"), [(healthy_routes, 0, 2), (etcd_down_routes, 2, 5)])
def test_nrpe_delivers_verbose_output_whole(nrpe: Nrpe, routes: Callable[[], dict[str, Reply]], code: int,
                                            lines: int) -> None:
    nrpe.set_routes(routes())
    try:
        result = nrpe.query("-c", "k8s_health")
        direct = run_plugin(*nrpe.plugin_args["k8s_health"])
    finally:
        nrpe.set_routes(healthy_routes())
    assert result.returncode == direct.code == code, result.stdout
    output = result.stdout.rstrip("\n").split("\n")
    assert len(output) == lines, result.stdout
    assert output[-1].startswith("| ") and "livez_time=" in output[-1] and "readyz_failed=" in output[-1]
    assert "|" not in "".join(output[:-1])
    assert _shape(result.stdout) == _shape(direct.stdout)
    # A token without expiry is said only at -vv: at -v it would be noise in every notification.
    assert not any(line.startswith("token from") for line in output)
    if code == 2:
        assert output[0].startswith("K8S_HEALTH CRITICAL - livez: etcd failed (1 of 30 sub-checks); readyz: etcd, ")
        assert "[-] readyz etcd: failed: error getting data from etcd: context deadline exceeded" in output


def test_nrpe_reads_the_token_file(nrpe: Nrpe) -> None:
    nrpe.token_file.write_text(WRONG_TOKEN + "\n")
    try:
        wrong = nrpe.query("-c", "k8s_readyz")
    finally:
        nrpe.token_file.write_text(TOKEN + "\n")
    assert wrong.returncode == 3, wrong.stdout
    assert wrong.stdout.startswith(f"K8S_HEALTH UNKNOWN - readyz: HTTP 401 Unauthorized: the token from --token-file "
                                   f"{nrpe.token_file} was rejected"), wrong.stdout
    right = nrpe.query("-c", "k8s_readyz")
    assert right.returncode == 0, right.stdout
    sent = [seen.header("Authorization") for seen in nrpe.fake.requests]
    assert sent and set(sent) == {f"Bearer {TOKEN}", f"Bearer {WRONG_TOKEN}"}


def test_nrpe_takes_no_arguments(nrpe: Nrpe) -> None:
    """Why the commands are fixed: Debian's NRPE refuses any check_nrpe -a."""
    result = nrpe.query("-c", "k8s_readyz", "-a", "https://10.0.0.1:6443")
    assert result.returncode == 3, result.stdout
    assert "K8S_HEALTH" not in result.stdout, result.stdout
    assert "Receive header underflow" in result.stdout, result.stdout


def test_nrpe_hanging_server_gets_the_plugins_answer_before_check_nrpe_gives_up(nrpe: Nrpe) -> None:
    nrpe.fake.set_route("/readyz", Reply(200, hang=True))
    try:
        started = time.monotonic()
        result = nrpe.query("-c", "k8s_readyz")
        took = time.monotonic() - started
    finally:
        nrpe.set_routes(healthy_routes())
    assert result.returncode == 2, result.stdout
    assert result.stdout.startswith("K8S_HEALTH CRITICAL - "), result.stdout
    assert "did not answer within the 8 s deadline (-t)" in result.stdout, result.stdout
    assert took < CHECK_NRPE_DEFAULT_TIMEOUT, took


# --------------------------------------------------------------------------------------------------------------
# A private nagios4 instance


def _status_blocks(text: str, kind: str) -> list[dict[str, str]]:
    blocks = []
    for body in re.findall(rf"^{kind} \{{\n(.*?)^\t\}}", text, re.MULTILINE | re.DOTALL):
        blocks.append(dict(line.strip().split("=", 1) for line in body.splitlines() if "=" in line))
    return blocks


_OBJECTS = """\
define timeperiod {{
    timeperiod_name     always
    alias               always
    sunday              00:00-24:00
    monday              00:00-24:00
    tuesday             00:00-24:00
    wednesday           00:00-24:00
    thursday            00:00-24:00
    friday              00:00-24:00
    saturday            00:00-24:00
}}
define command {{
    command_name        noop
    command_line        /bin/true
}}
define contact {{
    contact_name                    nobody
    alias                           nobody
    host_notifications_enabled      0
    service_notifications_enabled   0
    host_notification_period        always
    service_notification_period     always
    host_notification_options       n
    service_notification_options    n
    host_notification_commands      noop
    service_notification_commands   noop
}}
define host {{
    host_name               k8s-api
    address                 127.0.0.1
    max_check_attempts      1
    check_period            always
    notification_period     always
    notification_interval   0
    contacts                nobody
}}
define service {{
    name                    k8s-test-service
    host_name               k8s-api
    max_check_attempts      1
    check_interval          1
    retry_interval          1
    check_period            always
    notification_period     always
    notification_interval   0
    contacts                nobody
    register                0
}}
define service {{
    use                     k8s-test-service
    service_description     k8s readyz
    check_command           check_k8s_health!{healthy}!readyz
}}
define service {{
    use                     k8s-test-service
    service_description     k8s readyz etcd down
    check_command           check_k8s_health!{down}!readyz
}}
define service {{
    use                     k8s-test-service
    service_description     k8s webhooks and aggregated APIs
    check_command           check_k8s_health_blind_spots!{blind}
}}
define service {{
    use                     k8s-test-service
    service_description     k8s leaders
    check_command           check_k8s_health_leaders!{blind}
}}
define service {{
    use                     k8s-test-service
    service_description     k8s etcd writes and size
    check_command           check_k8s_health_writes!{blind}!1GiB
}}
define command {{
    command_name            check_nrpe_port
    command_line            {check_nrpe} -H $HOSTADDRESS$ -p {nrpe_port} -c $ARG1$
}}
define service {{
    use                     k8s-test-service
    service_description     k8s health via nrpe
    check_command           check_nrpe_port!k8s_health
}}
"""


def test_nagios_runs_the_command_and_stores_state_output_and_perfdata(consumer_plugin: Path, nrpe: Nrpe) -> None:
    """Two services run the shipped command directly, one goes through check_nrpe and the NRPE daemon above."""
    need(NAGIOS4)
    folder = world_readable_dir("k8s-nagios-run-")
    ca = trustme.CA()
    try:
        with FakeApiServer(healthy_routes(), token=TOKEN, anonymous=False, ca=ca) as healthy, \
                FakeApiServer(etcd_down_routes(), token=TOKEN, anonymous=False, ca=ca) as down, \
                FakeApiServer({**broken_webhook_routes(), SCHEDULER: lease_reply(SCHEDULER_STOPPED),
                               CONTROLLER_MANAGER: lease_reply(CONTROLLER_MANAGER_CRASHING),
                               PROBE: probe_reply(PROBE_NOSPACE_AFTER_DEFRAG),
                               "/metrics": metrics_reply(metrics_body(storage_lines(METRICS_AFTER_DEFRAG)))},
                              token=TOKEN, anonymous=False, ca=ca) as blind:
            ca_file = readable_copy(healthy.ca_file, folder, "k8s-ca.crt")
            token_file = _token_file(folder, TOKEN)
            commands = NAGIOS_COMMANDS.read_text()
            for old, new in ((SHIPPED_PLUGIN, str(consumer_plugin)), ("/etc/nagios4/k8s-token", str(token_file)),
                             ("/etc/nagios4/k8s-ca.crt", ca_file)):
                assert old in commands
                commands = commands.replace(old, new)
            (folder / "commands.cfg").write_text(commands)
            (folder / "objects.cfg").write_text(_OBJECTS.format(
                healthy=healthy.url, down=down.url, blind=blind.url, check_nrpe=CHECK_NRPE, nrpe_port=nrpe.port))
            # One check per service as soon as it starts (no spreading), status.dat rewritten every second.
            schedule = ("interval_length=2\nstatus_update_interval=1\ncheck_result_reaper_frequency=1\n"
                        "service_inter_check_delay_method=n\nmax_service_check_spread=1\n"
                        "retain_state_information=0\nexecute_host_checks=0\n")
            cfg = _nagios_main_cfg(folder, [str(folder / "commands.cfg"), str(folder / "objects.cfg")], schedule)
            verified = _nagios_verify(cfg)
            assert verified.returncode == 0, verified.stdout
            services = _run_nagios_until_checked(cfg, folder / "var" / "status.dat", count=6, seconds=30)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    by_name = {service["service_description"]: service for service in services}
    ok, crit = by_name["k8s readyz"], by_name["k8s readyz etcd down"]
    assert ok["current_state"] == "0", ok
    assert ok["plugin_output"] == "K8S_HEALTH OK - readyz: all 33 sub-checks passed", ok
    assert re.fullmatch(r"cert_days_left=\S+ readyz_checks=33;;;0 readyz_failed=0;;;0 readyz_time=[0-9.]+s;;;0",
                        ok["performance_data"]), ok
    assert crit["current_state"] == "2", crit
    assert crit["plugin_output"] == "K8S_HEALTH CRITICAL - readyz: etcd, etcd-readiness failed (2 of 33 sub-checks)"
    # status.dat stores the long output with literal \n between lines.
    assert crit["long_plugin_output"] == (
        r"[-] readyz etcd: failed: error getting data from etcd: context deadline exceeded\n"
        r"[-] readyz etcd-readiness: failed: reason withheld\n"), crit
    assert re.fullmatch(r"cert_days_left=\S+ readyz_checks=33;;;0 readyz_failed=2;;;0 readyz_time=[0-9.]+s;;;0",
                        crit["performance_data"]), crit
    spots = by_name["k8s webhooks and aggregated APIs"]
    assert spots["current_state"] == "2", spots
    # (";" arrives as ":", see below)
    assert spots["plugin_output"] == ("K8S_HEALTH CRITICAL - readyz: all 33 sub-checks passed: 2 webhooks block "
                                      "writes: guard.example.com (CREATE, UPDATE configmaps), inject.example.com "
                                      "(CREATE pods, services)")
    assert "webhooks_unserved=2;;;0" in spots["performance_data"].split(), spots
    leaders = by_name["k8s leaders"]
    assert leaders["current_state"] == "2", leaders
    assert re.fullmatch(r"K8S_HEALTH CRITICAL - readyz: all 33 sub-checks passed: no leader for kube-scheduler "
                        r"\(\d\d s\), kube-controller-manager \(\d\d s\)", leaders["plugin_output"]), leaders
    assert "new pods stay Pending" in leaders["long_plugin_output"], leaders
    writes = by_name["k8s etcd writes and size"]
    assert writes["current_state"] == "2", writes
    assert writes["plugin_output"] == ("K8S_HEALTH CRITICAL - readyz: all 33 sub-checks passed: etcd is out of space: "
                                       "every write is refused: etcd under 1 % of quota (212 KiB of 1 GiB)"), writes
    assert "etcd_db_size=217088B;858993459;1020054732;0;1073741824" in writes["performance_data"].split(), writes
    via_nrpe = by_name["k8s health via nrpe"]
    assert via_nrpe["current_state"] == "0", via_nrpe
    # Nagios replaces every ";" in plugin_output with ":" (base/checks.c), so the plugin's "; " between endpoints
    # arrives as ": ".
    assert via_nrpe["plugin_output"] == "K8S_HEALTH OK - livez: all 30 sub-checks passed: readyz: all 33 sub-checks " \
                                       "passed", via_nrpe
    assert via_nrpe["long_plugin_output"] == "", via_nrpe  # -v on an OK run: nothing failed, nothing to add
    assert re.fullmatch(r"cert_days_left=\S+ livez_checks=30;;;0 livez_failed=0;;;0 livez_time=[0-9.]+s;;;0 "
                        r"readyz_checks=33;;;0 readyz_failed=0;;;0 readyz_time=[0-9.]+s;;;0",
                        via_nrpe["performance_data"]), via_nrpe
    assert TOKEN not in str(services)


def _run_nagios_until_checked(cfg: Path, status: Path, count: int, seconds: float) -> list[dict[str, str]]:
    """Start nagios4 in the foreground, wait until ``count`` services have a result in status.dat, stop it.

    status.dat is read while nagios runs: it is deleted on shutdown.
    """
    log = cfg.parent / "var" / "nagios.log"
    proc = subprocess.Popen([NAGIOS4, str(cfg)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            stdin=subprocess.DEVNULL)
    checked: list[dict[str, str]] = []
    try:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and proc.poll() is None:
            with contextlib.suppress(OSError):
                services = _status_blocks(status.read_text(), "servicestatus")
                checked = [service for service in services if service.get("has_been_checked") == "1"]
                if len(checked) >= count:
                    return checked
            time.sleep(0.2)
    finally:
        _stop(proc)
    log_text = log.read_text() if log.exists() else "(no log)"
    pytest.skip(f"nagios4 did not check {count} services within {seconds} s (exit {proc.returncode}): {log_text}")
