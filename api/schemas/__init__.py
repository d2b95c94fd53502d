"""Request and response schemas, one module per resource. Money and quantities are decimal strings in JSON."""
