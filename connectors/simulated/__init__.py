"""A seeded, reproducible simulated market: random walks on integer ticks with a bid/ask spread."""
