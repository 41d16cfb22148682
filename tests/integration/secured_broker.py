"""A local broker secured like a production cluster, for the tests of
:mod:`streams.kafka.kafka_security`: beside its PLAINTEXT listener it listens on ``SASL_SSL`` (SCRAM-SHA-256,
SCRAM-SHA-512 and PLAIN over TLS) and on ``SSL`` with client certificates required.

The certificate authority, the broker's certificate (for ``127.0.0.1`` and ``localhost``) and a
client certificate are made by ``openssl`` when the broker is set up; the SCRAM users are written
into the storage by Kafka's own ``kafka-storage format --add-scram``, the PLAIN user is in the
listener's JAAS configuration.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from streams.kafka.kafka_security import KafkaSecurity
from streams.kafka.local_kafka import LocalKafka

#: user -> (SCRAM mechanism, password)
SCRAM_USERS = {"alice": ("SCRAM-SHA-256", "alice-secret"), "bob": ("SCRAM-SHA-512", "bob-secret")}
PLAIN_USER = ("carol", "carol-secret")
#: P-256 keys: made in milliseconds, where RSA keys take a good part of a second each
EC_KEY = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1")


def _openssl(*args: str | Path) -> None:
    proc = subprocess.run(["openssl", *map(str, args)], capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"openssl {args[0]} failed: {proc.stderr.strip()}")


@dataclass(frozen=True)
class Certificates:
    """PEM files in ``folder``: the CA, the broker's key and chain in one file (Kafka's PEM key
    store), a client certificate and its key."""

    folder: Path

    @property
    def ca(self) -> Path:
        return self.folder / "ca.pem"

    @property
    def broker_keystore(self) -> Path:
        return self.folder / "broker-keystore.pem"

    @property
    def client_cert(self) -> Path:
        return self.folder / "client.pem"

    @property
    def client_key(self) -> Path:
        return self.folder / "client-key.pem"

    def make(self) -> Certificates:
        f = self.folder
        f.mkdir(parents=True, exist_ok=True)
        ca_key = f / "ca-key.pem"
        _openssl(
            "req", "-x509", *EC_KEY, "-nodes", "-days", "2",
            "-subj", "/CN=continust test CA", "-keyout", ca_key, "-out", self.ca,
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        )  # fmt: skip
        self._signed("broker", "subjectAltName=IP:127.0.0.1,DNS:localhost", ca_key)
        broker_key = f / "broker-key.pem"
        self.broker_keystore.write_text(broker_key.read_text() + (f / "broker.pem").read_text())
        self._signed("client", "extendedKeyUsage=clientAuth", ca_key)
        return self

    def _signed(self, name: str, extension: str, ca_key: Path) -> None:
        f = self.folder
        key, csr, cert, ext = f / f"{name}-key.pem", f / f"{name}.csr", f / f"{name}.pem", f / f"{name}.ext"
        _openssl("req", *EC_KEY, "-nodes", "-subj", f"/CN={name}", "-keyout", key, "-out", csr)
        ext.write_text(extension + "\n")
        _openssl(
            "x509", "-req", "-in", csr, "-CA", self.ca, "-CAkey", ca_key, "-CAcreateserial",
            "-days", "2", "-out", cert, "-extfile", ext,
        )  # fmt: skip


def secured_broker(
    home: Path, port: int, sasl_ssl_port: int, ssl_port: int, certs: Certificates
) -> LocalKafka:
    """A :class:`LocalKafka` in ``home`` on ``port`` (PLAINTEXT) and ``port + 1`` (controller),
    with SASL_SSL on ``sasl_ssl_port`` and SSL (client certificate required) on ``ssl_port``."""
    scram = "org.apache.kafka.common.security.scram.ScramLoginModule required;"
    user, password = PLAIN_USER
    plain = f'org.apache.kafka.common.security.plain.PlainLoginModule required user_{user}="{password}";'
    properties = {
        "sasl.enabled.mechanisms": "SCRAM-SHA-256,SCRAM-SHA-512,PLAIN",
        "listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config": scram,
        "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config": scram,
        "listener.name.sasl_ssl.plain.sasl.jaas.config": plain,
        "ssl.keystore.type": "PEM",
        "ssl.keystore.location": str(certs.broker_keystore),
        "listener.name.ssl.ssl.client.auth": "required",
        "listener.name.ssl.ssl.truststore.type": "PEM",
        "listener.name.ssl.ssl.truststore.location": str(certs.ca),
    }
    return LocalKafka(
        home=home,
        port=port,
        controller_port=port + 1,
        extra_listeners=(("SASL_SSL", sasl_ssl_port), ("SSL", ssl_port)),
        extra_properties=tuple(properties.items()),
        quick_start=True,
        scram_credentials=tuple(
            f"{mechanism}=[name={name},password={secret}]"
            for name, (mechanism, secret) in SCRAM_USERS.items()
        ),
    )


def scram_security(certs: Certificates, user: str, password: str | None = None) -> KafkaSecurity:
    """How a client of the SASL_SSL listener logs in as ``user`` (with its own password unless
    another is given)."""
    mechanism, secret = SCRAM_USERS[user]
    return KafkaSecurity(
        protocol="SASL_SSL",
        ssl_cafile=certs.ca,
        sasl_mechanism=mechanism,
        sasl_username=user,
        sasl_password=password if password is not None else secret,
    )
