"""Window semantics in integer epoch milliseconds: window definitions, assignment, stream time
and grace, aggregations, and the per-key window state. Pure domain code: no Faust, no RocksDB,
no I/O, no wall clock. The bottom layer: imports nothing of continust's."""
