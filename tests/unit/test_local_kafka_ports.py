"""Whose broker answers on a port (:func:`streams.kafka.local_kafka.listens_on`): two checkouts that
start a broker on the same port at the same moment must each know whether the broker answering
is their own, or one of them runs its suite against the other's broker and loses it when the
other suite ends."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

from streams.kafka.local_kafka import listens_on


def test_a_listening_socket_is_found_on_its_process_and_no_other() -> None:
    with socket.socket() as server, socket.socket() as idle:
        server.bind(("127.0.0.1", 0))
        server.listen()
        idle.bind(("127.0.0.1", 0))  # bound, not listening
        port, quiet_port = server.getsockname()[1], idle.getsockname()[1]
        assert listens_on(os.getpid(), port)
        assert not listens_on(os.getpid(), quiet_port)
        other = subprocess.Popen(
            [sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE
        )
        try:
            assert not listens_on(other.pid, port)
        finally:
            other.communicate(b"")
    assert not listens_on(os.getpid(), port)  # closed
