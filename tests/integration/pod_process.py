"""One pod of the rendered StatefulSet, run as a local process the way its container would run:
the image's ENTRYPOINT (tini) followed by the container's args, as PID 1 of a new PID namespace
(``unshare``), with the image's and the container's environment, the container's mount points
mapped to folders of the test, and, in a mount namespace of its own, the root filesystem
read-only but for the writable mounts when the container's securityContext says so.

What stands in for the cluster: ``metadata.name`` is the pod name given, ``metadata.namespace``
the StatefulSet's namespace, ``status.podIP`` a loopback address (127.0.0.1 unless the test
gives the pod another, as a restarted pod gets), and the container port a free local
port (in the args, the environment and the probes that name it); ``$(VAR)`` references in the
environment expand as the kubelet expands them. The settings that describe the Kafka cluster (``KAFKA_*``, the
replication settings of the topics the worker creates) are replaced by the test broker's,
since the Secret and brokers they name exist only in a real cluster."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.rendered_manifests import Instruction, Rendered

CLUSTER_SETTINGS = ("KAFKA_", "CONTINUST_REPLICATION_FACTOR", "CONTINUST_MIN_INSYNC_REPLICAS")


@dataclass(frozen=True)
class HttpProbe:
    """An ``httpGet`` probe of the container, its port resolved to the local one."""

    path: str
    host: str
    port: int
    period_s: int
    timeout_s: int
    failure_threshold: int

    @classmethod
    def of(cls, spec: dict[str, Any], host: str, ports: dict[str, int]) -> HttpProbe:
        get = spec["httpGet"]
        port = get["port"]
        return cls(
            path=get["path"],
            host=host,
            port=ports[port] if isinstance(port, str) else port,
            # the kubelet's defaults when the field is absent
            period_s=spec.get("periodSeconds", 10),
            timeout_s=spec.get("timeoutSeconds", 1),
            failure_threshold=spec.get("failureThreshold", 3),
        )

    @property
    def budget_s(self) -> int:
        """How long the kubelet gives the probe to succeed before it acts."""
        return self.period_s * self.failure_threshold

    def status(self) -> int | None:
        """One attempt, as the kubelet makes it: the HTTP status, None without an answer in
        time."""
        url = f"http://{self.host}:{self.port}{self.path}"
        try:
            with urllib.request.urlopen(url, timeout=self.timeout_s) as response:
                return int(response.status)
        except urllib.error.HTTPError as err:
            return err.code
        except OSError:
            return None


def image_env(stage: list[Instruction]) -> dict[str, str]:
    """The final stage's ``ENV key=value ...`` (one instruction or several)."""
    env: dict[str, str] = {}
    for instruction in stage:
        if instruction.keyword == "ENV":
            for pair in instruction.text.split():
                name, _, value = pair.partition("=")
                env[name] = value
    return env


def expand(value: str, defined: dict[str, str]) -> str:
    """The kubelet's expansion of ``$(VAR)`` (a variable defined earlier; others stay as they
    are) and ``$$`` (a literal ``$``)."""
    return re.sub(
        r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)",
        lambda m: "$" if m.group(0) == "$$" else defined.get(m.group(1), m.group(0)),
        value,
    )


@dataclass
class PodProcess:
    """The pod's container, started by :meth:`start`."""

    rendered: Rendered
    image: list[Instruction]
    pod_name: str
    root: Path
    kafka: str
    local_port: int
    pod_ip: str = "127.0.0.1"
    proc: subprocess.Popen[bytes] | None = None

    @property
    def container(self) -> dict[str, Any]:
        return self.rendered.worker()

    def container_port(self) -> int:
        (port,) = [p["containerPort"] for p in self.container["ports"]]
        return int(port)

    def probes(self) -> dict[str, HttpProbe]:
        ports = {p["name"]: self.local_port for p in self.container["ports"]}
        return {
            kind: HttpProbe.of(self.container[kind], self.pod_ip, ports)
            for kind in ("startupProbe", "readinessProbe", "livenessProbe")
        }

    def grace_period_s(self) -> int:
        return int(self.rendered.pod_spec()["terminationGracePeriodSeconds"])

    def mounts(self) -> dict[str, Path]:
        """Each mount path -> its local folder; the ConfigMaps' files written into theirs."""
        volumes = {v["name"]: v for v in self.rendered.pod_spec()["volumes"]}
        config_maps = {c["metadata"]["name"]: c for c in self.rendered.all("ConfigMap")}
        local: dict[str, Path] = {}
        for mount in self.container["volumeMounts"]:
            folder = self.root / mount["mountPath"].strip("/")
            folder.mkdir(parents=True, exist_ok=True)
            source = volumes.get(mount["name"], {})
            if "configMap" in source:
                for name, text in config_maps[source["configMap"]["name"]]["data"].items():
                    (folder / name).write_text(text)
            local[mount["mountPath"]] = folder
        return local

    def _local(self, value: str, mounts: dict[str, Path]) -> str:
        for path, folder in mounts.items():
            if value == path or value.startswith(path + "/"):
                return str(folder) + value[len(path) :]
        return str(self.local_port) if value == str(self.container_port()) else value

    def env(self, mounts: dict[str, Path]) -> dict[str, str]:
        namespace = self.rendered.one("StatefulSet")["metadata"].get("namespace", "default")
        fields = {
            "metadata.name": self.pod_name,
            "metadata.namespace": namespace,
            "status.podIP": self.pod_ip,
        }
        config_maps = {c["metadata"]["name"]: c for c in self.rendered.all("ConfigMap")}
        pod_env: dict[str, str] = {}
        for item in self.container.get("env", []):
            source = item.get("valueFrom", {})
            if "value" in item:
                pod_env[item["name"]] = expand(item["value"], pod_env)
            elif "fieldRef" in source:
                pod_env[item["name"]] = fields[source["fieldRef"]["fieldPath"]]
            elif "configMapKeyRef" in source:
                ref = source["configMapKeyRef"]
                pod_env[item["name"]] = config_maps[ref["name"]]["data"][ref["key"]]
        env = {**image_env(self.image), **pod_env}
        env = {k: self._local(v, mounts) for k, v in env.items() if not k.startswith(CLUSTER_SETTINGS)}
        # the host's paths are not the container's: set after the mount paths are mapped, so a
        # checkout under /tmp is not taken for the pod's /tmp
        env["PATH"] = env["PATH"].replace("/opt/continust/bin", str(Path(sys.executable).parent))
        env["PATH"] = env["PATH"].replace("$PATH", os.environ["PATH"])
        env["KAFKA_BOOTSTRAP_SERVERS"] = self.kafka
        if "/tmp" in mounts:
            env["TMPDIR"] = str(mounts["/tmp"])
        return env

    def writable(self, mounts: dict[str, Path]) -> list[Path]:
        """The local folders of the container's writable mounts."""
        return [mounts[m["mountPath"]] for m in self.container["volumeMounts"] if not m.get("readOnly")]

    def argv(self, mounts: dict[str, Path]) -> list[str]:
        """``unshare``: new mount and PID namespaces (the child killed with it), in which the
        root filesystem is read-only when the container asks for it (``readOnlyRootFilesystem``)
        but for the writable mounts' folders; then ENTRYPOINT + args, exec'd as PID 1."""
        (entrypoint,) = [i.exec_form() for i in self.image if i.keyword == "ENTRYPOINT"]
        tini = shutil.which(Path(entrypoint[0]).name)
        assert tini, f"{entrypoint[0]} is missing: `make tools` installs it"
        args = [self._local(a, mounts) for a in self.container["args"]]
        steps = [f"mount --bind {shlex.quote(str(f))} {shlex.quote(str(f))}" for f in self.writable(mounts)]
        if self.container.get("securityContext", {}).get("readOnlyRootFilesystem"):
            steps.append("mount -o remount,bind,ro /")
        script = " && ".join([*steps, 'exec "$@"'])
        namespaces = ["unshare", "--mount", "--propagation", "private", "--pid", "--fork", "--kill-child"]
        return [*namespaces, "sh", "-c", script, "pod", tini, *entrypoint[1:], *args]

    def start(self, log: Path) -> None:
        mounts = self.mounts()
        self.proc = subprocess.Popen(
            self.argv(mounts), env=self.env(mounts), stdout=log.open("ab"), stderr=subprocess.STDOUT
        )

    def pid_1(self) -> int | None:
        """The outer PID of the namespace's PID 1 (the entrypoint), once it runs."""
        assert self.proc is not None
        children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        try:
            found = children.read_text().split()
        except OSError:
            return None
        return int(found[0]) if found else None

    def pid_1_program(self) -> tuple[str, str]:
        """PID 1's pid inside its namespace (``NSpid``'s last field) and its program's name."""
        pid = self.pid_1()
        assert pid is not None
        status = dict(
            line.split(":\t", 1)
            for line in Path(f"/proc/{pid}/status").read_text().splitlines()
            if ":\t" in line
        )
        return status["NSpid"].split()[-1], status["Name"].strip()

    def root_read_only(self) -> bool:
        """Whether PID 1 sees the root filesystem mounted read-only."""
        pid = self.pid_1()
        assert pid is not None
        mounts = [line.split() for line in Path(f"/proc/{pid}/mounts").read_text().splitlines()]
        (root,) = [fields for fields in mounts if fields[1] == "/"]
        return "ro" in root[3].split(",")

    def terminate(self) -> None:
        """SIGTERM to PID 1, as the kubelet sends it when the pod is deleted."""
        pid = self.pid_1()
        assert pid is not None
        os.kill(pid, signal.SIGTERM)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()  # --kill-child: PID 1 and so every process of the namespace too
            self.proc.wait()
