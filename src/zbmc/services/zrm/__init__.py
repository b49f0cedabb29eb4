"""The resource manager service (``/api/v2/zrm``, version 2025-10-14): tags on BMC instances.
Importing this package registers every action."""

from zbmc.services.zrm import resources, tags

__all__ = ["resources", "tags"]
