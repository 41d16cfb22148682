"""The client commands of the ``continust`` command line that need no worker in-process
(``produce``, ``query``, ``tail``, ``health``), the demo's event generator and its console
filter. The commands that run a worker are in :mod:`agents`."""
