"""Before a worker starts: does the cluster accept its credentials?

aiokafka's clients report a refused SASL login or a failed TLS handshake only as "Unable to
bootstrap", and Faust retries that forever, so a worker with a wrong password would loop.
:func:`check_credentials` opens one connection to each bootstrap server the way every client of
the worker will (:meth:`streams.kafka.kafka_security.KafkaSecurity.client_options`), through the
connection opener it is handed (:data:`BrokerConnect`; the worker's is
:func:`agents.faust_compat.open_broker_connection`), and tells a refusal
apart from an unreachable server: it raises :class:`CredentialsRefused` when no server accepted
the connection and at least one refused the credentials or the TLS handshake; a server that
does not answer at all is left to the worker's own handling of an unreachable cluster
(``broker_timeout``). The worker exits with :data:`EXIT_CREDENTIALS_REFUSED`.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import aiokafka.errors as Errors

from streams.kafka.kafka_security import KafkaSecurity

#: the exit code of a worker whose credentials or certificates the cluster refused
EXIT_CREDENTIALS_REFUSED = 4
CHECK_TIMEOUT_S = 10.0

#: opens a connection to one broker (host, port, request timeout in ms, aiokafka's client
#: security options), its TLS handshake and SASL login done; the connection has ``close()``
BrokerConnect = Callable[[str, int, int, Mapping[str, Any]], Awaitable[Any]]
DEFAULT_PORT = 9092

#: what a refused login or TLS handshake raises (anything else: the server is not reachable)
REFUSALS: tuple[type[BaseException], ...] = (
    Errors.SaslAuthenticationFailed,
    Errors.UnsupportedSaslMechanismError,
    Errors.IllegalSaslStateError,
    ssl.SSLError,
)


class CredentialsRefused(RuntimeError):
    """The cluster refused the worker's credentials or TLS handshake; the message is one line
    naming the server, the protocol, the mechanism and user, and the cluster's answer (never
    the password)."""


def bootstrap_hosts(bootstrap: str) -> list[tuple[str, int]]:
    """``host:port`` pairs of a comma-separated bootstrap list (port 9092 when absent;
    ``[v6]:port`` for IPv6 addresses)."""
    hosts = []
    for item in bootstrap.split(","):
        item = item.strip()
        if not item:
            continue
        host, sep, port = item.rpartition(":")
        if not sep or host.endswith(":"):  # no port, or a bare IPv6 address
            host, port = item, str(DEFAULT_PORT)
        hosts.append((host.strip("[]"), int(port)))
    return hosts


def refusal_in(exc: BaseException) -> BaseException | None:
    """The refusal (:data:`REFUSALS`) that ``exc`` is or was caused by, else ``None``: a broker
    that rejects a client certificate under TLS 1.3 says so in an alert the client reads only
    after the handshake, so aiokafka reports a closed connection caused by the TLS error."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, REFUSALS):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    name = type(exc).__name__
    return (text if name in text else f"{name}: {text}" if text else name)[:300]


async def check_credentials(
    bootstrap: str, security: KafkaSecurity, connect: BrokerConnect, timeout_s: float = CHECK_TIMEOUT_S
) -> None:
    """Return when a bootstrap server accepted a connection (TLS handshake and SASL login
    included), or when none answered for another reason; raise :class:`CredentialsRefused`
    when none accepted and one refused. Raises
    :class:`streams.kafka.kafka_security.KafkaSecurityError` for settings that do not fit together."""
    options = security.client_options()
    refusal: tuple[str, BaseException] | None = None
    for host, port in bootstrap_hosts(bootstrap):
        try:
            conn = await asyncio.wait_for(connect(host, port, int(timeout_s * 1000), options), timeout_s)
        except (TimeoutError, OSError, Errors.KafkaError) as exc:
            refused = refusal_in(exc)
            if refused is not None and refusal is None:
                refusal = (f"{host}:{port}", refused)
            continue
        conn.close()
        return
    if refusal is not None:
        server, answer = refusal
        who = (
            f"{security.sasl_mechanism} user {security.sasl_username!r} over {security.protocol}"
            if security.uses_sasl
            else security.protocol
        )
        raise CredentialsRefused(f"the Kafka broker {server} refused {who}: {_one_line(answer)}")
