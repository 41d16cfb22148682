"""The programs the harness runs as child processes, one per contender that is not continust
(``python -m bench.jobs.<name> ...``). They speak :mod:`bench.jobs.markers` on stdout."""
