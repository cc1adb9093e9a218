"""Certificates made at test time with openssl: a CA, a server certificate for 127.0.0.1/localhost, a client one."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Pki:
    ca: Path  # the CA certificate (PEM)
    ca_key: Path
    server_cert: Path  # for 127.0.0.1 and localhost, signed by the CA
    server_key: Path
    client_cert: Path  # CN=kpimon-client, signed by the CA
    client_key: Path
    other_ca: Path  # a CA that signed nothing here: trusting it alone must fail


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def _signed(directory: Path, name: str, subject: str, extensions: str) -> tuple[Path, Path]:
    key, request, cert, ext = (directory / f"{name}.{suffix}" for suffix in ("key", "csr", "pem", "ext"))
    ext.write_text(extensions, encoding="ascii")
    _openssl(
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        str(key),
        "-out",
        str(request),
        "-subj",
        subject,
        cwd=directory,
    )
    _openssl(
        "x509", "-req", "-in", str(request), "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
        "-out", str(cert), "-days", "2", "-sha256", "-extfile", str(ext), cwd=directory,
    )  # fmt: skip
    return cert, key


def _ca(directory: Path, name: str) -> tuple[Path, Path]:
    key, cert = directory / f"{name}.key", directory / f"{name}.pem"
    _openssl(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
        "-days", "2", "-subj", f"/CN={name}", "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=directory,
    )  # fmt: skip
    return cert, key


def make_pki(directory: Path) -> Pki:
    directory.mkdir(parents=True, exist_ok=True)
    ca, ca_key = _ca(directory, "ca")
    other_ca, _ = _ca(directory, "other-ca")
    server_cert, server_key = _signed(
        directory,
        "server",
        "/CN=localhost",
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
    )
    client_cert, client_key = _signed(directory, "client", "/CN=kpimon-client", "extendedKeyUsage=clientAuth\n")
    return Pki(ca, ca_key, server_cert, server_key, client_cert, client_key, other_ca)
