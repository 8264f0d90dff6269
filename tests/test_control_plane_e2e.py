"""``--write-probe`` and ``--etcd-quota`` end to end (SPEC section 6c): the installed command against an HTTPS server
on 127.0.0.1 replaying what a real v1.28 API server answered while etcd was out of space (every write refused with
``database space exceeded``, every /readyz sub-check passing), after a defragmentation that freed the space but left
the alarm armed, and healthy; /metrics at the size of a real one (1.6 MB) around its recorded storage lines."""

from __future__ import annotations

import dataclasses
import gzip
import json
import time

import pytest
from conftest import ca_args, perf, run_plugin
from conftest import check_routes as check
from fakeapi import FakeApiServer, Reply
from fakeleaders import (
    LEASE_PATH,
    METRICS_AFTER_DEFRAG,
    PROBE,
    PROBE_FORBIDDEN,
    PROBE_NOSPACE,
    PROBE_NOSPACE_AFTER_DEFRAG,
    control_plane_routes,
    metrics_body,
    metrics_reply,
    probe_reply,
    storage_lines,
)

pytestmark = pytest.mark.usefixtures("each_install")

OK_READYZ = "readyz: all 33 sub-checks passed"
FULL = "etcd is out of space: every write is refused"
QUOTA = ["--etcd-quota", "2GiB"]


def _size_line(value: str, label: str = 'cluster="etcd-0"') -> bytes:
    return f"apiserver_storage_size_bytes{{{label}}} {value}\n".encode()


# -- the write probe --------------------------------------------------------------------------------------------

def test_a_write_renews_the_probe_lease_with_one_merge_patch() -> None:
    with FakeApiServer(control_plane_routes()) as server:
        before = time.time()
        run = run_plugin(*ca_args(server), "--write-probe", "-vv")
        writes = [seen for seen in server.requests if seen.method != "GET"]
    assert run.code == 0 and run.first_line.startswith(f"K8S_HEALTH OK - {OK_READYZ}; write: 0.")
    assert [(seen.method, seen.path, seen.header("Content-Type")) for seen in writes] == \
        [("PATCH", PROBE, "application/merge-patch+json")]
    spec = json.loads(writes[0].body)["spec"]
    assert spec["holderIdentity"] == "check_k8s_health" and set(spec) == {"holderIdentity", "renewTime"}
    renewed = time.mktime(time.strptime(spec["renewTime"][:19], "%Y-%m-%dT%H:%M:%S")) - time.timezone
    assert before - 2 < renewed < time.time() + 1
    assert perf(run)["write_time"].endswith("s;;;0")
    assert any(line.startswith("[+] write/monitoring/check-k8s-health: written in") for line in run.long_output)


def test_a_plain_run_writes_nothing_and_reads_no_metrics() -> None:
    with FakeApiServer(control_plane_routes()) as server:
        run = run_plugin(*ca_args(server), "--leaders")
        asked = {(seen.method, seen.path) for seen in server.requests}
    assert run.code == 0 and all(method == "GET" for method, _ in asked) and ("GET", "/metrics") not in asked


def test_etcd_out_of_space_is_critical_while_readyz_passes() -> None:
    run = check(control_plane_routes(probe_reply(PROBE_NOSPACE)), "--write-probe", "-v")
    assert (run.code, run.first_line) == (2, f"K8S_HEALTH CRITICAL - {OK_READYZ}; {FULL}")
    assert any("etcdctl alarm disarm" in line for line in run.long_output)
    assert "write_time" in perf(run)


def test_after_a_defragmentation_the_size_looks_fine_and_only_the_write_tells() -> None:
    routes = control_plane_routes(probe_reply(PROBE_NOSPACE_AFTER_DEFRAG),
                                  metrics_reply(metrics_body(storage_lines(METRICS_AFTER_DEFRAG))))
    run = check(routes, "--write-probe", *QUOTA)
    assert (run.code, run.first_line) == (2, f"K8S_HEALTH CRITICAL - {OK_READYZ}; {FULL}; etcd under 1 % of quota "
                                             "(212 KiB of 2 GiB)")


@pytest.mark.parametrize("reply, code, words", [
    (Reply.from_capture(PROBE_FORBIDDEN), 3, "HTTP 403, grant patch on the Lease monitoring/check-k8s-health "
                                             "(coordination.k8s.io)"),
    (Reply.from_capture("leaders/lease_not_found.txt"), 3, "the Lease monitoring/check-k8s-health does not exist: "
                                                           "apply deploy/rbac.yaml (the plugin never creates it)"),
    (Reply(409, b'{"kind":"Status","message":"Operation cannot be fulfilled on leases.coordination.k8s.io '
                b'\\"check-k8s-health\\": the object has been modified","reason":"Conflict","code":409}'),
     2, "the write to the Lease monitoring/check-k8s-health was refused: HTTP 409 Conflict: Operation cannot be "
        "fulfilled"),
    (Reply(422, b'{"kind":"Status","message":"Lease.coordination.k8s.io \\"check-k8s-health\\" is invalid",'
                b'"code":422}'), 2, "was refused: HTTP 422 Unprocessable Entity: Lease.coordination.k8s.io"),
    (Reply(503, b"etcdserver: request timed out"), 2, "the write to the Lease monitoring/check-k8s-health failed: "
                                                      "HTTP 503 Service Unavailable"),
])
def test_other_refusals_name_what_refused_the_write(reply: Reply, code: int, words: str) -> None:
    run = check(control_plane_routes(reply), "--write-probe")
    assert run.code == code and words in run.first_line, run.first_line
    assert len(run.first_line) <= 200


def test_a_write_that_never_answers_is_critical_within_the_deadline() -> None:
    run = check(control_plane_routes(Reply(200, hang=True)), "--write-probe", "-t", "2")
    assert run.code == 2 and run.seconds < 4
    assert "write to the Lease monitoring/check-k8s-health" in run.first_line
    assert run.first_line.endswith("did not answer within the 2 s deadline (-t)")


def test_a_slow_write_meets_its_thresholds() -> None:
    run = check(control_plane_routes(probe_reply(delay=0.4)), "--write-probe", "--write-warning", "0.2",
                "--write-critical", "5")
    assert run.code == 1 and "(over --write-warning 0.2 s): is etcd's disk slow?" in run.first_line
    assert perf(run)["write_time"].endswith("s;0.2;5;0")


@pytest.mark.parametrize("policy, code, label", [
    (["--warning-check", "write/*"], 1, " (WARNING by policy)"),
    (["--ignore-check", "write/monitoring/check-k8s-health"], 0, " (ignored by policy)"),
])
def test_policy_globs_soften_or_silence_the_write(policy: list[str], code: int, label: str) -> None:
    run = check(control_plane_routes(probe_reply(PROBE_NOSPACE)), "--write-probe", *policy)
    assert (run.code, run.first_line.split("; ", 1)[1]) == (code, FULL + label)


def test_write_lease_names_another_lease_and_implies_the_probe() -> None:
    other = LEASE_PATH.format(namespace="ops", name="probe-host-1")
    routes = control_plane_routes()
    routes[other] = routes.pop(PROBE)
    with FakeApiServer(routes) as server:
        run = run_plugin(*ca_args(server), "--write-lease", "ops/probe-host-1", "--output", "json")
        writes = [(seen.method, seen.path) for seen in server.requests if seen.method != "GET"]
    assert writes == [("PATCH", other)]
    document = json.loads(run.stdout)["write_probe"]
    assert (document["state"], document["name"], document["out_of_space"]) == ("OK", "write/ops/probe-host-1", False)
    assert document["time"] > 0


def test_json_says_etcd_is_full() -> None:
    run = check(control_plane_routes(probe_reply(PROBE_NOSPACE)), "--write-probe", "--output", "json")
    document = json.loads(run.stdout)
    assert (run.code, document["state"], document["write_probe"]["out_of_space"]) == (2, "CRITICAL", True)
    assert document["write_probe"]["words"] == FULL


# -- etcd's size ------------------------------------------------------------------------------------------------

def test_the_size_from_a_real_sized_metrics_with_the_quota_as_maximum() -> None:
    with FakeApiServer(control_plane_routes()) as server:
        run = run_plugin(*ca_args(server), *QUOTA, "-vv")
        accept = [seen.header("Accept") for seen in server.requests if seen.path == "/metrics"]
    assert (run.code, run.first_line) == (0, f"K8S_HEALTH OK - {OK_READYZ}; etcd under 1 % of quota (280 KiB of "
                                             "2 GiB)")
    assert perf(run)["etcd_db_size"] == "286720B;1717986918;2040109465;0;2147483648"
    assert 'etcd-size: apiserver_storage_size_bytes{cluster="etcd-0"} 286720' in run.long_output
    assert accept and accept[0] is not None


@pytest.mark.parametrize("value, args, code, words", [
    ("1.8e+09", [], 1, "etcd is 84 % full (1.68 GiB of 2 GiB): at 100 % every write is refused"),
    ("2100000000", [], 2, "etcd is 98 % full (1.96 GiB of 2 GiB): at 100 % every write is "
                          "refused"),
    ("1.8e+09", ["--etcd-warning", "90", "--etcd-critical", "99"], 0, "etcd 84 % of quota (1.68 GiB of 2 GiB)"),
    ("900000000", ["--etcd-quota", "1GiB"], 1, "etcd is 84 % full (858 MiB of 1 GiB)"),
])
def test_size_against_quota_and_thresholds(value: str, args: list[str], code: int, words: str) -> None:
    run = check(control_plane_routes(metrics=metrics_reply(metrics_body(_size_line(value)))), *QUOTA, *args)
    assert run.code == code and run.first_line.startswith(f"K8S_HEALTH {('OK', 'WARNING', 'CRITICAL')[code]} - "
                                                          f"{OK_READYZ}; {words}"), run.first_line


def test_the_recorded_outage_with_its_16_mib_quota() -> None:
    """The recorded server ran etcd with a 16 MiB quota: full, /metrics read 1.626112e+07 and writes were refused;
    defragmented to 212 KiB, writes were still refused until the alarm was disarmed."""
    full = metrics_reply(metrics_body(_size_line("1.626112e+07")))
    run = check(control_plane_routes(probe_reply(PROBE_NOSPACE), full), "--write-probe", "--etcd-quota", "16MiB")
    assert (run.code, run.first_line) == (2, f"K8S_HEALTH CRITICAL - {OK_READYZ}; {FULL}; etcd is 97 % full (15.5 MiB "
                                             "of 16 MiB): at 100 % every write is refused")
    freed = metrics_reply(metrics_body(storage_lines(METRICS_AFTER_DEFRAG)))
    run = check(control_plane_routes(probe_reply(PROBE_NOSPACE_AFTER_DEFRAG), freed), "--write-probe",
                "--etcd-quota", "16MiB")
    assert (run.code, run.first_line) == (2, f"K8S_HEALTH CRITICAL - {OK_READYZ}; {FULL}; etcd 1 % of quota (212 KiB "
                                             "of 16 MiB)")
    run = check(control_plane_routes(probe_reply("leaders/lease_probe_patch_after_disarm.txt"), freed),
                "--write-probe", "--etcd-quota", "16MiB")
    assert run.code == 0 and run.first_line.startswith(f"K8S_HEALTH OK - {OK_READYZ}; write: 0.")


def test_the_body_is_left_unread_once_the_size_is_found() -> None:
    """The server breaks its answer off halfway, after the storage lines: a plugin that read on would see the
    broken answer; one that stopped never does."""
    body = metrics_body(size=4_000_000, before=0.1)
    reply = dataclasses.replace(metrics_reply(body), close_mid_body=True)
    run = check(control_plane_routes(metrics=reply), *QUOTA)
    assert (run.code, run.first_line) == (0, f"K8S_HEALTH OK - {OK_READYZ}; etcd under 1 % of quota (280 KiB of "
                                             "2 GiB)")


def test_a_compressed_metrics_is_read_as_the_server_sends_it() -> None:
    body = gzip.compress(metrics_body(_size_line("5.36870912e+08")))
    reply = Reply(200, body, headers=(("Content-Type", "text/plain; version=0.0.4"), ("Content-Encoding", "gzip")))
    run = check(control_plane_routes(metrics=reply), *QUOTA)
    assert run.code == 0 and run.first_line.endswith("etcd 25 % of quota (512 MiB of 2 GiB)")


def test_the_deprecated_metric_and_the_largest_endpoint_count_where_the_new_one_is_absent() -> None:
    lines = (b'apiserver_storage_db_total_size_in_bytes{endpoint="https://10.0.0.1:2379"} 1073741824\n'
             b'apiserver_storage_db_total_size_in_bytes{endpoint="https://10.0.0.2:2379"} 1879048192\n')
    run = check(control_plane_routes(metrics=metrics_reply(metrics_body(lines))), *QUOTA, "-vv")
    assert run.code == 1 and "etcd is 88 % full (1.75 GiB of 2 GiB" in run.first_line
    assert any("deprecated apiserver_storage_db_total_size_in_bytes" in line for line in run.long_output)


@pytest.mark.parametrize("body, code, words", [
    (metrics_body(_size_line("NaN")), 3, "etcd size: apiserver_storage_size_bytes holds no usable value (NaN)"),
    (metrics_body(_size_line("+Inf")), 3, "holds no usable value (+Inf)"),
    (metrics_body(_size_line("-4096")), 3, "holds no usable value (-4096)"),
    (metrics_body(b"# no storage metric here\n"), 0, "etcd size not in /metrics"),
    (bytes(range(256)).replace(b"\n", b"") * 4096, 0, "etcd size not in /metrics"),
], ids=["nan", "inf", "negative", "no-metric", "binary"])
def test_odd_metrics_are_said_never_a_traceback(body: bytes, code: int, words: str) -> None:
    run = check(control_plane_routes(metrics=metrics_reply(body)), *QUOTA, "-v")
    assert run.code == code and run.first_line.endswith(words), run.first_line


def test_a_metrics_of_100_mb_without_the_lines_is_unknown_within_the_deadline() -> None:
    body = b"x" * (100 * 1024 * 1024)
    run = check(control_plane_routes(metrics=metrics_reply(body)), *QUOTA, "-t", "10")
    assert run.code == 3 and run.first_line.endswith("cannot be used: its first 64 MiB hold no storage size")


@pytest.mark.parametrize("reply, code, words", [
    (Reply(403, b'{"kind":"Status","message":"forbidden: User \\"monitor\\" cannot get path \\"/metrics\\"",'
                b'"code":403}'), 3, "HTTP 403, grant get on the non-resource URL /metrics to read etcd's size"),
    (Reply(500, b"internal error"), 2, "HTTP 500 Internal Server Error for the /metrics from 127.0.0.1:"),
    (Reply(200, hang=True), 2, "did not answer within the 2 s deadline (-t)"),
])
def test_metrics_refused_or_silent(reply: Reply, code: int, words: str) -> None:
    run = check(control_plane_routes(metrics=reply), *QUOTA, "-t", "2")
    assert run.code == code and words in run.first_line, run.first_line


def test_all_three_with_two_servers_ask_the_first_only() -> None:
    with FakeApiServer(control_plane_routes()) as first, \
            FakeApiServer(control_plane_routes(), ca=first.ca) as second:
        run = run_plugin("-s", first.url, "-s", second.url, "--certificate-authority", first.ca_file,
                         "--leaders", "--write-probe", *QUOTA)
        asked = [sorted(seen.path for seen in server.requests) for server in (first, second)]
    assert run.code == 0 and "write: 0." in run.first_line and "etcd under 1 % of quota" in run.first_line
    assert "/metrics" in asked[0] and PROBE in asked[0]
    assert asked[1] == ["/readyz"]


# -- the command line -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("args, words", [
    (["--etcd-quota", "0"], "argument --etcd-quota: 0 is not a quota etcd can have"),
    (["--etcd-quota=-1"], "argument --etcd-quota: '-1' is not a size"),
    (["--etcd-quota", "2GB?"], "argument --etcd-quota: '2GB?' is not a size such as 2GiB, 8GiB, 16MiB"),
    (["--etcd-quota", "2GiB", "--etcd-warning", "0"], "argument --etcd-warning: 0 is not a percentage"),
    (["--etcd-quota", "2GiB", "--etcd-critical", "101"], "argument --etcd-critical: 101 is not a percentage"),
    (["--etcd-quota", "2GiB", "--etcd-warning", "nan"], "argument --etcd-warning: nan is not a percentage"),
    (["--etcd-quota", "2GiB", "--etcd-warning", "96"], "--etcd-warning 96 is above --etcd-critical 95"),
    (["--etcd-warning", "50"], "--etcd-warning judges nothing without --etcd-quota SIZE"),
    (["--write-warning", "1"], "--write-warning judges nothing without --write-probe"),
    (["--write-probe", "--write-warning", "2", "--write-critical", "1"], "--write-warning 2 is above "
                                                                           "--write-critical 1"),
    (["--write-lease", "monitoring"], "argument --write-lease: 'monitoring' is not NAMESPACE/NAME"),
])
def test_bad_options_are_usage_errors_never_exit_2(args: list[str], words: str) -> None:
    run = run_plugin("-s", "https://127.0.0.1:1", *args)
    assert run.code == 3 and words in run.first_line, run.first_line


@pytest.mark.parametrize("option", [["--write-probe"], ["--etcd-quota", "2GiB"]])
def test_they_ask_the_api_server_only(option: list[str]) -> None:
    run = run_plugin("--component", "kube-scheduler", *option)
    assert (run.code, run.first_line) == (3, f"K8S_HEALTH UNKNOWN - {option[0]} asks the API server, not "
                                             "kube-scheduler: leave it out with --component")
