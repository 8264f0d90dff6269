"""Texts that differ between the Python and library versions the plugin runs on (Debian 12 and 13, RHEL 9, PyPI)
and must not change what it prints. The end-to-end tests meet each on its real install (the "debian13" and
"rhel9" cases); these pin the translation where no such install can be made.
"""

from __future__ import annotations

import pytest

from check_k8s_health.command import parser as cli
from check_k8s_health.transport import tls

#: What a certificate without the asked name gives, by urllib3 version.
MISMATCH = {
    "urllib3 1.26.5 (RHEL 9), an argument tuple's repr": "(\"hostname 'kubernetes' doesn't match '127.0.0.1'\",)",
    "urllib3 1.26.12 (Debian 12)": "hostname 'kubernetes' doesn't match '127.0.0.1'",
}


@pytest.mark.parametrize("message", [
    "argument -e/--endpoint: invalid choice: 'nope' (choose from 'livez', 'readyz', 'healthz', 'health')",
    "argument -e/--endpoint: invalid choice: 'nope' (choose from livez, readyz, healthz, health)",
], ids=["python-3.9-to-3.12.7", "python-3.12.8-and-3.13"])
def test_the_choose_from_list_reads_the_same_on_every_python(message: str) -> None:
    assert cli._same_on_every_python(message) == ("argument -e/--endpoint: invalid choice: 'nope' "
                                                  "(choose from 'livez', 'readyz', 'healthz', 'health')")


def test_other_usage_errors_pass_unchanged() -> None:
    for message in ("the following arguments are required: -s", "unrecognized arguments: (choose from x"):
        assert cli._same_on_every_python(message) == message


@pytest.mark.parametrize("innermost", list(MISMATCH.values()), ids=list(MISMATCH))
def test_a_name_mismatch_names_the_certificates_names_on_every_urllib3(innermost: str) -> None:
    failed = tls.tls_error(f"SSLError({innermost})", "127.0.0.1:6443", innermost)
    assert str(failed) == ("TLS error: the server certificate is valid for '127.0.0.1', not kubernetes: give "
                           "--tls-server-name with one of those names")
