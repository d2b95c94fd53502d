"""Shared test kit: builders for core records, an `eventually` helper, isolated settings."""
