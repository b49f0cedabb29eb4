"""Request and response shapes that several actions share."""

from __future__ import annotations

from zbmc.wire import RequiredStr, StrList, WireModel


class InstanceIdRequest(WireModel):
    instance_id: RequiredStr


class InstanceIdsRequest(WireModel):
    instance_ids: StrList


class OrderResponse(WireModel):
    order_number: str | None = None


class EmptyResponse(WireModel):
    pass
