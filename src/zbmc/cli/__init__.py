"""The command line: ``zbmc serve | worker | admin ...``."""
