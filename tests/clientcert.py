"""Client certificates shaped like the ones kubeadm writes into admin.conf: the user in CN, the groups in O, no
subjectAltName, extended key usage clientAuth.

trustme's ``issue_cert`` always adds a subjectAltName made of its identities, and a client certificate has no
host name to give it: with no identity it builds an empty one, which cryptography 51 refuses
(``general_names must be a non-empty list``). So the leaf is built here with cryptography (trustme's own
dependency) and signed with the trustme CA's key, using only trustme's public PEM accessors.
"""

from __future__ import annotations

import datetime
from typing import NamedTuple, Optional

import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


class ClientCert(NamedTuple):
    cert_pem: bytes
    key_pem: bytes


def issue(ca: trustme.CA, common_name: str, organization: Optional[str] = None) -> ClientCert:
    """A leaf that the API server would read as user ``common_name`` in group ``organization``."""
    ca_key = serialization.load_pem_private_key(ca.private_key_pem.bytes(), password=None)
    if not isinstance(ca_key, (ec.EllipticCurvePrivateKey, rsa.RSAPrivateKey)):
        # trustme makes ECDSA CAs, or RSA ones when asked (KeyType.RSA): nothing else signs certificates here.
        raise TypeError(f"a trustme CA has an ECDSA or RSA key, not {type(ca_key).__name__}")
    ca_cert = x509.load_pem_x509_certificate(ca.cert_pem.bytes())
    key = ec.generate_private_key(ec.SECP256R1())
    subject = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if organization:
        subject.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    now = datetime.datetime.now(datetime.timezone.utc)
    usage = x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                          data_encipherment=False, key_agreement=False, key_cert_sign=False, crl_sign=False,
                          encipher_only=False, decipher_only=False)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name(subject))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(usage, critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return ClientCert(
        cert.public_bytes(serialization.Encoding.PEM),
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                          serialization.NoEncryption()),
    )
