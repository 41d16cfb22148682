"""``make bench``: continust against the raw-consumer ceiling, Faust and Quix Streams, on the
same job and the same preloaded events, on the local Kafka broker (issue 5).

Run it as ``python -m bench --help``. Every contender runs in a child process of its own (so its
CPU time and peak RSS are its own), with a fresh consumer group and state directory per run, and
its results are checked against the reference aggregation before it is timed. Continust and
Quix are compared like with like: state only, final emission, and (labelled as such) continust's
coalesced updates per commit against Quix's record per event; :mod:`bench.contenders` lists the
rows and how each one's results are read back and checked.
"""
