"""Query functions: the SQL the handlers and the worker share."""
