"""The ``continust`` command line (:mod:`agents.cli.commands`: ``python -m agents.cli``, the
``continust`` script) and the commands that run a worker in-process: ``worker`` (its argv for
child processes: :mod:`agents.cli.worker_command`) and the ``demo`` with its examples and
console log. The client commands that need no worker are in :mod:`streams.cli`."""

from agents.cli.commands import main

__all__ = ["main"]
