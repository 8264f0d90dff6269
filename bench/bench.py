"""Cost per check: check_k8s_health against the floor of its stack, curl and its peers, on one machine, in one run.

Every contender runs as a whole process against the same local TLS server (the test suite's fake API server,
answering with the byte-exact body of a real kube-apiserver). Runs alternate between contenders, so a busy
moment of the machine hits all of them alike. Wall time from fork to exit, CPU time (user + system) and peak
RSS come from ``os.wait4``. Medians and min-max are printed, with ratios to the floor (a script on the same
interpreter that imports requests and does one GET through a Session with ``trust_env`` off) and to curl.

    .venv/bin/python bench/bench.py [--rounds 15]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from fakeapi import FakeApiServer, Reply, etcd_down_routes, healthy_routes
from fakeblind import healthy_blind_routes
from fakecluster import control_plane
from fakeleaders import HEALTHY as HEALTHY_LEASES
from fakeleaders import control_plane_routes, leader_routes, lease_reply, metrics_body, metrics_reply

PLUGIN = str(Path(sys.executable).parent / "check_k8s_health")
TOKEN = "bench-token-0123456789"
FLOOR = ("import requests\nsession = requests.Session()\nsession.trust_env = False\n"
         "session.get({url!r}, verify={ca!r}, timeout=8).content\n")
PLAIN = "import requests\nrequests.get({url!r}, verify={ca!r}, timeout=8).content\n"
#: The floor plus the other two parts of the fixed stack every run needs: nagiosplugin and argparse.
STACK = "import argparse, nagiosplugin\n" + FLOOR


@dataclass
class Sample:
    wall: float
    cpu: float
    rss_mib: float


TIME = "/usr/bin/time"


def measure(command: Sequence[str], env: dict[str, str]) -> Sample:
    """Wall and CPU from ``os.wait4``; peak RSS from GNU time, which forks from a tiny process: a child forked
    (or vforked) from this large interpreter would report the interpreter's RSS as its own peak."""
    with tempfile.NamedTemporaryFile("r") as report:
        wrapped = [TIME, "-f", "%M", "-o", report.name, *command] if os.path.exists(TIME) else list(command)
        started = time.perf_counter()
        proc = subprocess.Popen(wrapped, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        _, _, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
        proc.returncode = 0
        text = report.read().strip().splitlines()
    rss = int(text[-1]) / 1024 if text and text[-1].isdigit() else float("nan")
    return Sample(wall, usage.ru_utime + usage.ru_stime, rss)


def run(contenders: dict[str, list[str]], rounds: int, env: dict[str, str]) -> dict[str, list[Sample]]:
    samples: dict[str, list[Sample]] = {name: [] for name in contenders}
    for command in contenders.values():  # warm the page cache and the server
        measure(command, env)
    for _ in range(rounds):
        for name, command in contenders.items():
            samples[name].append(measure(command, env))
    return samples


def median(values: list[float]) -> float:
    return statistics.median(values)


def show(title: str, samples: dict[str, list[Sample]], floor: str = "floor", curl: str = "curl") -> None:
    print(f"\n## {title}")
    print(f"{'contender':34} {'wall ms (min-max)':>22} {'cpu ms':>8} {'rss MiB':>8} {'x floor':>8} {'x curl':>7}")
    base = median([s.wall for s in samples[floor]]) if floor in samples else None
    base_curl = median([s.wall for s in samples[curl]]) if curl in samples else None
    for name, values in samples.items():
        walls = [s.wall * 1000 for s in values]
        wall = median(walls)
        ratio = f"{wall / 1000 / base:8.2f}" if base else f"{'':8}"
        ratio_curl = f"{wall / 1000 / base_curl:7.2f}" if base_curl else f"{'':7}"
        print(f"{name:34} {wall:8.1f} ({min(walls):5.1f}-{max(walls):6.1f}) "
              f"{median([s.cpu * 1000 for s in values]):8.1f} {median([s.rss_mib for s in values]):8.1f}"
              f"{ratio}{ratio_curl}")


def target(label: str, value: float, limit: float, unit: str = "x") -> bool:
    met = value <= limit
    gap = "" if met else f"  (missed by {value - limit:.2f}{unit}, {100 * (value / limit - 1):.0f} %)"
    print(f"  [{'met' if met else 'MISSED'}] {label}: {value:.2f}{unit} (target <= {limit:g}{unit}){gap}")
    return met


def kubeconfig(folder: Path, server: FakeApiServer) -> Path:
    path = folder / "kubeconfig"
    path.write_text(f"""apiVersion: v1
kind: Config
current-context: bench
clusters:
- name: bench
  cluster: {{server: "{server.url}", certificate-authority: "{server.ca_file}"}}
users:
- name: bench
  user: {{token: "{TOKEN}"}}
contexts:
- name: bench
  context: {{cluster: bench, user: bench}}
""")
    return path


def slow(routes: dict[str, Reply], delay: float) -> dict[str, Reply]:
    return {path: Reply(reply.status, reply.body, reply.headers, delay=delay) for path, reply in routes.items()}


def imported(command: Sequence[str], env: dict[str, str]) -> dict[str, int]:
    """Modules a run imports, with their own import time in microseconds (python -X importtime)."""
    # cwd "/" so that "-m check_k8s_health" imports the installed package (with its bytecode), not the checkout.
    result = subprocess.run([sys.executable, "-X", "importtime", *command], capture_output=True, text=True, env=env,
                            check=False, cwd="/")
    modules = {}
    for line in result.stderr.splitlines():
        if line.startswith("import time:") and line.count("|") == 2:
            own, _, name = line[len("import time:"):].split("|")
            if own.strip().isdigit():
                modules[name.strip()] = int(own)
    return modules


def import_check(server: FakeApiServer, env: dict[str, str]) -> None:
    """What a plain run imports beyond the floor: the plugin's own modules, and anything else is named."""
    url = f"{server.url}/readyz?verbose"
    floor = imported(["-c", FLOOR.format(url=url, ca=server.ca_file)], env)
    plugin = imported(["-m", "check_k8s_health", "-s", server.url, "--certificate-authority", server.ca_file], env)
    extra = {name: own for name, own in plugin.items() if name not in floor}
    ours = {name: own for name, own in extra.items() if name.startswith("check_k8s_health")}
    others = dict(sorted(((name, own) for name, own in extra.items() if name not in ours), key=lambda kv: -kv[1]))
    print(f"\n## imports of one plain run beyond the floor's {len(floor)} modules")
    print(f"  the plugin's own: {len(ours)} modules, {sum(ours.values()) / 1000:.1f} ms")
    print(f"  others ({len(others)}, {sum(others.values()) / 1000:.1f} ms): "
          + ", ".join(f"{name} {own / 1000:.1f}" for name, own in others.items()))
    unneeded = [name for name in ("yaml", "dataclasses", "_strptime", "concurrent.futures", "importlib.metadata",
                                  "check_k8s_health.access.execplugin", "check_k8s_health.output.machine",
                                  "check_k8s_health.transport.tls",
                                  *(f"check_k8s_health.checks.{check}.{stage}"
                                    for check in ("members", "blindspots", "leaders", "writes", "etcdsize")
                                    for stage in ("acquire", "read", "judge"))) if name in extra]
    print(f"  not needed by this run, imported anyway: {', '.join(unneeded) or 'none'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=15)
    rounds = parser.parse_args().rounds
    env = {key: value for key, value in os.environ.items()
           if not key.lower().endswith("_proxy") and key not in ("KUBECONFIG", "K8S_HEALTH_TOKEN")}
    print(f"# check_k8s_health benchmark: {rounds} rounds, medians")
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, {platform.platform()}, Python "
          f"{platform.python_version()}")
    met = []
    with ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        server = stack.enter_context(FakeApiServer(healthy_routes()))
        url = f"{server.url}/readyz?verbose"
        contenders = {
            "check_k8s_health": [PLUGIN, "-s", server.url, "--certificate-authority", server.ca_file],
            "floor": [sys.executable, "-c", FLOOR.format(url=url, ca=server.ca_file)],
            "floor + nagiosplugin + argparse": [sys.executable, "-c", STACK.format(url=url, ca=server.ca_file)],
            "requests.get": [sys.executable, "-c", PLAIN.format(url=url, ca=server.ca_file)],
        }
        if shutil.which("curl"):
            contenders["curl"] = ["curl", "-sS", "-o", "/dev/null", "--cacert", server.ca_file, url]
        for name in ("check_curl", "check_http"):
            path = f"/usr/lib/nagios/plugins/{name}"
            if os.path.exists(path):
                contenders[name] = [path, "-H", "127.0.0.1", "-p", str(server.port), "-S", "-u", "/readyz?verbose"]
        kubectl = shutil.which("kubectl")
        if kubectl:
            versioned = sorted(Path(os.path.realpath(kubectl)).parent.glob("kubectl.1.*"),
                               key=lambda path: int(path.name.rsplit(".", 1)[-1]))
            kubectl = str(versioned[-1]) if versioned else kubectl
            contenders["kubectl get --raw"] = [kubectl, "--kubeconfig", str(kubeconfig(folder, server)), "get",
                                               "--raw", "/readyz?verbose"]
        one = run(contenders, rounds, env)
        show("one server, one endpoint (readyz, 33 sub-checks)", one)
        floor_wall = median([s.wall for s in one["floor"]])
        floor_cpu = median([s.cpu for s in one["floor"]])
        plugin_wall = median([s.wall for s in one["check_k8s_health"]])
        met.append(target("one server: wall / floor", plugin_wall / floor_wall, 1.10))
        stack_wall = median([s.wall for s in one["floor + nagiosplugin + argparse"]])
        print(f"  (of the gap, the rest of the fixed stack takes {100 * (stack_wall / floor_wall - 1):.0f} %: "
              f"the plugin's own code and work {100 * (plugin_wall / stack_wall - 1):.0f} % over that)")
        met.append(target("one server: wall / (floor + nagiosplugin + argparse)", plugin_wall / stack_wall, 1.05))
        met.append(target("one server: cpu / floor", median([s.cpu for s in one["check_k8s_health"]]) / floor_cpu,
                          1.10))
        met.append(target("peak RSS", max(s.rss_mib for s in one["check_k8s_health"]), 32, " MiB"))

        both = run({"check_k8s_health -e livez -e readyz": [PLUGIN, "-s", server.url, "--certificate-authority",
                                                            server.ca_file, "-e", "livez", "-e", "readyz"],
                    "floor": contenders["floor"]}, rounds, env)
        show("two endpoints, asked at once", both)

        secured = stack.enter_context(FakeApiServer(healthy_routes(), token=TOKEN, anonymous=False))
        config = kubeconfig(folder / "..", secured) if False else kubeconfig(Path(tempfile.mkdtemp(dir=folder)),
                                                                              secured)
        kube = run({"check_k8s_health --kubeconfig": [PLUGIN, "--kubeconfig", str(config)],
                    "floor": [sys.executable, "-c", FLOOR.format(url=f"{secured.url}/readyz?verbose",
                                                                 ca=secured.ca_file)]}, rounds, env)
        show("kubeconfig (server, CA and token from the file)", kube)
        met.append(target("kubeconfig: wall / floor", median([s.wall for s in kube["check_k8s_health --kubeconfig"]])
                          / median([s.wall for s in kube["floor"]]), 1.15))

        slow_servers = [stack.enter_context(FakeApiServer(slow(healthy_routes(), 0.2), ca=server.ca))
                        for _ in range(5)]
        several: dict[str, list[str]] = {}
        for count in (1, 3, 5):
            args = [arg for s in slow_servers[:count] for arg in ("-s", s.url)]
            several[f"check_k8s_health, {count} server(s) at 200 ms"] = [PLUGIN, *args, "--certificate-authority",
                                                                         server.ca_file]
        spread = run(several, rounds, env)
        show("several servers, each answering after 200 ms", spread, floor="")
        one_slow = median([s.wall for s in spread["check_k8s_health, 1 server(s) at 200 ms"]])
        met.append(target("5 servers / 1 server (200 ms each)",
                          median([s.wall for s in spread["check_k8s_health, 5 server(s) at 200 ms"]]) / one_slow, 1.2))

        plane = stack.enter_context(control_plane([healthy_routes()] * 3))
        members = run({"check_k8s_health": contenders["check_k8s_health"],
                       "check_k8s_health --members, 3 x livez+readyz": [PLUGIN, *plane.lb_args, "--members", "-e",
                                                                       "livez", "-e", "readyz"],
                       "floor": contenders["floor"]}, rounds, env)
        show("--members: the list and the Leases from a load balancer, then 3 members x 2 endpoints", members)
        met.append(target("--members, 3 members x 2 endpoints / one server, one endpoint",
                          median([s.wall for s in members["check_k8s_health --members, 3 x livez+readyz"]])
                          / median([s.wall for s in members["check_k8s_health"]]), 1.3))

        # A healthy cluster as recorded: no webhooks, only the built-in (local) APIServices.
        blind = stack.enter_context(FakeApiServer(healthy_blind_routes(), ca=server.ca))
        blind_args = [PLUGIN, "-s", blind.url, "--certificate-authority", server.ca_file]
        spots = run({"check_k8s_health": blind_args,
                     "check_k8s_health --webhooks --aggregated-apis": [*blind_args, "--webhooks", "--aggregated-apis"],
                     "floor": contenders["floor"]}, rounds, env)
        show("--webhooks --aggregated-apis on a healthy cluster: three lists beside /readyz", spots)
        met.append(target("--webhooks --aggregated-apis / plain run of the same endpoint",
                          median([s.wall for s in spots["check_k8s_health --webhooks --aggregated-apis"]])
                          / median([s.wall for s in spots["check_k8s_health"]]), 1.15))
        met.append(target("  the same in CPU",
                          median([s.cpu for s in spots["check_k8s_health --webhooks --aggregated-apis"]])
                          / median([s.cpu for s in spots["check_k8s_health"]]), 1.15))

        # The two recorded leader Leases asked beside /readyz; held for an hour, so both stay led while measured.
        held = [lease_reply(HEALTHY_LEASES[name], spec={"leaseDurationSeconds": 3600})
                for name in ("kube-scheduler", "kube-controller-manager")]
        leaders = stack.enter_context(FakeApiServer(leader_routes(*held), ca=server.ca))
        leader_args = [PLUGIN, "-s", leaders.url, "--certificate-authority", server.ca_file]
        led = run({"check_k8s_health": leader_args, "check_k8s_health --leaders": [*leader_args, "--leaders"],
                   "floor": contenders["floor"]}, rounds, env)
        show("--leaders on a healthy control plane: two leader Leases beside /readyz", led)
        met.append(target("--leaders / plain run of the same endpoint, CPU",
                          median([s.cpu for s in led["check_k8s_health --leaders"]])
                          / median([s.cpu for s in led["check_k8s_health"]]), 1.15))

        # The same Leases, the probe Lease taking its write, and a /metrics of a real idle server's 1.6 MB.
        plane = stack.enter_context(FakeApiServer(control_plane_routes(None, None, *held), ca=server.ca))
        plane_args = [PLUGIN, "-s", plane.url, "--certificate-authority", server.ca_file]
        probe = [*plane_args, "--leaders", "--write-probe"]
        every = [*probe, "--etcd-quota", "2GiB"]
        wrote = run({"check_k8s_health": plane_args, "check_k8s_health --leaders --write-probe": probe,
                     "check_k8s_health --leaders --write-probe --etcd-quota": every, "floor": contenders["floor"]},
                    rounds, env)
        show("the control plane: --leaders --write-probe, and with --etcd-quota (a 1.6 MB /metrics)", wrote)
        met.append(target("--leaders --write-probe / plain run of the same endpoint, CPU",
                          median([s.cpu for s in wrote["check_k8s_health --leaders --write-probe"]])
                          / median([s.cpu for s in wrote["check_k8s_health"]]), 1.15))
        met.append(target("--leaders --write-probe --etcd-quota / plain run, CPU",
                          median([s.cpu for s in wrote["check_k8s_health --leaders --write-probe --etcd-quota"]])
                          / median([s.cpu for s in wrote["check_k8s_health"]]), 1.35))
        # A /metrics of 30 MB (a large cluster's), its storage lines where a real one has them: the time it costs.
        large = stack.enter_context(FakeApiServer(control_plane_routes(
            None, metrics_reply(metrics_body(size=30_000_000)), *held), ca=server.ca))
        large_args = [PLUGIN, "-s", large.url, "--certificate-authority", server.ca_file]
        big = run({"check_k8s_health": large_args, "check_k8s_health --etcd-quota, 30 MB /metrics":
                   [*large_args, "--etcd-quota", "2GiB"], "floor": contenders["floor"]}, rounds, env)
        show("--etcd-quota with a 30 MB /metrics (the storage lines at 55 %, read up to there)", big)

        sick = stack.enter_context(FakeApiServer(etcd_down_routes(), ca=server.ca))
        failing = run({"check_k8s_health, etcd down, reasons": [PLUGIN, "-s", sick.url, "--certificate-authority",
                                                                server.ca_file, "-v"],
                       "check_k8s_health, etcd down, --no-reasons": [PLUGIN, "-s", sick.url,
                                                                      "--certificate-authority", server.ca_file,
                                                                      "--no-reasons"],
                       "floor": contenders["floor"]}, rounds, env)
        show("a failing server, reasons fetched (2 more requests, concurrently)", failing)
        import_check(server, env)
    print(f"\n{sum(met)} of {len(met)} targets met (floor wall {floor_wall * 1000:.1f} ms, plugin "
          f"{plugin_wall * 1000:.1f} ms)")


if __name__ == "__main__":
    main()
