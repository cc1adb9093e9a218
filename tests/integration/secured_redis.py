"""A Redis of its own for security tests: a password (``requirepass``), an ACL user without the dangerous
commands (``-@dangerous``), and TLS on a second port."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import redis

from tests.certificates import Pki, make_pki
from tests.integration.support import free_port

DEFAULT_PASSWORD = "default-pw-61d0"
ACL_USER, ACL_PASSWORD = "kpimon", "acl-pw-2e9b"


@dataclass(frozen=True)
class SecuredRedis:
    port: int
    tls_port: int
    pki: Pki

    def urls(self) -> dict[str, str]:
        """KPIMON_REDIS_URL for each way in: the default user's password, the ACL user, the ACL user over TLS."""
        ca = quote(str(self.pki.ca))
        return {
            "requirepass": f"redis://:{DEFAULT_PASSWORD}@127.0.0.1:{self.port}/0",
            "acl_user": f"redis://{ACL_USER}:{ACL_PASSWORD}@127.0.0.1:{self.port}/0",
            "tls": f"rediss://{ACL_USER}:{ACL_PASSWORD}@localhost:{self.tls_port}/0?ssl_ca_certs={ca}",
        }


@contextmanager
def secured_redis(directory: Path, timeout: float = 20.0) -> Iterator[SecuredRedis]:
    pki = make_pki(directory / "pki")
    port, tls_port = free_port(), free_port()
    server = subprocess.Popen(
        ["redis-server", "--bind", "127.0.0.1", "--port", str(port), "--tls-port", str(tls_port),
         "--tls-cert-file", str(pki.server_cert), "--tls-key-file", str(pki.server_key),
         "--tls-ca-cert-file", str(pki.ca), "--tls-auth-clients", "no",
         "--requirepass", DEFAULT_PASSWORD,
         "--user", ACL_USER, "on", f">{ACL_PASSWORD}", "~*", "&*", "+@all", "-@dangerous",
         "--save", "", "--appendonly", "no", "--dir", str(directory), "--logfile", str(directory / "redis.log")],
    )  # fmt: skip
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                redis.Redis(port=port, password=DEFAULT_PASSWORD, socket_timeout=1).ping()
                break
            except redis.RedisError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"redis-server did not start; see {directory}/redis.log") from None
                time.sleep(0.2)
        yield SecuredRedis(port, tls_port, pki)
    finally:
        server.terminate()
        server.wait(timeout=10)
