"""Local service management (Kafka, PostgreSQL, Redis) for development and tests; see services.py."""
