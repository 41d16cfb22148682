"""Window semantics in integer epoch milliseconds: window definitions, a table's spec, assignment,
stream time and grace, aggregations, the per-key window state, the partition engine and its emit
policies. Pure domain code: no Faust, no RocksDB, no I/O, no wall clock (a caller that lets
stream time follow one passes the time in). The bottom layer: imports nothing of continust's."""
