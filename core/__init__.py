"""The pure core: domain model, rules, state machines, ledger math and the fill model.

Nothing in this package performs I/O or imports Kafka, database or HTTP libraries
(tests/unit/test_core_purity.py enforces it). Agents, the backtester and the API drive it.
"""
