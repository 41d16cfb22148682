"""Faust agents that run pipelines: topic merging and repartitioning, windowed aggregation,
emission, and the transactional plumbing around them."""
