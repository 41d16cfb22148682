"""The Kafka security settings (:mod:`streams.kafka.kafka_security`): where they come from, what fits
together, the client options they give every client (the Faust app's too), that the password
never shows, and how a refused connection is told apart (:mod:`streams.kafka.credentials_check`)."""

from __future__ import annotations

import logging
import re
import ssl
import subprocess
from pathlib import Path
from typing import Any

import aiokafka.errors as Errors
import pytest
from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth

from agents.application import broker_credentials
from streams.kafka.credentials_check import bootstrap_hosts, refusal_in
from streams.kafka.kafka_security import PLAINTEXT, KafkaSecurity, KafkaSecurityError
from streams.plan.errors import PipelineError
from streams.plan.pipeline import parse_pipeline
from streams.settings import Settings
from streams.telemetry.logfmt import logfmt

SECRET = "s3cr3t-pa55"
PIPELINE: dict[str, Any] = {
    "app": {"id": "shop"},
    "source": [{"name": "clicks", "topics": ["a"], "key": "user"}],
    "table": [
        {
            "name": "t",
            "source": "clicks",
            "window": {"type": "tumbling", "size": "1m"},
            "aggregate": {"n": "count()"},
        }
    ],
}
SASL_ENV = {
    "KAFKA_SECURITY_PROTOCOL": "sasl_ssl",
    "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
    "KAFKA_SASL_USERNAME": "svc",
    "KAFKA_SASL_PASSWORD": SECRET,
}


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """A self-signed certificate and its key (PEM), usable as CA and as client certificate."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-days", "1", "-subj", "/CN=test", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return folder, cert, key


def with_kafka(table: dict[str, Any]) -> dict[str, Any]:
    return {**PIPELINE, "kafka": table}


def test_plaintext_by_default_with_no_tls_and_no_sasl() -> None:
    assert Settings.from_env({}).kafka == PLAINTEXT
    assert PLAINTEXT.check().client_options() == {"security_protocol": "PLAINTEXT"}
    assert broker_credentials(PLAINTEXT) is None


def test_the_environment_then_the_pipeline_file(tmp_path: Path) -> None:
    env = Settings.from_env({**SASL_ENV, "KAFKA_SASL_USERNAME": "from-env"})
    assert env.kafka == KafkaSecurity(
        protocol="SASL_SSL", sasl_mechanism="SCRAM-SHA-512", sasl_username="from-env", sasl_password=SECRET
    )
    password = tmp_path / "password"
    password.write_text("from-file\n")
    table = {
        "sasl_username": "from-file",
        "sasl_mechanism": "scram-sha-256",
        "sasl_password_file": str(password),
    }
    merged = env.with_pipeline(parse_pipeline(with_kafka(table)))
    assert (merged.kafka.sasl_username, merged.kafka.sasl_mechanism) == ("from-file", "SCRAM-SHA-256")
    assert merged.kafka.sasl_password == "from-file", "the file's text without its line break"
    assert merged.kafka.protocol == "SASL_SSL", "what the file leaves out stays the environment's"
    file_env = tmp_path / "env-password"
    file_env.write_text("kept-in-a-file")
    from_file = KafkaSecurity.from_env(
        {**SASL_ENV, "KAFKA_SASL_PASSWORD": "", "KAFKA_SASL_PASSWORD_FILE": str(file_env)}
    )
    assert from_file.sasl_password == "kept-in-a-file"


def test_client_options_for_sasl_over_tls_with_a_client_certificate(ca: tuple[Path, Path, Path]) -> None:
    _, cert, key = ca
    security = KafkaSecurity("SASL_SSL", cert, cert, key, "PLAIN", "svc", SECRET)
    options = security.client_options()
    context = options.pop("ssl_context")
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert options == {
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "PLAIN",
        "sasl_plain_username": "svc",
        "sasl_plain_password": SECRET,
    }
    tls_only = KafkaSecurity("SSL", ssl_cafile=cert).client_options()
    assert set(tls_only) == {"security_protocol", "ssl_context"} and tls_only["security_protocol"] == "SSL"
    assert KafkaSecurity("SASL_PLAINTEXT", None, None, None, "SCRAM-SHA-256", "u", "p").client_options() == {
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": "SCRAM-SHA-256",
        "sasl_plain_username": "u",
        "sasl_plain_password": "p",
    }


@pytest.mark.parametrize(
    "security",
    [
        KafkaSecurity("SASL_SSL", None, None, None, "SCRAM-SHA-256", "svc", SECRET),
        KafkaSecurity("SASL_PLAINTEXT", None, None, None, "SCRAM-SHA-512", "svc", SECRET),
        KafkaSecurity("SASL_SSL", None, None, None, "PLAIN", "svc", SECRET),
        KafkaSecurity("SSL"),
    ],
    ids=repr,
)
def test_the_faust_app_connects_as_every_other_client(security: KafkaSecurity) -> None:
    """Faust turns ``broker_credentials`` into its consumers' and producers' options: they are
    the options of every other client of the worker."""
    faust_options = dict(credentials_to_aiokafka_auth(broker_credentials(security)))
    ours = security.client_options()
    assert isinstance(faust_options.pop("ssl_context"), ssl.SSLContext) == ("ssl_context" in ours)
    ours.pop("ssl_context", None)
    assert faust_options == ours


@pytest.mark.parametrize(
    ("table", "problem"),
    [
        ({"security_protocol": "SASL_SSL"}, "sasl_mechanism None is not supported with SASL_SSL"),
        ({"security_protocol": "SASL_SSL", "sasl_mechanism": "PLAIN"}, "SASL_SSL needs sasl_username"),
        (
            {"security_protocol": "SASL_SSL", "sasl_mechanism": "PLAIN", "sasl_username": "u"},
            "SASL_SSL needs a password: sasl_password_file in [kafka], KAFKA_SASL_PASSWORD",
        ),
        (
            {"sasl_username": "u"},
            "sasl_username need security_protocol SASL_PLAINTEXT or SASL_SSL, not PLAINTEXT",
        ),
        ({"ssl_cafile": "ca.pem"}, "ssl_cafile need security_protocol SSL or SASL_SSL, not PLAINTEXT"),
        ({"security_protocol": "SSL", "ssl_certfile": "c.pem"}, "ssl_certfile and ssl_keyfile go together"),
        (
            {"security_protocol": "SASL_SSL", "sasl_password_file": "/nonexistent/pw"},
            "cannot read the SASL password",
        ),
    ],
)
def test_settings_that_do_not_fit_together_name_the_problem(table: dict[str, Any], problem: str) -> None:
    with pytest.raises(PipelineError) as err:
        Settings.from_env({}).with_pipeline(parse_pipeline(with_kafka(table), "p.toml"))
    assert str(err.value).startswith("p.toml: [kafka] (or the KAFKA_* environment): ")
    assert problem in str(err.value)


@pytest.mark.parametrize(
    ("table", "problem"),
    [
        (
            {"security_protocol": "TLS"},
            "`security_protocol` = 'TLS' is not supported; allowed: PLAINTEXT, SSL, ",
        ),
        ({"sasl_mechanism": "GSSAPI"}, "allowed: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512"),
        ({"sasl_password": SECRET}, "the password is not written in the pipeline file"),
        ({"bootstrap": "x"}, "unknown setting 'bootstrap'"),
    ],
)
def test_the_kafka_table_is_checked_when_the_file_is_read(table: dict[str, Any], problem: str) -> None:
    with pytest.raises(PipelineError, match="kafka") as err:
        parse_pipeline(with_kafka(table), "p.toml")
    assert problem in str(err.value)
    assert SECRET not in str(err.value)


def test_unloadable_files_are_named(tmp_path: Path, ca: tuple[Path, Path, Path]) -> None:
    _, cert, _ = ca
    with pytest.raises(KafkaSecurityError, match=re.escape("cannot load ssl_cafile /nonexistent/ca.pem")):
        KafkaSecurity("SSL", ssl_cafile=Path("/nonexistent/ca.pem")).client_options()
    with pytest.raises(
        KafkaSecurityError, match=re.escape(f"cannot load ssl_certfile {cert} with ssl_keyfile {cert}")
    ):
        KafkaSecurity("SSL", ssl_certfile=cert, ssl_keyfile=cert).client_options()


def test_the_password_never_shows(caplog: pytest.LogCaptureFixture) -> None:
    security = Settings.from_env(SASL_ENV).kafka
    settings = Settings.from_env(SASL_ENV)
    for text in (repr(security), str(security), repr(settings), str(settings), f"{security}"):
        assert SECRET not in text
        assert "sasl_password=<hidden>" in text
    assert "sasl_password" not in repr(PLAINTEXT), "an unset password is not mentioned"
    with caplog.at_level(logging.INFO):
        logging.getLogger("continust.test").info(
            logfmt("worker.start", **security.describe(), settings=settings)
        )
    assert "kafka_security=SASL_SSL sasl_mechanism=SCRAM-SHA-512 sasl_username=svc" in caplog.text
    assert SECRET not in caplog.text


def test_a_refusal_is_told_apart_from_an_unreachable_broker() -> None:
    login = Errors.SaslAuthenticationFailed("invalid credentials")
    assert refusal_in(login) is login
    closed = Errors.KafkaConnectionError("Connection at 127.0.0.1:9093 closed")
    alert = ssl.SSLError(1, "[SSL: TLSV13_ALERT_CERTIFICATE_REQUIRED] alert")
    closed.__cause__ = alert
    assert refusal_in(closed) is alert, "a client certificate refused after the TLS 1.3 handshake"
    assert refusal_in(ConnectionRefusedError(111, "Connection refused")) is None
    assert refusal_in(Errors.KafkaConnectionError("Unable to bootstrap")) is None
    assert refusal_in(TimeoutError()) is None


def test_bootstrap_hosts() -> None:
    assert bootstrap_hosts("a:9093, b ,[::1]:9094,") == [("a", 9093), ("b", 9092), ("::1", 9094)]
