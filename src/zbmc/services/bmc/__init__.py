"""The bmc service. Importing this package registers every action."""

from zbmc.services.bmc import (
    available_resources,
    bandwidth,
    creation,
    hardware,
    images,
    instance_types,
    instances,
    internet_status,
    power,
    reinstall,
    renewal,
    resource_groups,
    termination,
    traffic,
    traffic_package,
    zones,
)

__all__ = [
    "available_resources",
    "bandwidth",
    "creation",
    "hardware",
    "images",
    "instance_types",
    "instances",
    "internet_status",
    "power",
    "reinstall",
    "renewal",
    "resource_groups",
    "termination",
    "traffic",
    "traffic_package",
    "zones",
]
