"""`zbmc agent`: a network host's kernel enforces the caps in the database (docs/drivers.md)."""
