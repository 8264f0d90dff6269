"""The body parser over every captured answer of a real kube-apiserver, and over shapes it has not sent yet."""

from __future__ import annotations

import pytest
from fakeapi import HTTP_CAPTURES, load_capture

from check_k8s_health.checks.endpoints.read import SubCheck, parse_body

ALL_CAPTURES = list(HTTP_CAPTURES)

#: capture -> (number of sub-checks listed, names of the failed ones, number of warn: lines)
EXPECTED = {
    "healthy/readyz_verbose_none.txt": (33, [], 0),
    "healthy/livez_verbose_none.txt": (30, [], 0),
    "healthy/healthz_verbose_none.txt": (30, [], 0),
    "healthy/readyz_verbose_exclude_etcd_monitor.txt": (33, [], 0),
    "healthy/readyz_exclude_nonexistent_verbose_monitor.txt": (33, [], 1),
    "etcd-down/readyz_verbose.txt": (33, ["etcd", "etcd-readiness"], 0),
    "etcd-down/readyz_plain.txt": (33, ["etcd", "etcd-readiness"], 0),
    "etcd-down/livez_verbose.txt": (30, ["etcd"], 0),
    "etcd-down/readyz_verbose_exclude_etcd_and_etcd-readiness.txt": (33, [], 0),
    "shutdown/readyz_verbose_during_shutdown_delay.txt": (33, ["shutdown"], 0),
    "shutdown/livez_verbose_during_shutdown_delay.txt": (30, [], 0),
    "v1.32/readyz_verbose.txt": (33, [], 0),
    "v1.32/livez_verbose.txt": (30, [], 0),
    "v1.32/readyz_verbose_etcd_down.txt": (33, ["etcd", "etcd-readiness"], 0),
    "members/readyz_verbose_member3_cut_from_etcd.txt": (33, ["etcd", "etcd-readiness"], 0),
    "members/readyz_verbose_member1_while_member3_cut.txt": (33, [], 0),
    # Both outages of what /readyz cannot see: every sub-check passed.
    "blind/readyz_verbose_while_apiservices_unavailable.txt": (33, [], 0),
    "blind/readyz_verbose_while_webhooks_unserved.txt": (33, [], 0),
    # The control plane's loops and etcd's writes: every sub-check passed with the scheduler stopped, with etcd out
    # of space (every write refused), and after its defragmentation with the alarm still armed.
    "leaders/readyz_verbose_healthy.txt": (33, [], 0),
    "leaders/readyz_verbose_scheduler_stopped.txt": (33, [], 0),
    "leaders/readyz_verbose_nospace.txt": (33, [], 0),
    "leaders/livez_verbose_nospace.txt": (30, [], 0),
    "leaders/readyz_verbose_nospace_after_defrag.txt": (33, [], 0),
}


def test_every_capture_is_covered() -> None:
    assert len(ALL_CAPTURES) == 86
    listed = [name for name in ALL_CAPTURES if parse_body(load_capture(name).body.decode()).checks]
    assert sorted(listed) == sorted(EXPECTED)


@pytest.mark.parametrize("name", ALL_CAPTURES)
def test_capture(name: str) -> None:
    capture = load_capture(name)
    body = parse_body(capture.body.decode())
    count, failed, warnings = EXPECTED.get(name, (0, [], 0))
    assert len(body.checks) == count
    assert [check.name for check in body.failed] == failed
    assert len(body.warnings) == warnings
    # The status decides, the body agrees: a 500 list always names a failure, a 200 list never does.
    if body.checks:
        assert bool(body.failed) == (capture.status == 500)
    else:
        assert body.plain is not None and body.plain == capture.body.decode().splitlines()[0].strip()


def test_excluded_and_names_with_slashes() -> None:
    body = parse_body(load_capture("etcd-down/readyz_verbose_exclude_etcd_and_etcd-readiness.txt").body.decode())
    assert [check.name for check in body.excluded] == ["etcd", "etcd-readiness"]
    assert SubCheck("poststarthook/rbac/bootstrap-roles", True, "ok") in body.checks


def test_warn_line_text() -> None:
    body = parse_body(load_capture("healthy/readyz_exclude_nonexistent_verbose_monitor.txt").body.decode())
    assert body.warnings == ('some health checks cannot be excluded: no matches for "nonexistent"',)


@pytest.mark.parametrize(("text", "checks"), [
    ("", []),
    ("ok", []),
    ("[+]ping ok\nhealthz check passed\n", [SubCheck("ping", True, "ok")]),  # before 1.20 every trailer said healthz
    ("[+]etcd excluded with etcd: ok\n", [SubCheck("etcd", True, "excluded with etcd: ok")]),  # 1.34 groups
    ("[-]etcd failed\n", [SubCheck("etcd", False, "failed")]),
    ("[-]etcd failed: error getting data from etcd: context deadline exceeded\n",
     [SubCheck("etcd", False, "failed: error getting data from etcd: context deadline exceeded")]),
    ("[+]ping ok\r\n[-]log failed: reason withheld\r\n", [SubCheck("ping", True, "ok"),
                                                      SubCheck("log", False, "failed: reason withheld")]),
    ("[-]weird-shape\n", [SubCheck("weird-shape", False, "failed")]),
    ("[+]odd unknown words\n", [SubCheck("odd", True, "unknown words")]),
    ("garbage\n[+]ping ok\n\x00\xff\n", [SubCheck("ping", True, "ok")]),
])
def test_edge_cases(text: str, checks: list[SubCheck]) -> None:
    assert list(parse_body(text).checks) == checks


def test_a_proxy_page_is_kept_as_plain_text() -> None:
    body = parse_body("<html>\n<body>502 Bad Gateway</body>\n</html>\n")
    assert body.checks == () and body.plain == "<html>"


def test_thousands_of_lines() -> None:
    text = "".join(f"[+]check-{n} ok\n" for n in range(5000)) + "[-]last failed: reason withheld\nreadyz check failed\n"
    body = parse_body(text)
    assert len(body.checks) == 5001 and [check.name for check in body.failed] == ["last"]
