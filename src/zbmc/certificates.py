"""TLS for ``zbmc serve``: checking a certificate and key given by the operator, and the
development mode's local certificate authority.

Clients that accept only HTTPS (the vendor's ``zeno`` CLI) need a certificate they trust. The
development mode (``zbmc serve --tls-dev``) keeps a private CA under ``DATA_DIR/tls/`` and
issues from it a certificate for the listen address; trusting ``ca.pem`` once (``SSL_CERT_FILE``
or the SDK's ``Config(certification=...)``) then covers every certificate it issues later.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import socket
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_DAYS = 3650
# Apple's and browsers' limit for a leaf certificate is 398 days.
LEAF_DAYS = 397
# A leaf this close to its end is issued anew at the next start.
RENEW_BEFORE = datetime.timedelta(days=30)


class CertificateError(ValueError):
    pass


@dataclass(frozen=True)
class DevCertificates:
    ca: Path  # what clients trust
    cert: Path
    key: Path
    issued: bool  # a new leaf certificate was written at this start


def check_pair(cert: Path, key: Path) -> None:
    """Fail with a readable message unless ``cert`` and ``key`` make a usable server identity."""
    for path in (cert, key):
        if not path.is_file():
            raise CertificateError(f"TLS file {path} does not exist")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(str(cert), str(key))
    except (ssl.SSLError, OSError) as exc:
        raise CertificateError(
            f"TLS certificate {cert} and key {key} cannot be used together: {exc}"
        ) from None


def names_for(host: str) -> tuple[list[str], list[str]]:
    """(DNS names, IP addresses) a certificate for the listen address ``host`` covers: the
    address itself, loopback under both names, and this machine's name when listening on
    every interface."""
    dns = ["localhost"]
    ips = ["127.0.0.1", "::1"]
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        dns.append(host)
    else:
        if address.is_unspecified:
            dns.append(socket.gethostname())
        else:
            ips.append(str(address))
    return sorted(set(dns)), sorted(set(ips))


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _write_private(path: Path, data: bytes) -> None:
    path.write_bytes(b"")
    path.chmod(0o600)
    path.write_bytes(data)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _load_key(path: Path) -> ec.EllipticCurvePrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise CertificateError(f"{path} is not the EC key zbmc writes")
    return key


def _new_ca(directory: Path) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "zbmc development"),
            x509.NameAttribute(
                NameOID.COMMON_NAME, f"zbmc development CA ({socket.gethostname()})"
            ),
        ]
    )
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=CA_DAYS))
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
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    _write_private(directory / "ca-key.pem", _key_pem(key))
    (directory / "ca.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert, key


def _leaf_covers(path: Path, ca: x509.Certificate, dns: list[str], ips: list[str]) -> bool:
    try:
        cert = x509.load_pem_x509_certificate(path.read_bytes())
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (OSError, ValueError, x509.ExtensionNotFound):
        return False
    return (
        cert.issuer == ca.subject
        and cert.not_valid_after_utc - RENEW_BEFORE > _now()
        and set(dns) <= set(names.get_values_for_type(x509.DNSName))
        and {ipaddress.ip_address(ip) for ip in ips}
        <= set(names.get_values_for_type(x509.IPAddress))
    )


def ensure_dev_certificates(directory: Path, host: str) -> DevCertificates:
    """The development CA (created once) and a certificate from it for ``host`` (issued again
    when missing, about to expire, or not covering ``host``)."""
    directory.mkdir(parents=True, exist_ok=True)
    ca_path, ca_key_path = directory / "ca.pem", directory / "ca-key.pem"
    if ca_path.is_file() and ca_key_path.is_file():
        ca = x509.load_pem_x509_certificate(ca_path.read_bytes())
        ca_key = _load_key(ca_key_path)
    else:
        ca, ca_key = _new_ca(directory)
    cert_path, key_path = directory / "server.pem", directory / "server-key.pem"
    dns, ips = names_for(host)
    if key_path.is_file() and _leaf_covers(cert_path, ca, dns, ips):
        return DevCertificates(ca_path, cert_path, key_path, issued=False)
    key = ec.generate_private_key(ec.SECP256R1())
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=LEAF_DAYS))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName(name) for name in dns]
                + [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    _write_private(key_path, _key_pem(key))
    # The chain (leaf, then CA) so that clients given only the CA's name can still build it.
    cert_path.write_bytes(
        cert.public_bytes(serialization.Encoding.PEM) + ca.public_bytes(serialization.Encoding.PEM)
    )
    return DevCertificates(ca_path, cert_path, key_path, issued=True)


def trust_hint(ca: Path, host: str, port: int) -> str:
    """What to tell a user so that their clients trust the development CA."""
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    location = f"{shown}:{port}"
    return (
        f"TLS (development CA): https://{location}/\n"
        f"  trust it for one command:  SSL_CERT_FILE={ca} REQUESTS_CA_BUNDLE={ca} <command>\n"
        f'  Python SDK:                Config(scheme="https", domain="{location}", '
        f'certification="{ca}")\n'
        f"  curl:                      curl --cacert {ca} https://{location}/healthz\n"
    )


def default_directory(data_dir: Path) -> Path:
    return Path(os.path.abspath(data_dir)) / "tls"
