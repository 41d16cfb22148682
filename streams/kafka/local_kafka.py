"""A single-node Apache Kafka broker (KRaft) for development and tests, without Docker.

The broker jars are resolved from Maven Central by the machine's ``mvn`` using ``kafka/pom.xml``
and copied once into ``.kafka/lib``; the broker runs on the machine's Java 17. Everything the
broker writes (storage, log file, pid file, generated ``server.properties``) lives under the
git-ignored ``.kafka/`` folder of the project, or under ``CONTINUST_KAFKA_HOME`` when set.

``start`` is idempotent: when the broker this folder started is already running and answering,
it does nothing. ``stop`` stops only the broker named in the pid file.
"""

from __future__ import annotations

import asyncio
import base64
import fcntl
import logging
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from streams.telemetry.logfmt import logfmt

log = logging.getLogger("continust.kafka")

PROJECT_ROOT = Path(__file__).resolve().parents[2]
POM = PROJECT_ROOT / "kafka" / "pom.xml"
LOG4J_CONFIG = PROJECT_ROOT / "kafka" / "log4j2.xml"


class BrokerError(RuntimeError):
    """The local broker could not be set up, started or stopped; the message says why."""


class PortTaken(BrokerError):
    """Another process took the broker's port while this one started (two checkouts starting a
    broker on the same port at the same moment): this folder's broker could not bind it."""


def _listened(port: int) -> bool:
    """Whether something accepts connections on ``port`` of the loopback address."""
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def listens_on(pid: int, port: int) -> bool:
    """Whether process ``pid`` holds a socket listening on TCP ``port`` of this network
    namespace (IPv4 or IPv6, read from Linux's ``/proc``)."""
    sockets = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except FileNotFoundError:
            continue
        for row in rows:
            fields = row.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:  # 0A: LISTEN
                sockets.add(f"socket:[{inode}]")
    try:
        descriptors = list(Path(f"/proc/{pid}/fd").iterdir())
    except OSError:
        return False
    for descriptor in descriptors:
        try:
            if os.readlink(descriptor) in sockets:
                return True
        except OSError:
            continue
    return False


@dataclass(frozen=True)
class LocalKafka:
    """Where the local broker lives and which ports it listens on (127.0.0.1 only).

    Beside its PLAINTEXT listener (clients and the broker itself) and its controller listener, it
    may listen on ``extra_listeners`` (``(protocol, port)`` pairs; the protocol, ``SSL``,
    ``SASL_PLAINTEXT`` or ``SASL_SSL``, names the listener too) configured by
    ``extra_properties`` (TLS key store, SASL mechanisms, JAAS configuration: any broker
    property, written after the defaults), with the SCRAM users of ``scram_credentials``
    (``kafka-storage format --add-scram`` arguments such as
    ``SCRAM-SHA-256=[name=alice,password=secret]``) written into the storage when it is
    formatted."""

    home: Path
    port: int = 9092
    controller_port: int = 9093
    heap: str = "768m"
    extra_listeners: tuple[tuple[str, int], ...] = ()
    extra_properties: tuple[tuple[str, str], ...] = ()
    scram_credentials: tuple[str, ...] = ()
    #: for a broker that lives as long as one test: the JVMs (storage format and broker) run
    #: with the C1 compiler only and the serial collector, and start about 40% sooner on a busy
    #: machine, for a lower peak throughput
    quick_start: bool = False

    @classmethod
    def from_env(cls, port: int | None = None) -> LocalKafka:
        home = Path(os.environ.get("CONTINUST_KAFKA_HOME", PROJECT_ROOT / ".kafka"))
        port = port or int(os.environ.get("CONTINUST_KAFKA_PORT", "9092"))
        return cls(home=home, port=port, controller_port=port + 1)

    @property
    def lib_dir(self) -> Path:
        return self.home / "lib"

    @property
    def data_dir(self) -> Path:
        return self.home / f"data-{self.port}"

    @property
    def config_file(self) -> Path:
        return self.home / f"server-{self.port}.properties"

    @property
    def log_file(self) -> Path:
        return self.home / f"broker-{self.port}.log"

    @property
    def pid_file(self) -> Path:
        return self.home / f"broker-{self.port}.pid"

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    # -- jars -----------------------------------------------------------------------------

    def ensure_jars(self) -> None:
        """Resolve the broker jars with Maven unless this pom's jars are already here. One
        process at a time (an exclusive lock beside the folder): two test processes of one
        checkout start brokers on the same jars at the same time."""
        lib = self.lib_dir.resolve()  # a broker of a test links the suite's folder
        lib.parent.mkdir(parents=True, exist_ok=True)
        with open(lib.parent / f".{lib.name}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            self._resolve_jars(lib)

    def _resolve_jars(self, lib: Path) -> None:
        marker = lib / ".resolved"
        pom_text = POM.read_text()
        if marker.exists() and marker.read_text() == pom_text:
            return
        mvn = shutil.which("mvn")
        if mvn is None:
            raise BrokerError("mvn is not on PATH: Maven is needed to fetch the Kafka broker jars")
        if lib.exists():
            shutil.rmtree(lib)
        lib.mkdir(parents=True)
        log.info(logfmt("kafka.jars.resolve", pom=POM, into=lib))
        cmd = [
            mvn,
            "-B",
            "-q",
            "-f",
            str(POM),
            "dependency:copy-dependencies",
            "-DincludeScope=runtime",
            f"-DoutputDirectory={lib}",
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            tail = (proc.stdout + proc.stderr).strip().splitlines()[-15:]
            raise BrokerError("mvn could not resolve the Kafka jars:\n" + "\n".join(tail))
        jars = sorted(lib.glob("*.jar"))
        marker.write_text(pom_text)
        log.info(logfmt("kafka.jars.ready", jars=len(jars)))

    # -- configuration and storage --------------------------------------------------------

    def write_config(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        extra = "".join(f",{name}://127.0.0.1:{port}" for name, port in self.extra_listeners)
        extra_map = "".join(f",{name}:{name}" for name, _ in self.extra_listeners)
        props = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@127.0.0.1:{self.controller_port}",
            "listeners": f"PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.controller_port}"
            + extra,
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{self.port}" + extra,
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT" + extra_map,
            "log.dirs": str(self.data_dir),
            "num.partitions": "1",
            "auto.create.topics.enable": "false",
            # A single broker: every internal topic has one replica.
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "8",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "transaction.state.log.num.partitions": "8",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            # Topics the engine creates ask for the broker's defaults (replication factor -1, no
            # min.insync.replicas of their own; streams.kafka.topic_admin), so these two are what they
            # get here. With one replica and min.insync.replicas=1 a partition's ISR always holds
            # its leader, so a NotEnoughReplicasError a worker sees on this broker is not about
            # replication: Kafka's transaction verification (KIP-890,
            # transaction.partition.verification.enable, on by default) answers a transactional
            # produce it cannot verify (CONCURRENT_TRANSACTIONS, coordinator loading or moved)
            # with NOT_ENOUGH_REPLICAS to clients without KIP-890's epoch bump, aiokafka among
            # them. agents/transport.py avoids the common case (offsets added while the
            # transaction's records are in flight); verification stays on, as on production.
            "default.replication.factor": "1",
            "min.insync.replicas": "1",
            "group.initial.rebalance.delay.ms": "0",
            "log.flush.interval.messages": "9223372036854775807",
            "log.segment.bytes": str(64 * 1024 * 1024),
            "log.retention.check.interval.ms": "60000",
            **dict(self.extra_properties),
        }
        self.config_file.write_text("".join(f"{k}={v}\n" for k, v in props.items()))

    def _java(self, main: str, *args: str) -> list[str]:
        java = shutil.which("java")
        if java is None:
            raise BrokerError("java is not on PATH: Java 17 is needed to run the Kafka broker")
        return [
            java,
            "-Xms256m",
            f"-Xmx{self.heap}",
            *(("-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC") if self.quick_start else ("-XX:+UseG1GC",)),
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={LOG4J_CONFIG}",
            "-cp",
            str(self.lib_dir / "*"),
            main,
            *args,
        ]

    def format_storage(self) -> None:
        """Format the KRaft storage on first start; a formatted folder is left alone."""
        if (self.data_dir / "meta.properties").exists():
            return
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        log.info(logfmt("kafka.storage.format", dir=self.data_dir, cluster_id=cluster_id))
        scram = [arg for credential in self.scram_credentials for arg in ("--add-scram", credential)]
        proc = subprocess.run(
            self._java(
                "kafka.tools.StorageTool",
                "format",
                f"--cluster-id={cluster_id}",
                "-c",
                str(self.config_file),
                *scram,
            ),
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0:
            raise BrokerError("formatting Kafka storage failed:\n" + proc.stdout + proc.stderr)

    # -- process --------------------------------------------------------------------------

    def pid(self) -> int | None:
        """The pid of the broker this folder started, if that process is still alive."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, IndexError):
            return None
        if state == "Z":
            return None
        # Right after exec the kernel may not show the new command line yet.
        if cmdline and ("kafka.Kafka" not in cmdline or str(self.config_file) not in cmdline):
            return None
        return pid

    def port_open(self) -> bool:
        return _listened(self.port)

    def start(self, timeout: float = 120.0) -> None:
        """Start the broker unless ours is already running; return once it answers requests."""
        if self.pid() is not None and answers_requests(self.bootstrap):
            log.info(logfmt("kafka.running", pid=self.pid(), bootstrap=self.bootstrap))
            return
        if self.pid() is None and self.port_open():
            raise BrokerError(
                f"port {self.port} is taken by a process this folder did not start; "
                "stop it or choose another port with --port / CONTINUST_KAFKA_PORT"
            )
        self.ensure_jars()
        self.write_config()
        self.format_storage()
        if self.pid() is None:
            log_handle = open(self.log_file, "ab")  # noqa: SIM115 - handed to the child
            proc = subprocess.Popen(
                self._java("kafka.Kafka", str(self.config_file)),
                stdout=log_handle,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
            log_handle.close()
            self.pid_file.write_text(str(proc.pid))
            log.info(logfmt("kafka.starting", pid=proc.pid, bootstrap=self.bootstrap, log=self.log_file))
        deadline = time.monotonic() + timeout
        waited = 0
        while time.monotonic() < deadline:
            pid = self.pid()
            if pid is None:
                if any(_listened(port) for port in (self.port, self.controller_port)):
                    raise PortTaken(
                        f"port {self.port} or {self.controller_port} was taken by another process "
                        "while the broker started"
                    )
                raise BrokerError(f"the broker exited during start; see {self.log_file}")
            # another folder's broker may answer on the port while ours has yet to fail to bind it
            if self.port_open() and listens_on(pid, self.port) and answers_requests(self.bootstrap):
                log.info(logfmt("kafka.ready", pid=self.pid(), bootstrap=self.bootstrap, waited_s=waited))
                return
            time.sleep(1)
            waited += 1
            if waited % 5 == 0:
                log.info(logfmt("kafka.waiting", waited_s=waited, bootstrap=self.bootstrap))
        raise BrokerError(f"the broker did not answer within {timeout:.0f}s; see {self.log_file}")

    def stop(self, timeout: float = 60.0) -> bool:
        """Stop the broker named in the pid file; return whether one was running."""
        pid = self.pid()
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            log.info(logfmt("kafka.not_running", bootstrap=self.bootstrap))
            return False
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.pid() is not None:
            time.sleep(0.5)
        if self.pid() is not None:
            log.warning(logfmt("kafka.kill", pid=pid, reason="no exit after SIGTERM"))
            os.kill(pid, signal.SIGKILL)
        while time.monotonic() < deadline + 10 and self.port_open():
            time.sleep(0.2)
        self.pid_file.unlink(missing_ok=True)
        log.info(logfmt("kafka.stopped", pid=pid))
        return True

    def status(self) -> str:
        pid = self.pid()
        if pid is None:
            return logfmt("kafka.status", state="stopped", bootstrap=self.bootstrap)
        state = "ready" if answers_requests(self.bootstrap) else "starting"
        return logfmt("kafka.status", state=state, pid=pid, bootstrap=self.bootstrap, log=self.log_file)


def answers_requests(bootstrap: str) -> bool:
    """Whether a broker at ``bootstrap`` answers a metadata request with a live controller."""
    from aiokafka.admin import AIOKafkaAdminClient

    async def probe() -> bool:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=3000)
        try:
            await admin.start()
            await admin.describe_cluster()
            return True
        except Exception:
            return False
        finally:
            await admin.close()

    return asyncio.run(probe())
