"""TLS termination: a self-signed certificate made at start (ECDSA P-256, as snit prefers).

The certificate covers localhost, 127.0.0.1, ::1 and ``*.simctl.test``; its PEM is kept
so that clients (tests, the load generator) can trust exactly this router.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import ssl
import tempfile
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

DNS_NAMES = ("localhost", "simctl.test", "*.simctl.test")
IP_ADDRESSES = ("127.0.0.1", "::1")


@dataclass(frozen=True)
class Certificate:
    cert_pem: bytes
    key_pem: bytes


def self_signed(common_name: str = "simctl router", days: int = 30) -> Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.UTC)
    alt: list[x509.GeneralName] = [x509.DNSName(n) for n in DNS_NAMES]
    alt += [x509.IPAddress(ipaddress.ip_address(a)) for a in IP_ADDRESSES]
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName(alt), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return Certificate(
        cert.public_bytes(serialization.Encoding.PEM),
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                          serialization.NoEncryption()),
    )


def server_context(certificate: Certificate) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_alpn_protocols(["http/1.1"])
    ctx.set_ecdh_curve("prime256v1")
    # load_cert_chain reads files only: write them where only we can read, then remove them
    with tempfile.TemporaryDirectory(prefix="simctl-tls-") as folder:
        cert_path = os.path.join(folder, "cert.pem")
        key_path = os.path.join(folder, "key.pem")
        with open(cert_path, "wb") as f:
            f.write(certificate.cert_pem)
        fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(certificate.key_pem)
        ctx.load_cert_chain(cert_path, key_path)
    return ctx


def client_context(certificate: Certificate) -> ssl.SSLContext:
    """A client context that trusts exactly this certificate."""
    ctx = ssl.create_default_context(cadata=certificate.cert_pem.decode())
    return ctx
