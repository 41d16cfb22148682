"""How continust's Kafka clients authenticate to the cluster: TLS (a CA bundle, a client
certificate and key) and SASL (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512).

:class:`KafkaSecurity` holds the settings; every Kafka client continust creates (the Faust app's
consumers and producers through :func:`agents.application.broker_credentials`, the admin
client of :mod:`streams.kafka.topic_admin`, the ingest producer, the subscription reader, the broker
probe, the event generator and the bench) takes its connection keyword arguments from
:meth:`KafkaSecurity.client_options`, so they all connect the same way.

Sources, later ones winning per setting: the environment (:meth:`KafkaSecurity.from_env`:
``KAFKA_SECURITY_PROTOCOL``, ``KAFKA_SSL_CAFILE``, ``KAFKA_SSL_CERTFILE``, ``KAFKA_SSL_KEYFILE``,
``KAFKA_SASL_MECHANISM``, ``KAFKA_SASL_USERNAME``, ``KAFKA_SASL_PASSWORD`` or
``KAFKA_SASL_PASSWORD_FILE``), then the pipeline file's ``[kafka]`` table
(:meth:`KafkaSecurity.merged`).

The password is a secret: the ``repr`` shows ``<hidden>`` in its place, and nothing here logs
it. Settings that do not fit together (SASL settings without a SASL protocol, a certificate
without its key, a SASL protocol without a username) raise :class:`KafkaSecurityError` from
:meth:`KafkaSecurity.check` (and so from :meth:`client_options`), with one line that names the
setting and what is allowed.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from streams.plan.pipeline import KAFKA_PROTOCOLS as PROTOCOLS
from streams.plan.pipeline import SASL_MECHANISMS as MECHANISMS

#: each setting and the environment variable it is read from
ENVIRONMENT = {
    "protocol": "KAFKA_SECURITY_PROTOCOL",
    "ssl_cafile": "KAFKA_SSL_CAFILE",
    "ssl_certfile": "KAFKA_SSL_CERTFILE",
    "ssl_keyfile": "KAFKA_SSL_KEYFILE",
    "sasl_mechanism": "KAFKA_SASL_MECHANISM",
    "sasl_username": "KAFKA_SASL_USERNAME",
    "sasl_password": "KAFKA_SASL_PASSWORD",
}
HIDDEN = "<hidden>"


class KafkaSecurityError(ValueError):
    """The Kafka security settings are incomplete, contradictory or name unreadable files."""


def read_secret(path: Path) -> str:
    """A secret kept in a file (a mounted Kubernetes secret, say): its text without the final
    line break. Raises :class:`KafkaSecurityError` when the file cannot be read or is empty."""
    try:
        text = path.read_text().rstrip("\r\n")
    except OSError as exc:
        raise KafkaSecurityError(f"cannot read the SASL password file {path}: {exc.strerror}") from None
    if not text:
        raise KafkaSecurityError(f"the SASL password file {path} is empty")
    return text


@dataclass(frozen=True, repr=False)
class KafkaSecurity:
    """The security settings of every Kafka client of a worker (the default: ``PLAINTEXT``,
    no TLS and no SASL). Paths are PEM files, as given (relative ones to the working
    directory)."""

    protocol: str = "PLAINTEXT"
    #: CA bundle the broker certificates are verified with; unset: the system's trust store
    ssl_cafile: Path | None = None
    #: client certificate (chain) and its private key, for brokers that authenticate clients by TLS
    ssl_certfile: Path | None = None
    ssl_keyfile: Path | None = None
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: str | None = None

    def __repr__(self) -> str:
        shown = []
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None:
                continue
            shown.append(f"{f.name}={HIDDEN if f.name == 'sasl_password' else repr(value)}")
        return f"KafkaSecurity({', '.join(shown)})"

    __str__ = __repr__

    @property
    def uses_tls(self) -> bool:
        return self.protocol in ("SSL", "SASL_SSL")

    @property
    def uses_sasl(self) -> bool:
        return self.protocol in ("SASL_PLAINTEXT", "SASL_SSL")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> KafkaSecurity:
        """The settings the environment gives (not checked yet: the pipeline file may complete
        them). ``KAFKA_SASL_PASSWORD_FILE`` names a file holding the password; raises
        :class:`KafkaSecurityError` when it cannot be read."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for name, variable in ENVIRONMENT.items():
            text = env.get(variable, "").strip() if name != "sasl_password" else env.get(variable, "")
            if text:
                values[name] = Path(text) if name.startswith("ssl_") else text
        password_file = env.get("KAFKA_SASL_PASSWORD_FILE", "").strip()
        if password_file and "sasl_password" not in values:
            values["sasl_password"] = read_secret(Path(password_file))
        if "protocol" in values:
            values["protocol"] = values["protocol"].upper()
        return replace(cls(), **values)

    def merged(self, overrides: Mapping[str, Any]) -> KafkaSecurity:
        """These settings with every non-``None`` value of ``overrides`` (keys: field names)
        in place of its own."""
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})

    def check(self) -> KafkaSecurity:
        """Return ``self`` when the settings fit together; raise :class:`KafkaSecurityError`
        naming the first problem otherwise."""
        if self.protocol not in PROTOCOLS:
            raise KafkaSecurityError(
                f"security_protocol {self.protocol!r} is not supported; allowed: {', '.join(PROTOCOLS)}"
            )
        sasl_given = [
            name
            for name in ("sasl_mechanism", "sasl_username", "sasl_password")
            if getattr(self, name) is not None
        ]
        if self.uses_sasl:
            if self.sasl_mechanism not in MECHANISMS:
                raise KafkaSecurityError(
                    f"sasl_mechanism {self.sasl_mechanism!r} is not supported with {self.protocol}; "
                    f"allowed: {', '.join(MECHANISMS)}"
                )
            if not self.sasl_username:
                raise KafkaSecurityError(f"{self.protocol} needs sasl_username")
            if not self.sasl_password:
                raise KafkaSecurityError(
                    f"{self.protocol} needs a password: sasl_password_file in [kafka], "
                    "KAFKA_SASL_PASSWORD or KAFKA_SASL_PASSWORD_FILE"
                )
        elif sasl_given:
            raise KafkaSecurityError(
                f"{', '.join(sasl_given)} need security_protocol SASL_PLAINTEXT or SASL_SSL, "
                f"not {self.protocol}"
            )
        tls_given = [
            name for name in ("ssl_cafile", "ssl_certfile", "ssl_keyfile") if getattr(self, name) is not None
        ]
        if tls_given and not self.uses_tls:
            raise KafkaSecurityError(
                f"{', '.join(tls_given)} need security_protocol SSL or SASL_SSL, not {self.protocol}"
            )
        if (self.ssl_certfile is None) != (self.ssl_keyfile is None):
            raise KafkaSecurityError("ssl_certfile and ssl_keyfile go together: give both or neither")
        return self

    def ssl_context(self) -> ssl.SSLContext | None:
        """The TLS context of a client (``None`` without TLS): verifies the broker's certificate
        and host name against ``ssl_cafile`` (or the system's trust store) and presents the
        client certificate when one is set. Raises :class:`KafkaSecurityError` when a file
        cannot be loaded."""
        self.check()
        if not self.uses_tls:
            return None
        try:
            context = ssl.create_default_context(
                cafile=str(self.ssl_cafile) if self.ssl_cafile is not None else None
            )
        except (OSError, ssl.SSLError) as exc:
            raise KafkaSecurityError(f"cannot load ssl_cafile {self.ssl_cafile}: {exc}") from None
        if self.ssl_certfile is not None and self.ssl_keyfile is not None:
            try:
                context.load_cert_chain(self.ssl_certfile, self.ssl_keyfile)
            except (OSError, ssl.SSLError) as exc:
                raise KafkaSecurityError(
                    f"cannot load ssl_certfile {self.ssl_certfile} with ssl_keyfile {self.ssl_keyfile}: {exc}"
                ) from None
        return context

    def client_options(self) -> dict[str, Any]:
        """Keyword arguments of an aiokafka client (admin client, consumer, producer) for these
        settings: ``security_protocol`` always, ``ssl_context`` with TLS, the SASL mechanism
        and credentials with SASL. The result holds the password: never log it."""
        options: dict[str, Any] = {"security_protocol": self.protocol}
        context = self.ssl_context()
        if context is not None:
            options["ssl_context"] = context
        if self.uses_sasl:
            options["sasl_mechanism"] = self.sasl_mechanism
            options["sasl_plain_username"] = self.sasl_username
            options["sasl_plain_password"] = self.sasl_password
        return options

    def describe(self) -> dict[str, str]:
        """Log fields that say how clients connect, without any secret."""
        fields_: dict[str, str] = {"kafka_security": self.protocol}
        if self.uses_sasl:
            fields_["sasl_mechanism"] = str(self.sasl_mechanism)
            fields_["sasl_username"] = str(self.sasl_username)
        return fields_


PLAINTEXT = KafkaSecurity()
