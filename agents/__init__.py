"""Faust agents: thin drivers that read a record, call the pure core, and emit the result."""
