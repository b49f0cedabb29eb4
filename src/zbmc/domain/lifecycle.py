"""Instance statuses (the provider's exact strings) and the power transitions, as one table."""

from __future__ import annotations

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

START, STOP = "start", "stop"

# (operation, from status) -> resulting status. Transitional BOOTING/STOPPING complete at once:
# bare-metal power changes are not simulated with a delay (docs/behaviour.md).
TRANSITIONS: dict[tuple[str, str], str] = {
    (START, STOPPED): RUNNING,
    (STOP, RUNNING): STOPPED,
}


def power_transition(operation: str, instance_id: str, status: str) -> str:
    """The status after ``operation``, or the spec's error for this status (instances.md §9)."""
    target = TRANSITIONS.get((operation, status))
    if target is not None:
        return target
    if status == RECYCLE:
        raise errors.InstanceRecycled(instance_id=instance_id)
    if operation == START:
        raise errors.InstanceNotStopped(instance_id=instance_id)
    raise errors.InstanceNotRunning(instance_id=instance_id)
