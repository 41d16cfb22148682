"""Everything around the window engine that needs no Faust: the pipeline plan (``plan``), the
HTTP API (``api``), the client commands (``cli``), Kafka plumbing (``kafka``) and telemetry
(``telemetry``). Imports :mod:`windows`, never :mod:`agents`; inside, ``cli`` over ``api`` over
``kafka`` and ``telemetry`` over ``plan`` (``pyproject.toml``'s import-linter contracts)."""
