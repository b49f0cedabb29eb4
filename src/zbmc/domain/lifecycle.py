"""Instance statuses (the provider's exact strings) and the state machine of spec instances.md
§14 as ONE table: what every instance action does from every status, or which error it answers.

The actions move an instance into a transitional status and schedule a host operation; the worker
carries the operation out through the host driver (zbmc.hosts) and moves the instance on to its
final status. Terminate and Release have effects beyond a status (billing, deletion): the table
names them and zbmc.billing.terminations carries them out.
"""

from __future__ import annotations

from typing import NamedTuple

from zbmc import errors

PENDING, CREATING, CREATE_FAILED = "PENDING", "CREATING", "CREATE_FAILED"
INSTALLING, INSTALL_FAILED = "INSTALLING", "INSTALL_FAILED"
RUNNING, STOPPED, BOOTING, STOPPING, RECYCLE = (
    "RUNNING",
    "STOPPED",
    "BOOTING",
    "STOPPING",
    "RECYCLE",
)
STATUSES = (
    PENDING,
    CREATING,
    CREATE_FAILED,
    INSTALLING,
    INSTALL_FAILED,
    RUNNING,
    STOPPED,
    BOOTING,
    STOPPING,
    RECYCLE,
)
# Statuses a host operation is in progress in: no other operation may start (spec §6, §10).
TRANSITIONAL = frozenset({PENDING, CREATING, INSTALLING, BOOTING, STOPPING})

# Instance actions of the table (spec §14 columns; Terminate split by charge type).
START, STOP, REBOOT, REINSTALL = "Start", "Stop", "Reboot", "Reinstall"
TERMINATE_POSTPAID, TERMINATE_PREPAID, RELEASE = (
    "Terminate (POSTPAID)",
    "Terminate (PREPAID)",
    "Release",
)
ACTIONS = (START, STOP, REBOOT, REINSTALL, TERMINATE_POSTPAID, TERMINATE_PREPAID, RELEASE)

# Host operations (instances.host_op), carried out by the worker through the host driver.
OP_CREATE, OP_START, OP_STOP, OP_REBOOT, OP_INSTALL = (
    "CREATE",
    "START",
    "STOP",
    "REBOOT",
    "INSTALL",
)
HOST_OPS = (OP_CREATE, OP_START, OP_STOP, OP_REBOOT, OP_INSTALL)
# What a host operation ends in: (on success, on an injected fault or None if none applies).
HOST_OP_RESULTS: dict[str, tuple[str, str | None]] = {
    OP_CREATE: (RUNNING, CREATE_FAILED),
    OP_START: (RUNNING, None),
    OP_STOP: (STOPPED, None),
    OP_REBOOT: (RUNNING, None),
    OP_INSTALL: (RUNNING, INSTALL_FAILED),
}

# Effects beyond a status change
RECYCLED, DELETED, REFUNDED_DELETED, UNSUBSCRIBED = (
    "recycled",  # RECYCLE now: postpaid metering stops, released 24 h later
    "deleted",  # the instance is released (addresses, stock) and its row removed
    "refunded and deleted",  # a failed creation: the prepaid amount back in full, then deleted
    "unsubscribed",  # autoRenew off, status kept; RECYCLE when the period ends (spec Q8)
)


class Move(NamedTuple):
    """What an allowed action does: the new status (None: unchanged), the host operation it
    schedules (None: none) and its effect beyond a status (None: none)."""

    status: str | None = None
    host_op: str | None = None
    effect: str | None = None


# Denials, by the code suffix the spec's table uses (OPERATION_DENIED_INSTANCE_<X>).
NOT_STOPPED: type[errors.ApiError] = errors.InstanceNotStopped
NOT_RUNNING: type[errors.ApiError] = errors.InstanceNotRunning
STATUS: type[errors.ApiError] = errors.InstanceStatusDenied
IS_CREATING: type[errors.ApiError] = errors.InstanceCreating
IS_INSTALLING: type[errors.ApiError] = errors.InstanceStatusInstalling
NOT_RECYCLED: type[errors.ApiError] = errors.InstanceNotRecycled
IS_RECYCLED: type[errors.ApiError] = errors.InstanceRecycled

Cell = Move | type[errors.ApiError]

_BOOT = Move(BOOTING, OP_REBOOT)
_INSTALL = Move(INSTALLING, OP_INSTALL)
_RECYCLE = Move(RECYCLE, None, RECYCLED)
_UNSUBSCRIBE = Move(None, None, UNSUBSCRIBED)
_REFUND = Move(None, None, REFUNDED_DELETED)

# spec instances.md §14, row by row; columns in the order of ACTIONS.
_ROWS: dict[tuple[str, ...], tuple[Cell, ...]] = {
    (PENDING, CREATING): (
        NOT_STOPPED,
        NOT_RUNNING,
        STATUS,
        IS_CREATING,
        IS_CREATING,
        IS_CREATING,
        NOT_RECYCLED,
    ),
    (CREATE_FAILED,): (NOT_STOPPED, NOT_RUNNING, STATUS, STATUS, _REFUND, _REFUND, NOT_RECYCLED),
    (RUNNING,): (
        NOT_STOPPED,
        Move(STOPPING, OP_STOP),
        _BOOT,
        _INSTALL,
        _RECYCLE,
        _UNSUBSCRIBE,
        NOT_RECYCLED,
    ),
    (STOPPED,): (
        Move(BOOTING, OP_START),
        NOT_RUNNING,
        _BOOT,
        _INSTALL,
        _RECYCLE,
        _UNSUBSCRIBE,
        NOT_RECYCLED,
    ),
    (BOOTING, STOPPING): (
        NOT_STOPPED,
        NOT_RUNNING,
        STATUS,
        STATUS,
        _RECYCLE,
        _UNSUBSCRIBE,
        NOT_RECYCLED,
    ),
    (INSTALLING,): (
        NOT_STOPPED,
        NOT_RUNNING,
        STATUS,
        IS_INSTALLING,
        IS_INSTALLING,
        IS_INSTALLING,
        NOT_RECYCLED,
    ),
    (INSTALL_FAILED,): (
        NOT_STOPPED,
        NOT_RUNNING,
        STATUS,
        _INSTALL,
        _RECYCLE,
        _UNSUBSCRIBE,
        NOT_RECYCLED,
    ),
    (RECYCLE,): (
        IS_RECYCLED,
        IS_RECYCLED,
        IS_RECYCLED,
        IS_RECYCLED,
        IS_RECYCLED,
        IS_RECYCLED,
        Move(None, None, DELETED),
    ),
}

TABLE: dict[tuple[str, str], Cell] = {
    (action, status): cell
    for statuses, cells in _ROWS.items()
    for status in statuses
    for action, cell in zip(ACTIONS, cells, strict=True)
}


def terminate_action(instance_charge_type: str) -> str:
    return TERMINATE_PREPAID if instance_charge_type == "PREPAID" else TERMINATE_POSTPAID


def decide(action: str, instance_id: str, status: str) -> Move:
    """What ``action`` does to an instance in ``status``, or raise the spec's error for it."""
    cell = TABLE[(action, status)]
    if isinstance(cell, Move):
        return cell
    raise cell(instance_id=instance_id, status=status)
