"""The backtest driver: runs the pure core in process, under a simulated clock, over historical bars and quotes.

`backtest.data` loads and validates market data (outside the timed run); `backtest.engine` drives the strategy,
the risk gate, order intake and routing, the fill model and the ledger exactly as the stream agents do;
`backtest.cli` is the `tradestream backtest` command.
"""
