"""Sizing: how many checks a minute one icinga2 sustains on this machine, and the CPU one check costs.

The plugin is installed as an operator installs it for Icinga (a venv from /usr/bin/python3 that the nagios user
can run), and a private ``icinga2 daemon`` runs N Services a minute (check_interval 60 s) against a local TLS
server answering with a real kube-apiserver body, for a while at each rate. Every result is counted from the
daemon's perfdata file: how many arrived in the measured window (after the first interval, in which Icinga spreads
the first checks) and how many were not OK; the machine's busy share comes from /proc/stat. A rate is sustained
when at least 95 % of its checks arrived and at least 99 % of those were OK: the server is healthy and answers at
once, so every non-OK result is the monitoring host's doing.

Needs root, icinga2 and /usr/bin/python3 with venv (tests/run installs them).

    bench/sizing [--rates 300,600,900] [--seconds 150]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))

import pins
from fakeapi import FakeApiServer, healthy_routes
from fakecluster import control_plane

from bench import measure, median

#: Icinga's interval: N Services are N checks a minute.
INTERVAL = 60


def install(folder: Path) -> Path:
    """The plugin in a venv every user can run, as docs/icinga2.md installs it with pip."""
    venv = folder / "venv"
    subprocess.run(["/usr/bin/python3", "-m", "venv", str(venv)], check=True, capture_output=True)
    subprocess.run([str(venv / "bin" / "pip"), "install", "--quiet", "--disable-pip-version-check", str(ROOT)],
                   check=True, capture_output=True, env={**os.environ, **pins.pip_environment()})
    subprocess.run(["chmod", "-R", "a+rX", str(folder)], check=True)
    return venv / "bin" / "check_k8s_health"


def cpu_per_check(plugin: Path, server: FakeApiServer, rounds: int) -> dict[str, float]:
    env = {key: value for key, value in os.environ.items() if not key.lower().endswith("_proxy")}
    found = {}
    with control_plane([healthy_routes()] * 3) as plane:
        commands = {
            "one server, readyz": [str(plugin), "-s", server.url, "--certificate-authority", server.ca_file],
            "--members, 3 members x livez+readyz": [str(plugin), *plane.lb_args, "--members", "-e", "livez",
                                                   "-e", "readyz"],
        }
        for name, command in commands.items():
            measure(command, env)
            found[name] = median([measure(command, env).cpu for _ in range(rounds)])
    return found


def busy() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine so far."""
    fields = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]
    return sum(fields) - idle, sum(fields)


def run_rate(folder: Path, plugin: Path, server: FakeApiServer, ca: str, *, rate: int, seconds: int
             ) -> dict[str, float]:
    out = folder / f"out-{rate}"
    out.mkdir()
    services = "".join(
        f'object Service "s{index}" {{\n  host_name = "k8s"\n  check_command = "k8s_health"\n'
        f'  check_interval = {INTERVAL}s\n  retry_interval = {INTERVAL}s\n  max_check_attempts = 1\n'
        f'  vars.k8s_health_server = "{server.url}"\n  vars.k8s_health_certificate_authority = "{ca}"\n'
        f"  vars.k8s_health_verbose = 0\n}}\n" for index in range(rate))
    config = folder / f"sizing-{rate}.conf"
    config.write_text(
        'const PluginDir = "/usr/lib/nagios/plugins"\n'
        f'const PluginContribDir = "{plugin.parent}"\n'
        "include <itl>\ninclude <plugins>\n"
        f'include "{ROOT / "icinga2-commands.conf"}"\n'
        'object CheckerComponent "checker" {}\n'
        'object PerfdataWriter "perfdata" {\n'
        f'  service_perfdata_path = "{out}/service-perfdata"\n  service_temp_path = "{out}/service-tmp"\n'
        f'  host_perfdata_path = "{out}/host-perfdata"\n  host_temp_path = "{out}/host-tmp"\n'
        '  rotation_interval = 5s\n'
        '  service_format_template = "T::$service.last_check$\\tS::$service.state_id$"\n}\n'
        'object Host "k8s" {\n  check_command = "dummy"\n}\n' + services)
    subprocess.run(["chmod", "-R", "a+rX", str(folder)], check=True)
    subprocess.run(["chown", "-R", "nagios:nagios", str(out)], check=True)
    paths = {"InitRunDir": out, "StatePath": out / "icinga2.state", "ModAttrPath": out / "modattr.conf",
             "ObjectsPath": out / "objects.debug", "VarsPath": out / "icinga2.vars", "CacheDir": out,
             "DataDir": out, "SpoolDir": out, "LogDir": out}
    with open(out / "daemon.log", "wb") as log:
        daemon = subprocess.Popen(["icinga2", "daemon", "-c", str(config),
                                   *(f"-DConfiguration.{key}={value}" for key, value in paths.items())],
                                  stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        time.sleep(INTERVAL)  # Icinga spreads the first checks over one interval
        window_start, busy_start = time.time(), busy()
        time.sleep(max(1, seconds - INTERVAL))
        window_end, busy_end = time.time(), busy()
    finally:
        daemon.send_signal(signal.SIGTERM)
        try:
            daemon.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(daemon.pid, signal.SIGKILL)
            daemon.wait()
    states = []
    for path in out.glob("service-*"):
        for line in path.read_text(errors="replace").splitlines():
            parts = dict(field.split("::", 1) for field in line.split("\t") if "::" in field)
            if "T" in parts and "S" in parts and window_start <= float(parts["T"]) <= window_end:
                states.append(int(parts["S"]))
    minutes = (window_end - window_start) / 60
    cpu = (busy_end[0] - busy_start[0]) / max(1, busy_end[1] - busy_start[1])
    return {"per_minute": len(states) / minutes, "not_ok": sum(state != 0 for state in states) / max(1, len(states)),
            "busy": cpu}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rates", default="300,600,900", help="checks a minute to try, comma-separated")
    parser.add_argument("--seconds", type=int, default=150, help="how long each rate runs (the first 60 s are not "
                                                                 "counted)")
    parser.add_argument("--rounds", type=int, default=11, help="runs for the CPU per check")
    args = parser.parse_args()
    if os.geteuid() != 0 or shutil.which("icinga2") is None:
        raise SystemExit("bench/sizing needs root and icinga2 (tests/run installs it)")
    rates = [int(rate) for rate in args.rates.split(",")]
    print(f"# check_k8s_health sizing: one icinga2, checks every {INTERVAL} s")
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, {platform.platform()}")
    folder = Path(tempfile.mkdtemp(prefix="check_k8s_health-sizing-"))
    folder.chmod(0o755)
    try:
        plugin = install(folder)
        with FakeApiServer(healthy_routes()) as server:
            ca = folder / "ca.crt"
            shutil.copy(server.ca_file, ca)
            ca.chmod(0o644)
            costs = cpu_per_check(plugin, server, args.rounds)
            print("\n## CPU per check (median, the plugin as nagios runs it)")
            for name, cpu in costs.items():
                print(f"  {name:40} {cpu * 1000:7.1f} ms")
            per_core = INTERVAL / costs["one server, readyz"]
            print(f"  -> one core runs at most {per_core:.0f} plain checks a minute, "
                  f"{INTERVAL / costs['--members, 3 members x livez+readyz']:.0f} --members checks")
            print("\n## one icinga2 at each rate")
            print(f"  {'checks/min asked':>16} {'done/min':>9} {'not OK':>7} {'machine busy':>13}  sustained")
            sustained = 0
            for rate in rates:
                found = run_rate(folder, plugin, server, str(ca), rate=rate, seconds=args.seconds)
                held = found["per_minute"] >= 0.95 * rate and found["not_ok"] <= 0.01
                sustained = rate if held else sustained
                print(f"  {rate:16d} {found['per_minute']:9.0f} {100 * found['not_ok']:6.1f}% "
                      f"{100 * found['busy']:12.0f}%  {'yes' if held else 'NO'}", flush=True)
        print(f"\nsustained: {sustained} checks a minute (of those tried), {os.cpu_count()} CPUs")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
