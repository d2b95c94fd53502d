"""The HTTP control layer: reads the Postgres read model and Redis, and submits order intents to Kafka.

The API never computes trading state and never approves an order: an intent it accepts goes through the same
risk gate as a strategy's.
"""
