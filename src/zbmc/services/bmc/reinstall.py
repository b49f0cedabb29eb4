"""ReinstallInstance (spec instances.md §10): INSTALLING, then RUNNING (or INSTALL_FAILED)."""

from __future__ import annotations

from typing import Any

from pydantic import Field
from sqlalchemy import select, update

from zbmc.context import Context
from zbmc.db.tables import images, instances
from zbmc.domain import lifecycle
from zbmc.errors import ImageNotFound
from zbmc.registry import action
from zbmc.services.bmc.shapes import EmptyResponse
from zbmc.store import instances as store
from zbmc.wire import RequiredStr, WireModel


class CustomRaid(WireModel):
    raid_type: int
    disk_sequence: list[int]


class RaidConfig(WireModel):
    raid_type: int | None = None
    custom_raids: list[CustomRaid] | None = None


class Partition(WireModel):
    fs_type: str
    fs_path: str
    size: int


class NicNames(WireModel):
    wan_name: str | None = None
    lan_name: str | None = None


class ReinstallInstanceRequest(WireModel):
    instance_id: RequiredStr
    image_id: str | None = None
    ipxe_url: str | None = None
    hostname: str | None = None
    password: str | None = None
    key_id: str | None = None
    ssh_keys: list[str] | None = None  # 2022-11-20 only; accepted in both (spec README §8)
    raid_config: RaidConfig | None = None
    partitions: list[Partition] | None = None
    nic: NicNames | None = None
    user_data: str | None = Field(default=None, max_length=32 * 1024)


@action("ReinstallInstance", request=ReinstallInstanceRequest, response=EmptyResponse, write=True)
def reinstall_instance(ctx: Context, req: ReinstallInstanceRequest) -> EmptyResponse:
    """Install the operating system again (the system disk is wiped): INSTALLING, then RUNNING,
    or INSTALL_FAILED. Omitted settings keep the instance's current ones."""
    row = store.load(ctx.tx, ctx.tenant_id, req.instance_id, lock=True)
    move = lifecycle.decide(lifecycle.REINSTALL, req.instance_id, row.status)
    conn = ctx.conn
    if req.image_id:
        found = conn.execute(select(images.c.image_id).where(images.c.image_id == req.image_id))
        if found.first() is None:
            raise ImageNotFound(image_id=req.image_id)
    values: dict[str, Any] = {
        "status": move.status,
        "host_op": move.host_op,
        "host_op_due": ctx.now,
        "host_op_attempts": 0,
        "host_op_error": None,
    }
    if req.image_id or req.ipxe_url:
        values |= {"image_id": req.image_id or None, "ipxe_url": req.ipxe_url}
    if req.hostname is not None:
        values["hostname"] = req.hostname
    if req.key_id is not None or req.password is not None:
        values["key_id"] = req.key_id
    if req.raid_config is not None:
        values["raid_config"] = req.raid_config.model_dump(by_alias=True)
    if req.partitions is not None:
        values["partitions"] = [p.model_dump(by_alias=True) for p in req.partitions]
    if req.nic is not None:
        values["nic"] = req.nic.model_dump(by_alias=True)
    conn.execute(update(instances).where(instances.c.instance_id == row.instance_id).values(values))
    return EmptyResponse()
