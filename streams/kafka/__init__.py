"""Kafka plumbing: how clients authenticate (TLS, SASL) and check their credentials, topic
look-up and creation, the default partitioner, whether the cluster is reachable, and the local
single-node broker for development and tests."""
