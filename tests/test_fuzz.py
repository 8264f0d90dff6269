"""Property tests: whatever a server, a file or a command line holds, the pure parts raise nothing but the
plugin's own errors, and what they produce stays printable on one plugin line."""

from __future__ import annotations

import contextlib
import datetime
import io
import re
import ssl
from pathlib import Path

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from check_k8s_health.access.kubeconfig import load, select
from check_k8s_health.base.errors import ConfigError, UsageError
from check_k8s_health.base.text import one_line
from check_k8s_health.checks.endpoints.judge import judge
from check_k8s_health.checks.endpoints.read import Outcome, parse_body
from check_k8s_health.cli import build_parser
from check_k8s_health.model.settings import Credential, Target, TlsSettings
from check_k8s_health.transport.answer import Answer
from check_k8s_health.transport.client import cert_time

FAST = settings(max_examples=300, deadline=None)
TARGET = Target("https://10.0.0.1:6443", "--server", TlsSettings(), Credential())
UNSAFE = re.compile(r"[\x00-\x1f\x7f|]")

lines = st.one_of(
    st.text(max_size=80),
    st.builds(lambda sign, name, tail: f"[{sign}]{name}{tail}", st.sampled_from("+-"), st.text(max_size=40),
              st.sampled_from([" ok", " failed: reason withheld", " excluded: ok", "", " failed"])),
    st.builds(lambda text: f"warn: {text}", st.text(max_size=60)),
    st.sampled_from(["readyz check failed", "healthz check passed", '{"health":"false","reason":"x"}', "{", "ok"]),
)
bodies = st.lists(lines, max_size=40).map("\n".join)


@FAST
@given(bodies)
def test_parse_body_never_raises(text: str) -> None:
    body = parse_body(text)
    assert all(check.name for check in body.checks)


@FAST
@given(st.integers(min_value=100, max_value=599), bodies, st.floats(min_value=0, max_value=100))
def test_judge_always_gives_a_state_and_one_clean_line(status: int, text: str, elapsed: float) -> None:
    answer = Answer("https://10.0.0.1:6443/readyz?verbose", status, "Reason", text, elapsed, location=text[:50],
                    retry_after=text[:5])
    verdict = judge(Outcome.answered("readyz", answer), TARGET)
    assert verdict.state.code in (0, 1, 2, 3)
    assert not UNSAFE.search(verdict.summary)
    assert len(verdict.summary) <= 400
    assert all("\n" not in line for _, line in verdict.lines)


@FAST
@given(st.text(), st.integers(min_value=4, max_value=300))
def test_one_line(text: str, limit: int) -> None:
    clean = one_line(text, limit)
    assert len(clean) <= limit and not UNSAFE.search(clean)


yaml_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=20)),
    lambda children: st.one_of(st.lists(children, max_size=4),
                               st.dictionaries(st.sampled_from(["name", "cluster", "user", "context", "server",
                                                                "token", "tokenFile", "exec", "clusters", "users",
                                                                "contexts", "current-context", "command",
                                                                "certificate-authority-data"]),
                                               children, max_size=5)),
    max_leaves=20,
)


@FAST
@given(yaml_values, st.one_of(st.none(), st.text(max_size=10)))
def test_kubeconfig_loader_raises_only_config_errors(document: object, context: str | None) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "config"
        path.write_text(yaml.safe_dump(document))
        try:
            choice = select(load([str(path)], explicit=True), context or None)
        except ConfigError as exc:
            assert str(exc)
            return
        assert choice.cluster.name and choice.context


@FAST
@given(st.text(max_size=200).filter(lambda text: "\x00" not in text))
def test_kubeconfig_loader_survives_garbage_text(text: str) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "config"
        path.write_text(text, errors="surrogateescape")
        with contextlib.suppress(ConfigError):
            load([str(path)], explicit=True)


options = st.sampled_from(["-s", "-H", "-p", "-e", "-w", "-c", "-t", "-v", "-vv", "--exclude", "--token-file",
                           "--component", "--min-healthy", "--cert-warning", "--warning-check", "--bogus", "--",
                           "-", "--insecure-skip-tls-verify", "--kubeconfig"])


@FAST
@given(st.lists(st.one_of(options, st.text(max_size=12)), max_size=8))
def test_argument_parser_exits_only_the_plugin_way(argv: list[str]) -> None:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        try:
            build_parser().parse_args(argv)
        except UsageError as exc:
            assert str(exc).endswith("(see --help)")
        except SystemExit as exc:
            assert exc.code == 3  # only --help and --version exit, and they exit UNKNOWN


@FAST
@given(st.datetimes(min_value=datetime.datetime(1970, 1, 1), max_value=datetime.datetime(9999, 12, 31)))
def test_certificate_times_read_like_the_ssl_module(moment: datetime.datetime) -> None:
    text = moment.strftime("%b %e %H:%M:%S %Y GMT")  # OpenSSL's notAfter form
    assert cert_time(text) == ssl.cert_time_to_seconds(text)
