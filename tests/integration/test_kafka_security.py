"""TLS and SASL on a real broker (:mod:`tests.integration.secured_broker`): a worker that logs in
with SCRAM over TLS processes and commits exactly once; one whose password is wrong exits at once
with one line and its own exit code; the other mechanisms and the client certificate connect,
and a client without its certificate is refused."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from agents.faust_compat import open_broker_connection
from streams.kafka.credentials_check import EXIT_CREDENTIALS_REFUSED, CredentialsRefused, check_credentials
from streams.kafka.kafka_security import KafkaSecurity
from streams.kafka.local_kafka import LocalKafka
from streams.kafka.topic_admin import ensure_topics, partition_counts
from tests.integration.broker_io import consumed_everything, free_port, read_to_end
from tests.integration.conftest import _free_port_pair, run, wait_exit, wait_until
from tests.integration.secured_broker import PLAIN_USER, Certificates, scram_security, secured_broker

MINUTE = 60_000
PIPELINE = """
[app]
id = "{app_id}"
commit_interval = "200ms"

{kafka}

[[source]]
name = "clicks"
topics = ["{src}"]
key = "user"
timestamp = "ts"
partitioned_by_key = true

[[table]]
name = "clicks_per_user"
source = "clicks"
window = {{ type = "tumbling", size = "1m", grace = "0s", retention = "1h" }}
aggregate = {{ n = "count()", spent = "sum(amount)" }}
emit = "final"
output = "{out}"
"""


@pytest.fixture
def secured(tmp_path: Path) -> Iterator[tuple[LocalKafka, Certificates, int, int]]:
    """A fresh broker with SASL_SSL and SSL listeners, its certificates, and the two ports."""
    certs = Certificates(tmp_path / "certs").make()
    home = tmp_path / "kafka"
    home.mkdir()
    (home / "lib").symlink_to(LocalKafka.from_env().lib_dir.resolve())
    sasl_ssl_port, ssl_port = free_port(), free_port()
    broker = secured_broker(home, _free_port_pair(), sasl_ssl_port, ssl_port, certs)
    broker.start()
    yield broker, certs, sasl_ssl_port, ssl_port
    broker.stop()


async def publish_secured(
    bootstrap: str, security: KafkaSecurity, topic: str, events: list[dict[str, Any]]
) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", **security.client_options())
    await producer.start()
    try:
        for event in events:
            await producer.send_and_wait(topic, orjson.dumps(event), key=str(event["user"]).encode())
    finally:
        await producer.stop()


def check_the_other_logins(certs: Certificates, bootstrap: str, tls: str, topic: str) -> None:
    """SCRAM-SHA-512 and PLAIN over SASL_SSL, and TLS with a client certificate, reach ``topic``;
    TLS without the certificate and PLAIN with a wrong password are refused."""
    carol, secret = PLAIN_USER
    for security in [
        scram_security(certs, "bob"),
        KafkaSecurity(
            "SASL_SSL", certs.ca, sasl_mechanism="PLAIN", sasl_username=carol, sasl_password=secret
        ),
    ]:
        assert run(partition_counts(bootstrap, [topic], security)) == {topic: 1}, security
    with_cert = KafkaSecurity("SSL", certs.ca, certs.client_cert, certs.client_key)
    assert run(partition_counts(tls, [topic], with_cert)) == {topic: 1}
    with pytest.raises(CredentialsRefused, match=r"(?i)refused SSL: .*certificate"):
        run(check_credentials(tls, KafkaSecurity("SSL", certs.ca), open_broker_connection))
    wrong = KafkaSecurity(
        "SASL_SSL", certs.ca, sasl_mechanism="PLAIN", sasl_username=carol, sasl_password="x"
    )
    with pytest.raises(CredentialsRefused, match="refused PLAIN user 'carol'"):
        run(check_credentials(bootstrap, wrong, open_broker_connection))


def test_a_worker_logs_in_with_scram_over_tls_and_a_wrong_password_ends_a_worker(
    secured: tuple[LocalKafka, Certificates, int, int], run_id: str, start_worker: Any, tmp_path: Path
) -> None:
    """A worker configured by the pipeline file (the password in a file) logs in as alice with
    SCRAM-SHA-256 over TLS, and its closed windows are in the output topic exactly once, read
    with read_committed, once its input offsets are committed; a worker configured by the
    environment with a wrong password prints one line and exits with code 4. Neither logs a
    password."""
    broker, certs, sasl_ssl_port, ssl_port = secured
    plain = broker.bootstrap  # the test watches the topics over the PLAINTEXT listener
    bootstrap = f"127.0.0.1:{sasl_ssl_port}"
    alice = scram_security(certs, "alice")
    app_id, src, out = f"sec-{run_id}", f"sec-{run_id}-clicks", f"sec-{run_id}-out"
    run(ensure_topics(bootstrap, {src: 1}, security=alice))

    # the right credentials, from the pipeline file; the password from a file
    password_file = tmp_path / "alice.password"
    password_file.write_text("alice-secret\n")
    kafka_table = (
        f'[kafka]\nsecurity_protocol = "SASL_SSL"\nssl_cafile = "{certs.ca}"\n'
        f'sasl_mechanism = "SCRAM-SHA-256"\nsasl_username = "alice"\nsasl_password_file = "{password_file}"'
    )
    good = tmp_path / "good.toml"
    good.write_text(PIPELINE.format(app_id=app_id, src=src, out=out, kafka=kafka_table))
    # a wrong password, from the environment
    wrong = tmp_path / "wrong.toml"
    wrong.write_text(PIPELINE.format(app_id=app_id, src=src, out=out, kafka=""))
    wrong_env = {
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "KAFKA_SSL_CAFILE": str(certs.ca),
        "KAFKA_SASL_MECHANISM": "SCRAM-SHA-256",
        "KAFKA_SASL_USERNAME": "alice",
        "KAFKA_SASL_PASSWORD": "not-alice-secret",
    }
    refused = start_worker(wrong, free_port(), env=wrong_env)
    worker = start_worker(good, free_port(), env={"KAFKA_BOOTSTRAP_SERVERS": bootstrap})

    t0 = (1_700_000_000_000 // MINUTE) * MINUTE
    events = [
        {"user": "ann", "ts": t0 + 1_000, "amount": 1.0},
        {"user": "ann", "ts": t0 + 2_000, "amount": 2.0},
        {"user": "ben", "ts": t0 + 3_000, "amount": 4.0},
        {"user": "ann", "ts": t0 + MINUTE + 1_000, "amount": 8.0},
        {"user": "cid", "ts": t0 + MINUTE + 2_000, "amount": 16.0},
        {"user": "cid", "ts": t0 + MINUTE + 3_000, "amount": 32.0},
        # moves stream time past the first two minutes: they close and are emitted
        {"user": "dan", "ts": t0 + 3 * MINUTE, "amount": 64.0},
    ]
    run(publish_secured(bootstrap, alice, src, events))
    expected = sorted(
        [
            ("ann", t0, t0 + MINUTE, {"n": 2, "spent": 3.0}),
            ("ben", t0, t0 + MINUTE, {"n": 1, "spent": 4.0}),
            ("ann", t0 + MINUTE, t0 + 2 * MINUTE, {"n": 1, "spent": 8.0}),
            ("cid", t0 + MINUTE, t0 + 2 * MINUTE, {"n": 2, "spent": 48.0}),
        ],
        key=repr,
    )

    def emitted() -> list[tuple[Any, ...]]:
        records = run(read_to_end(plain, out))[0]
        values = [orjson.loads(r.value) for r in records]
        return sorted(((v["key"], v["start"], v["end"], v["value"]) for v in values), key=repr)

    # while the workers start
    check_the_other_logins(certs, bootstrap, f"127.0.0.1:{ssl_port}", src)

    code = wait_exit(refused, 30, "the worker with the wrong password to exit")
    output = refused.log.read_text()
    assert code == EXIT_CREDENTIALS_REFUSED, output
    said = [line for line in output.splitlines() if line.startswith("continust: ")]
    assert said == [
        f"continust: the Kafka broker {bootstrap} refused SCRAM-SHA-256 user 'alice' over SASL_SSL: "
        "[Error 58] SaslAuthenticationFailed: Authentication failed during authentication due to "
        "invalid credentials with SASL mechanism SCRAM-SHA-256"
    ], output
    assert "Traceback" not in output and "not-alice-secret" not in output

    wait_until(lambda: emitted() == expected, 60, "the closed windows in the output topic", worker.log_tail)
    wait_until(
        lambda: consumed_everything(plain, app_id, [src]), 30, "the input offsets committed", worker.log_tail
    )
    assert emitted() == expected, "every window once, nothing else"
    # everything is checked: no need for a clean stop, which takes seconds
    worker.proc.kill()
    worker.proc.wait()
    log = worker.log.read_text()
    assert "kafka_security=SASL_SSL sasl_mechanism=SCRAM-SHA-256 sasl_username=alice" in log
    assert "alice-secret" not in log
