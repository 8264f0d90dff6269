"""What a TLS failure means to an operator: words, no requests types, so the client's error mapping stays short and
these tables can be read (and tested) alone. Imported only when a request failed.
"""

from __future__ import annotations

import re

from check_k8s_health.base.errors import TlsFailed
from check_k8s_health.base.text import one_line

#: kubeadm, k3s and RKE2 serving certificates all hold the name "kubernetes", whatever addresses they hold.
_NAMELESS = ("the server certificate does not name {host}: give --tls-server-name kubernetes (or another name it "
             "holds)")
_TLS_HINTS = (
    ("certificate has expired", "the server certificate has expired: renew it (kubeadm certs renew)"),
    ("not yet valid", "the server certificate is not valid yet: check the clocks of both machines"),
    ("Hostname mismatch", _NAMELESS),
    ("IP address mismatch", _NAMELESS),
    ("self-signed certificate", "the server certificate is not trusted: pass the cluster CA with "
                                "--certificate-authority (kubeadm: /etc/kubernetes/pki/ca.crt)"),
    ("self signed certificate", "the server certificate is not trusted: pass the cluster CA with "
                                "--certificate-authority (kubeadm: /etc/kubernetes/pki/ca.crt)"),
    ("unable to get local issuer", "the server certificate is not trusted: pass the cluster CA with "
                                   "--certificate-authority (kubeadm: /etc/kubernetes/pki/ca.crt)"),
    ("WRONG_VERSION_NUMBER", "{host} does not speak TLS on this port: check the port, or use http://"),
    ("wrong version number", "{host} does not speak TLS on this port: check the port, or use http://"),
    ("certificate required", "{host} demands a client certificate: give --client-certificate and --client-key"),
    ("handshake failure", "{host} refused the TLS handshake (client certificate required?)"),
    ("EOF occurred in violation of protocol", "{host} closed the TLS connection unexpectedly (if it requires a "
                                              "client certificate, give --client-certificate)"),
    ("unknown ca", "{host} does not trust the client certificate: use one signed by the cluster CA"),
)


#: Compiled on first use (re caches it): only a certificate that does not match its name needs it.
_MISMATCH = r"hostname '(?P<name>[^']*)' doesn't match (?:either of )?(?P<names>.+)"


def tls_error(text: str, host: str, innermost: str) -> TlsFailed:
    # urllib3 1.26.5 (RHEL 9's) checks names itself and its error arrives as an argument tuple's repr:
    # ("hostname 'kubernetes' doesn't match '127.0.0.1'",)
    mismatch = re.search(_MISMATCH, innermost.removesuffix('",)'))
    if mismatch:
        return TlsFailed(f"TLS error: the server certificate is valid for {one_line(mismatch['names'], 80)}, "
                         f"not {mismatch['name']}: give --tls-server-name with one of those names")
    for marker, hint in _TLS_HINTS:
        if marker in text:
            return TlsFailed("TLS error: " + hint.format(host=host))
    return TlsFailed(f"TLS error with {host}: {reason(innermost)}")


def reason(text: str) -> str:
    """The most specific part of a nested exception text, cut to fit a status line."""
    tail = text.rsplit("] ", maxsplit=1)[-1]
    return one_line(tail, 120)
