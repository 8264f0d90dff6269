"""The client certificates the fake servers issue: accepted by a TLS server that requires one, read back as the
user and group the API server would take from them, and built the same with an older cryptography as with the
pinned one (the release that made trustme's empty subjectAltName an error must not be the only one they work on).
"""

from __future__ import annotations

import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

import clientcert
import pins
import trustme
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

HERE = Path(__file__).resolve().parent
#: Debian 12's python3-cryptography, and an older trustme than the pinned one: what the builder met before
#: cryptography 51.
OLDER = {"cryptography": "38.0.4", "trustme": "1.0.0"}


def _write(folder: Path, leaf: clientcert.ClientCert) -> tuple[str, str]:
    cert, key = folder / "client.crt", folder / "client.key"
    cert.write_bytes(leaf.cert_pem)
    key.write_bytes(leaf.key_pem)
    return str(cert), str(key)


def _handshake(ca: trustme.CA, client: tuple[str, str]) -> dict[str, Any]:
    """What a server that requires a client certificate signed by ``ca`` sees of the one presented."""
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_context)
    ca.configure_trust(server_context)
    server_context.verify_mode = ssl.CERT_REQUIRED
    client_context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    ca.configure_trust(client_context)
    client_context.load_cert_chain(*client)
    seen: dict[str, Any] = {}
    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.settimeout(10)

        def serve() -> None:
            conn, _ = listener.accept()
            try:
                with server_context.wrap_socket(conn, server_side=True) as tls:
                    seen["peer"] = tls.getpeercert()
                    tls.sendall(b"ok")
            except (ssl.SSLError, OSError) as error:
                seen["error"] = error

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        with socket.create_connection(listener.getsockname(), timeout=10) as raw, \
                client_context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            # TLS 1.3 sends the client certificate after the client's handshake ends: the server's verdict
            # arrives with the first read.
            try:
                tls.recv(2)
            except (ssl.SSLError, OSError) as error:
                seen["client_error"] = error
        thread.join(10)
    return seen


def _subject(peer: dict[str, Any]) -> dict[str, str]:
    return {name: value for rdn in peer["subject"] for name, value in rdn}


def test_server_requiring_a_client_certificate_reads_user_and_group(tmp_path: Path) -> None:
    ca = trustme.CA()
    seen = _handshake(ca, _write(tmp_path, clientcert.issue(ca, "check-k8s-health", "system:monitoring")))
    assert "error" not in seen, seen
    assert _subject(seen["peer"]) == {"commonName": "check-k8s-health", "organizationName": "system:monitoring"}
    assert "subjectAltName" not in seen["peer"]


def test_server_refuses_a_certificate_from_another_ca(tmp_path: Path) -> None:
    seen = _handshake(trustme.CA(), _write(tmp_path, clientcert.issue(trustme.CA(), "intruder", "system:masters")))
    assert "peer" not in seen
    assert isinstance(seen.get("error"), ssl.SSLError), seen


def test_a_user_without_group(tmp_path: Path) -> None:
    ca = trustme.CA(key_type=trustme.KeyType.RSA)
    seen = _handshake(ca, _write(tmp_path, clientcert.issue(ca, "nagios")))
    assert _subject(seen["peer"]) == {"commonName": "nagios"}


def test_shaped_like_kubeadm_client_certificates() -> None:
    ca = trustme.CA()
    cert = x509.load_pem_x509_certificate(clientcert.issue(ca, "nagios", "system:monitoring").cert_pem)
    issuer = x509.load_pem_x509_certificate(ca.cert_pem.bytes())
    cert.verify_directly_issued_by(issuer)
    kinds = {extension.oid for extension in cert.extensions}
    assert x509.SubjectAlternativeName.oid not in kinds
    assert list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == [
        ExtendedKeyUsageOID.CLIENT_AUTH]
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False


def _older_venv(folder: Path) -> Path:
    python = folder / "venv" / "bin" / "python"
    subprocess.run([sys.executable, "-m", "venv", str(folder / "venv")], check=True, capture_output=True,
                   timeout=120)
    constraints = folder / "constraints.txt"
    constraints.write_text(pins.constraints_text(replace=OLDER))
    env = {**os.environ, **pins.pip_environment(constraints)}
    install = subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--only-binary", ":all:",
         *(f"{name}=={version}" for name, version in OLDER.items()), "pytest"],
        capture_output=True, text=True, env=env, timeout=600, check=False)
    assert install.returncode == 0, install.stdout + install.stderr
    return python


def test_the_same_with_an_older_cryptography() -> None:
    """This module once more, in a venv where only cryptography and trustme are older than the pins."""
    folder = Path(tempfile.mkdtemp(prefix="check_k8s_health-older-cryptography-"))
    try:
        python = _older_venv(folder)
        versions = subprocess.run(
            [str(python), "-c", "import cryptography, importlib.metadata as m; "
                                "print(cryptography.__version__, m.version('trustme'))"],
            capture_output=True, text=True, check=True, timeout=60).stdout.split()
        assert versions == [OLDER["cryptography"], OLDER["trustme"]]
        # Only the tests that build and present certificates; the structural one uses an API newer than 38.
        run = subprocess.run(
            [str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider", "--noconftest", "-o", "addopts=",
             str(Path(__file__)), "-k", "server or group"],
            capture_output=True, text=True, cwd=HERE, timeout=300, check=False)
        assert run.returncode == 0, run.stdout + run.stderr
        assert "3 passed" in run.stdout, run.stdout
    finally:
        shutil.rmtree(folder, ignore_errors=True)
