"""Sinks: batch consumers that keep the Postgres read model (and the latest quotes in Redis) in step with Kafka."""
