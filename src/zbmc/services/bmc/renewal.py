"""RenewInstance (spec instances.md §12, Q-I2)."""

from __future__ import annotations

from zbmc.billing import ledger, renewals
from zbmc.context import Context
from zbmc.domain.changes import POSTPAID
from zbmc.errors import BalanceInsufficient
from zbmc.registry import action
from zbmc.services.bmc.shapes import EmptyResponse, InstanceIdRequest
from zbmc.store import instances as store


@action("RenewInstance", request=InstanceIdRequest, response=EmptyResponse, write=True)
def renew_instance(ctx: Context, req: InstanceIdRequest) -> EmptyResponse:
    """Pay the next prepaid period now (or bring an expired instance back from the recycle
    bin for a new period starting now); turns auto-renew on. A POSTPAID instance: no-op."""
    row = store.load(ctx.tx, ctx.tenant_id, req.instance_id, lock=True)
    if row.instance_charge_type == POSTPAID:
        return EmptyResponse()
    if renewals.renew_on_request(ctx.conn, row, ctx.now) is None:
        balance = ledger.balance(ctx.tx, ctx.tenant_id) or 0
        amount = renewals.period_quote(row).cents
        raise BalanceInsufficient(balance=balance / 100, amount=amount / 100)
    return EmptyResponse()
