"""Readers of historical data files: each yields, in file order, parsed records and the rows it could not parse."""
