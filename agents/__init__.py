"""Faust agents that run pipelines: topic merging and repartitioning, windowed aggregation,
emission, and the transactional plumbing around them; the worker, and the ``continust`` command
line and demo that start it. The top layer: imports ``streams`` and ``windows``, nothing imports
it."""
