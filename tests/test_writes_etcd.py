"""The write probe and etcd's size, as pure logic (SPEC section 6c): the /metrics scan piece by piece, the patch
sent, and how each answer is judged. The end-to-end tests run the installed command against the recorded answers;
these go through every split point and odd value the network can produce."""

from __future__ import annotations

import argparse
import json
import time
from typing import Optional

import pytest
from fakeapi import Reply
from fakeleaders import METRICS_AFTER_DEFRAG, METRICS_HEALTHY, STORAGE_AT, metrics_body, storage_lines
from nagiosplugin.state import Critical, Ok, Unknown, Warn

from check_k8s_health.base.errors import ReadTimedOut
from check_k8s_health.checks.etcdsize.judge import Quota, binary, judge_size
from check_k8s_health.checks.etcdsize.read import MAX_LINE, EtcdSize, Storage, StorageScan
from check_k8s_health.checks.shared.read import Failure
from check_k8s_health.checks.writes.acquire import patch_document
from check_k8s_health.checks.writes.judge import FULL, judge_write
from check_k8s_health.checks.writes.read import PROBE_LEASE, WriteProbe, Written, parse_written
from check_k8s_health.command import parser
from check_k8s_health.model.policy import Policy
from check_k8s_health.model.settings import Credential, Target, TlsSettings
from check_k8s_health.transport.answer import Answer

VIA = Target("https://127.0.0.1:6443", "--server", TlsSettings(), Credential())
GiB = 1024**3


def scanned(body: bytes, piece: int) -> tuple[Storage, bool, int]:
    scan = StorageScan()
    done = False
    for start in range(0, len(body), piece):
        if scan.feed(body[start:start + piece]):
            done = True
            break
    return scan.finish(), done, scan.scanned


# -- the /metrics scan ------------------------------------------------------------------------------------------

def test_the_recorded_lines_give_the_size_metric_not_the_deprecated_one() -> None:
    storage, _, _ = scanned(storage_lines(METRICS_HEALTHY), 1 << 20)
    assert (storage.metric, storage.size) == ("apiserver_storage_size_bytes", 286720.0)
    assert storage.samples == (('{cluster="etcd-0"}', "286720"),)


@pytest.mark.parametrize("piece", [1, 2, 3, 7, 13, 64, 4096])
def test_a_line_split_across_reads_anywhere_reads_the_same(piece: int) -> None:
    body = metrics_body(size=100_000)
    storage, done, read = scanned(body, piece)
    assert (storage.size, done) == (286720.0, True)
    assert read <= len(body) * STORAGE_AT + 4096  # stopped after the storage lines, long before the end


def test_every_split_point_of_the_lines_themselves() -> None:
    body = b"a_metric 1\n" + storage_lines(METRICS_AFTER_DEFRAG) + b"z_metric 2\n"
    for cut in range(1, len(body)):
        scan = StorageScan()
        scan.feed(body[:cut]) or scan.feed(body[cut:])
        assert scan.finish().size == 217088.0, cut


def test_the_scan_stops_once_another_line_follows_the_metric() -> None:
    scan = StorageScan()
    assert not scan.feed(b'apiserver_storage_size_bytes{cluster="a"} 5\n')
    assert not scan.feed(b"apiserver_storage_si")  # may still be one more of its lines
    assert scan.feed(b'ze_bytes{cluster="b"} 9\n# HELP next\n')
    assert scan.finish().size == 9.0


def test_several_etcd_clusters_the_largest_counts() -> None:
    body = (b'apiserver_storage_size_bytes{storage_cluster_id="etcd-0"} 1.5e+09\n'
            b'apiserver_storage_size_bytes{storage_cluster_id="etcd-events"} 2e5 1733500000000\n'
            b"go_goroutines 300\n")
    storage, done, _ = scanned(body, 1 << 20)
    assert (storage.size, done, len(storage.samples)) == (1.5e9, True, 2)


def test_the_deprecated_metric_counts_only_without_the_new_one_and_needs_the_whole_body() -> None:
    body = (b'apiserver_storage_db_total_size_in_bytes{endpoint="https://10.0.0.1:2379"} 100\n'
            b'apiserver_storage_db_total_size_in_bytes{endpoint="https://10.0.0.2:2379"} 300\n'
            b"go_goroutines 300\n")
    storage, done, _ = scanned(body, 1 << 20)
    assert (storage.metric, storage.size, done) == ("apiserver_storage_db_total_size_in_bytes", 300.0, False)


@pytest.mark.parametrize("value", [b"NaN", b"+Inf", b"-Inf", b"-5", b"0x10", b"12MB"])
def test_a_value_that_is_not_a_size_is_kept_as_unusable(value: bytes) -> None:
    storage, _, _ = scanned(b'apiserver_storage_size_bytes{cluster="a"} ' + value + b"\nx 1\n", 1 << 20)
    assert storage.size is None and storage.unusable == (f'apiserver_storage_size_bytes{{cluster="a"}} '
                                                          f'{value.decode()}',)


def test_names_that_only_start_alike_and_comments_are_not_the_metric() -> None:
    body = (b"# HELP apiserver_storage_size_bytes [ALPHA] Size of the storage database file\n"
            b"apiserver_storage_size_bytes_total 99\napiserver_storage_size_bytesX 98\nx 1\n")
    assert scanned(body, 1 << 20)[0] == Storage()


def test_binary_or_endless_lines_keep_no_more_than_a_line() -> None:
    scan = StorageScan()
    for _ in range(200):
        assert not scan.feed(bytes(range(256)).replace(b"\n", b"") * 64)
    assert len(scan._carry) <= MAX_LINE
    assert not scan.feed(b'\napiserver_storage_size_bytes{cluster="a"} 7\n')
    assert scan.feed(b"x 1\n") and scan.finish().size == 7.0


def test_a_last_line_without_newline_counts() -> None:
    storage, _, _ = scanned(b"x 1\napiserver_storage_size_bytes 42", 1 << 20)
    assert storage.size == 42.0


# -- judging the size -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("size, state, words", [
    (286720, Ok, "etcd under 1 % of quota (280 KiB of 2 GiB)"),
    (int(0.5 * GiB), Ok, "etcd 25 % of quota (512 MiB of 2 GiB)"),
    (int(1.7 * GiB), Warn, "etcd is 85 % full (1.7 GiB of 2 GiB): at 100 % every write is "
                           "refused"),
    (int(1.96 * GiB), Critical, "etcd is 98 % full (1.96 GiB of 2 GiB): at 100 % every "
                                "write is refused"),
    (3 * GiB, Critical, "etcd is 150 % full (3 GiB of 2 GiB): at 100 % every write is refused"),
])
def test_size_against_the_quota(size: int, state: object, words: str) -> None:
    verdict = judge_size(EtcdSize(VIA, Storage("apiserver_storage_size_bytes", float(size))), Quota(2 * GiB),
                         Policy())
    assert (verdict.state, verdict.words(200)) == (state, words)


@pytest.mark.parametrize("policy, state, label", [
    (Policy(warning=("etcd-size",)), Warn, " (WARNING by policy)"),
    (Policy(ignore=("etcd-*",)), Ok, " (ignored by policy)"),
    (Policy(critical=("etcd-size",), ignore=("*",)), Critical, ""),
])
def test_policy_globs_name_etcd_size(policy: Policy, state: object, label: str) -> None:
    verdict = judge_size(EtcdSize(VIA, Storage("apiserver_storage_size_bytes", 1.99 * GiB)), Quota(2 * GiB), policy)
    assert verdict.state == state and verdict.words(200).endswith(f"refused{label}")


def test_no_metric_is_said_not_judged_and_an_unusable_value_is_unknown() -> None:
    verdict = judge_size(EtcdSize(VIA, Storage()), Quota(2 * GiB), Policy())
    assert (verdict.state, verdict.words(200)) == (Ok, "etcd size not in /metrics")
    assert any("--write-probe still sees" in line for _, line in verdict.lines)
    odd = judge_size(EtcdSize(VIA, Storage("apiserver_storage_size_bytes", None, (("", "NaN"),),
                                           ("apiserver_storage_size_bytes NaN",))), Quota(2 * GiB), Policy())
    assert (odd.state, odd.words(200)) == (Unknown, "etcd size: apiserver_storage_size_bytes holds no usable value "
                                                    "(NaN)")


@pytest.mark.parametrize("status, state, words", [
    (403, Unknown, "HTTP 403, grant get on the non-resource URL /metrics to read etcd's size"),
    (500, Critical, "HTTP 500 Internal Server Error for the /metrics from 127.0.0.1:6443"),
])
def test_metrics_refused(status: int, state: object, words: str) -> None:
    answer = Answer("https://127.0.0.1:6443/metrics", status, "Forbidden" if status == 403 else
                    "Internal Server Error", '{"kind":"Status","message":"no"}', 0.01)
    verdict = judge_size(EtcdSize(VIA, Failure("/metrics", VIA, answer)), Quota(2 * GiB), Policy())
    assert verdict.state == state and verdict.words(200).startswith(words)


@pytest.mark.parametrize("size, text", [(0, "0 B"), (1023, "1023 B"), (286720, "280 KiB"), (2 * GiB, "2 GiB"),
                                        (int(1.5 * GiB), "1.5 GiB"), (150 * GiB, "150 GiB"),
                                        (int(1.999 * GiB), "2 GiB"), (int(12.34 * GiB), "12.3 GiB")])
def test_sizes_read_as_etcd_quotas_are_written(size: int, text: str) -> None:
    assert binary(size) == text


# -- the SIZE and PERCENT options -------------------------------------------------------------------------------

@pytest.mark.parametrize("text, size", [("2GiB", 2 * GiB), ("8Gi", 8 * GiB), ("16MiB", 16 * 1024**2),
                                        ("2147483648", 2 * GiB), ("1.5GiB", int(1.5 * GiB)), ("8G", 8 * 10**9),
                                        (" 2GiB ", 2 * GiB)])
def test_quota_sizes(text: str, size: int) -> None:
    assert parser._size(text) == size


@pytest.mark.parametrize("text", ["0", "-1", "2GB?", "GiB", "2 gigabytes", "", "0.1", "9999999TiB", "nan", "inf"])
def test_quota_sizes_refused(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        parser._size(text)


# -- the write probe --------------------------------------------------------------------------------------------

def test_the_patch_renews_only_holder_and_time_with_microseconds() -> None:
    now = time.time_ns()
    document = json.loads(patch_document(now))
    assert list(document) == ["spec"] and set(document["spec"]) == {"holderIdentity", "renewTime"}
    renewed = document["spec"]["renewTime"]
    assert renewed.endswith("Z") and len(renewed.split(".")[1]) == 7
    assert patch_document(now) != patch_document(now + 1000)  # a patch that changes nothing writes nothing


@pytest.mark.parametrize("now_ns, expected", [
    (1_796_616_145_388_525_000, "2026-12-07T04:02:25.388525Z"),  # a float of it truncated to .388524 or .388525
    (1_796_616_145_388_525_999, "2026-12-07T04:02:25.388525Z"),  # cut, never rounded up into the next second
    (1_796_616_145_999_999_999, "2026-12-07T04:02:25.999999Z"),
    (1_796_616_146_000_000_000, "2026-12-07T04:02:26.000000Z"),
    (0, "1970-01-01T00:00:00.000000Z"),
])
def test_the_renew_time_is_exact_to_the_microsecond(now_ns: int, expected: str) -> None:
    assert json.loads(patch_document(now_ns))["spec"]["renewTime"] == expected
    assert json.loads(patch_document(now_ns + 1000))["spec"]["renewTime"] != expected


def _probe(result: object, elapsed: Optional[float] = 0.01) -> WriteProbe:
    return WriteProbe(VIA, PROBE_LEASE, result, elapsed)  # type: ignore[arg-type]


def _refused(relpath: str) -> Failure:
    reply = Reply.from_capture(relpath)
    answer = Answer("https://127.0.0.1:6443/x", reply.status, "", reply.body.decode(), 0.01)
    return Failure("write to the Lease monitoring/check-k8s-health", VIA, answer)


def test_etcd_out_of_space_is_critical_and_says_what_to_do() -> None:
    verdict = judge_write(_probe(_refused("leaders/lease_probe_patch_nospace.txt")), Policy())
    assert (verdict.state, verdict.words(200), verdict.full) == (Critical, FULL, True)
    assert any("etcdctl alarm disarm" in line for _, line in verdict.lines)


@pytest.mark.parametrize("policy, state, label", [
    (Policy(warning=("write/*",)), Warn, " (WARNING by policy)"),
    (Policy(ignore=("write/monitoring/*",)), Ok, " (ignored by policy)"),
])
def test_policy_globs_name_the_write(policy: Policy, state: object, label: str) -> None:
    verdict = judge_write(_probe(_refused("leaders/lease_probe_patch_nospace.txt")), policy)
    assert (verdict.state, verdict.words(200)) == (state, FULL + label)


@pytest.mark.parametrize("warning, critical, took, state", [
    (None, None, 9.0, Ok), (0.5, None, 0.6, Warn), (0.5, 1.0, 1.5, Critical), (0.5, 1.0, 0.4, Ok),
])
def test_write_time_thresholds(warning: object, critical: object, took: float, state: object) -> None:
    verdict = judge_write(_probe(Written("x"), took), Policy(), warning, critical)  # type: ignore[arg-type]
    assert verdict.state == state
    assert ("is etcd's disk slow?" in verdict.words(200)) == (state != Ok)


def test_a_timeout_is_critical_and_a_forbidden_write_unknown() -> None:
    late = judge_write(_probe(Failure("write to the Lease monitoring/check-k8s-health", VIA,
                                      error=ReadTimedOut("the write did not answer within 8 s")), None), Policy())
    assert late.state == Critical and "did not answer within 8 s" in late.words(200)
    forbidden = judge_write(_probe(_refused("leaders/lease_probe_patch_forbidden_monitor.txt")), Policy())
    assert forbidden.state == Unknown and "check-k8s-health-write-probe" in forbidden.lines[1][1]


def test_the_written_lease_is_read_and_anything_else_is_refused() -> None:
    assert parse_written(Reply.from_capture("leaders/lease_probe_patch_200.txt").body.decode()) == \
        Written("2026-12-06T20:41:44.000000Z")
    with pytest.raises(ValueError, match="not a Lease"):
        parse_written('{"kind": "Status"}')
