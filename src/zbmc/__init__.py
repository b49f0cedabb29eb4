"""zbmc: a self-hostable control plane serving the Zenlayer Cloud BMC API 2.0."""

__version__ = "0.1.0"
