"""ReinstallInstance (spec instances.md §10): INSTALLING, then RUNNING (or INSTALL_FAILED).

The settings are checked with CreateInstances' rules (zbmc.domain.creation), in the order of
spec Q14: unknown image (404), then formats (400), then the instance's status (403)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update

from zbmc import errors
from zbmc.context import Context
from zbmc.db.tables import images, instance_types, instances
from zbmc.domain import creation, lifecycle
from zbmc.registry import action
from zbmc.services.bmc.creation import (
    IPXE_URL,
    MAX_USER_DATA,
    NicNames,
    Partition,
    RaidConfig,
    storage,
)
from zbmc.services.bmc.shapes import EmptyResponse
from zbmc.store import instances as store
from zbmc.wire import RequiredStr, WireModel


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
    user_data: str | None = None


def _image(ctx: Context, row: Any, model: Any, req: ReinstallInstanceRequest) -> Any:
    """The image to install: the one asked for (404 unless it exists for this model), else the
    current one (none with an iPXE URL)."""
    wanted = req.image_id or (None if req.ipxe_url else row.image_id)
    if wanted is None:
        return None
    image = ctx.conn.execute(select(images).where(images.c.image_id == wanted)).first()
    if image is None or (req.image_id and wanted not in (model.image_ids or [])):
        raise errors.ImageNotFound(image_id=wanted)
    return image


@action("ReinstallInstance", request=ReinstallInstanceRequest, response=EmptyResponse, write=True)
def reinstall_instance(ctx: Context, req: ReinstallInstanceRequest) -> EmptyResponse:
    """Install the operating system again (the system disk is wiped): INSTALLING, then RUNNING,
    or INSTALL_FAILED. Omitted settings keep the instance's current ones; no password and no
    key means a random password (spec Q10), which zbmc does not keep."""
    row = store.load(ctx.tx, ctx.tenant_id, req.instance_id, lock=True)
    model = ctx.conn.execute(
        select(instance_types).where(instance_types.c.instance_type_id == row.instance_type_id)
    ).one()
    image = _image(ctx, row, model, req)
    if req.ipxe_url is not None:
        if req.image_id:
            raise errors.InvalidParameter(detail="give imageId or ipxeUrl, not both")
        if len(req.ipxe_url) > 1024 or not IPXE_URL.match(req.ipxe_url):
            raise errors.InvalidParameter(
                detail="invalid parameter `ipxeUrl`: an http(s) URL or `netboot`"
            )
    hostname = row.hostname if req.hostname is None else creation.hostnames(req.hostname, 1)[0]
    creation.check_login(req.password, req.key_id, req.ssh_keys)
    if req.key_id is not None and (len(req.key_id) > 64 or not req.key_id.strip()):
        raise errors.InvalidParameter(detail="invalid parameter `keyId`")
    if req.key_id and image is not None and image.os_type.lower() == "windows":
        raise errors.InvalidParameter(detail="keyId cannot be used with a Windows image")
    raid, partitions = storage(req.raid_config, req.partitions, model, image)
    current = row.nic or {}
    nic = req.nic or NicNames()
    wan, lan = creation.nic_names(
        nic.wan_name if nic.wan_name is not None else current.get("wanName"),
        nic.lan_name if nic.lan_name is not None else current.get("lanName"),
        bool(model.is_ha),
    )
    if req.user_data is not None and len(req.user_data.encode()) > MAX_USER_DATA:
        raise errors.InvalidParameter(detail="invalid parameter `userData`: at most 32 KB")
    move = lifecycle.decide(lifecycle.REINSTALL, req.instance_id, row.status)
    values: dict[str, Any] = {
        "status": move.status,
        "host_op": move.host_op,
        "host_op_due": ctx.now,
        "host_op_attempts": 0,
        "host_op_error": None,
        "image_id": image.image_id if image is not None else None,
        "ipxe_url": req.ipxe_url,
        "hostname": hostname,
        "key_id": req.key_id,
        "nic": {"wanName": wan, "lanName": lan},
    }
    if req.raid_config is not None:
        values["raid_config"] = raid
    if req.partitions is not None:
        values["partitions"] = partitions
    ctx.conn.execute(
        update(instances).where(instances.c.instance_id == row.instance_id).values(values)
    )
    return EmptyResponse()
