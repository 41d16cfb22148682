"""The HTTP API of a worker: its server and connection limits, routes as data with the OpenAPI
document generated from them, authentication, the query routes (catalog, point, scans, top-N,
read-your-writes, standby reads), ingest, and live subscriptions over server-sent events."""
