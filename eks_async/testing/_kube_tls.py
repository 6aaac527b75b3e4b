"""A throwaway certificate authority for the emulated clusters' Kubernetes endpoints.

Each emulator makes its own CA (an EC P-256 key, valid for a day) the first time it serves
a Kubernetes endpoint, and a server certificate from it for ``localhost``, ``127.0.0.1``,
``::1`` and the address served on. DescribeCluster hands the CA out as
``certificateAuthority.data`` (base64 of the PEM), as EKS does with each cluster's CA, so
clients verify the endpoint exactly as they would a real one.

``cryptography`` is imported only here, when a CA is first needed; without it the emulator
still serves the EKS API, just no Kubernetes endpoint.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import ssl
import tempfile
from collections.abc import Iterable
from typing import Any

__all__ = ["CertificateAuthority"]

_LIFETIME = datetime.timedelta(days=1)
_SLACK = datetime.timedelta(minutes=5)


def _crypto() -> Any:
    try:
        from cryptography import x509
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "the emulator's Kubernetes endpoints need the 'cryptography' package for their "
            'test CA: pip install "eks-async[emulator]"',
            name=exc.name,
        ) from exc
    return x509


class CertificateAuthority:
    """A CA made on the spot, and server certificates signed by it. Keys never leave it."""

    __slots__ = ("_cert", "_key", "_pem")

    def __init__(self, common_name: str = "eks_async emulator test CA") -> None:
        x509 = _crypto()
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        self._key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
        now = datetime.datetime.now(datetime.UTC)
        public = self._key.public_key()
        self._cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _SLACK)
            .not_valid_after(now + _LIFETIME)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
            .sign(self._key, hashes.SHA256())
        )
        self._pem: bytes = self._cert.public_bytes(serialization.Encoding.PEM)

    def __repr__(self) -> str:
        return f"CertificateAuthority(subject={self._cert.subject.rfc4514_string()!r})"

    @property
    def pem(self) -> bytes:
        """The CA certificate, PEM (what clients trust)."""
        return self._pem

    def server_context(self, hosts: Iterable[str] = ()) -> ssl.SSLContext:
        """A server-side TLS context with a fresh certificate for local names and ``hosts``."""
        x509 = _crypto()
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

        names: list[Any] = [x509.DNSName("localhost")]
        ips = {ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1")}
        for host in hosts:
            host = host.strip("[]")
            if not host:
                continue
            try:
                ips.add(ipaddress.ip_address(host))
            except ValueError:
                if host != "localhost":
                    names.append(x509.DNSName(host))
        names.extend(x509.IPAddress(ip) for ip in sorted(ips, key=str))

        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(
                x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-apiserver")])
            )
            .issuer_name(self._cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _SLACK)
            .not_valid_after(now + _LIFETIME)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=True,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=False,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key()),
                critical=False,
            )
            .sign(self._key, hashes.SHA256())
        )
        cert_pem = cert.public_bytes(serialization.Encoding.PEM)
        key_pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        # ssl loads a certificate chain only from files: write them where only we can read,
        # and remove them at once.
        with tempfile.TemporaryDirectory(prefix="eks-async-tls-") as folder:
            cert_path = os.path.join(folder, "server.pem")
            key_path = os.path.join(folder, "server.key")
            for path, data in ((cert_path, cert_pem), (key_path, key_pem)):
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "wb") as fh:
                    fh.write(data)
            context.load_cert_chain(cert_path, key_path)
        return context
