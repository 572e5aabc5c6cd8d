"""A certificate authority made for one run, and the certificates the mock serves with it.

Clients that insist on HTTPS (openid-client v6) trust the CA through ``{ca_file}``.
Certificates stay valid for years, far beyond any time travel, since a target
whose clock is moved checks them against that clock.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import threading
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from rfcheck import leftovers

VALIDITY = dt.timedelta(days=3650)
BACKDATE = dt.timedelta(days=2)
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "rfcheck"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _san(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


@dataclass(frozen=True)
class CertificatePaths:
    cert_file: str
    key_file: str


class RunCA:
    """A CA whose key lives only in memory and a temporary folder for this run."""

    def __init__(self, folder: Path | None = None) -> None:
        self.folder = folder or Path(leftovers.folder("ca"))
        self._key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.timezone.utc)
        self._cert = (
            x509.CertificateBuilder().subject_name(_name("rfcheck run CA")).issuer_name(_name("rfcheck run CA"))
            .public_key(self._key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - BACKDATE).not_valid_after(now + VALIDITY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False,
                                         encipher_only=False, decipher_only=False), critical=True)
            .sign(self._key, hashes.SHA256()))
        self.ca_file = str(self.folder / "ca.pem")
        Path(self.ca_file).write_bytes(self._cert.public_bytes(serialization.Encoding.PEM))
        self._issued: dict[tuple[tuple[str, ...], str], CertificatePaths] = {}
        self._lock = threading.Lock()

    def issue(self, hosts: tuple[str, ...], label: str) -> CertificatePaths:
        """A server certificate for ``hosts``, written as ``<label>.pem`` and ``<label>-key.pem`` (once: the
        servers of every lane share it)."""
        with self._lock:
            if (hosts, label) not in self._issued:
                self._issued[(hosts, label)] = self._issue(hosts, label)
            return self._issued[(hosts, label)]

    def _issue(self, hosts: tuple[str, ...], label: str) -> CertificatePaths:
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.timezone.utc)
        cert = (
            x509.CertificateBuilder().subject_name(_name(hosts[0])).issuer_name(self._cert.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - BACKDATE).not_valid_after(now + VALIDITY)
            .add_extension(x509.SubjectAlternativeName([_san(h) for h in hosts]), critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(self._key, hashes.SHA256()))
        paths = CertificatePaths(str(self.folder / f"{label}.pem"), str(self.folder / f"{label}-key.pem"))
        Path(paths.cert_file).write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        Path(paths.key_file).write_bytes(_pem_key(key))
        return paths
