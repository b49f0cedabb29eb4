"""Property test: the creation machine of tests/test_properties.py plus reboots, terminations,
releases and injected creation faults, in random order. Each step's outcome is predicted from the
state table (zbmc.domain.lifecycle.TABLE) and the instance's status; the invariants of the
creation machine (the books balance, stock + live instances of each offering constant, no address
held twice) hold after every step, and no address is held by an instance that is gone."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import invariant, precondition, rule, run_state_machine_as_test
from sqlalchemy import select
from zenlayercloud.common.excpetion.zenlayer_cloud_sdk_exception import ZenlayerCloudSdkException

from tests.conftest import StackFactory
from tests.harness import V2022, V2026, Stack, wait_until
from tests.test_lifecycle import call
from tests.test_properties import CreationMachine
from zbmc.db.tables import addresses, instances
from zbmc.domain import lifecycle

CODES = {
    lifecycle.NOT_RUNNING: "OPERATION_DENIED_INSTANCE_NOT_RUNNING",
    lifecycle.NOT_STOPPED: "OPERATION_DENIED_INSTANCE_NOT_STOPPED",
    lifecycle.STATUS: "OPERATION_DENIED_INSTANCE_STATUS",
    lifecycle.IS_CREATING: "OPERATION_DENIED_INSTANCE_CREATING",
    lifecycle.IS_INSTALLING: "OPERATION_DENIED_INSTANCE_STATUS_INSTALLING",
    lifecycle.NOT_RECYCLED: "OPERATION_DENIED_INSTANCE_NOT_RECYCLED",
    lifecycle.IS_RECYCLED: "OPERATION_DENIED_INSTANCE_RECYCLED",
}
VERSIONS = st.sampled_from([V2022, V2026])


class LifecycleMachine(CreationMachine):
    def __init__(self, stack: Stack) -> None:
        super().__init__(stack)
        self.gone: set[str] = set()

    def live(self) -> list[str]:
        return [i for i in self.created if i not in self.gone]

    def settled(self, instance_id: str) -> Any:
        """The instance once its host operation is done (the server's worker finishes it)."""

        def done() -> Any:
            answer = call(self.tenant, V2026, "DescribeInstances", instanceIds=[instance_id])
            info = answer.dataSet[0]
            return None if info.instanceStatus in lifecycle.TRANSITIONAL else info

        return wait_until(done, timeout=30)

    def entries(self, instance_id: str) -> list[dict[str, Any]]:
        return [e for e in self.tenant.ledger() if e["instanceId"] == instance_id]

    def attempt(self, version: str, action: str, **fields: Any) -> str | None:
        try:
            call(self.tenant, version, action, **fields)
        except ZenlayerCloudSdkException as exc:
            return str(exc.code)
        return None

    @precondition(lambda self: self.live())
    @rule(index=st.integers(0, 200), version=VERSIONS)
    def reboot(self, index: int, version: str) -> None:
        live = self.live()
        instance_id = live[index % len(live)]
        info = self.settled(instance_id)
        cell = lifecycle.TABLE[(lifecycle.REBOOT, info.instanceStatus)]
        code = self.attempt(version, "RebootInstances", instanceIds=[instance_id])
        if isinstance(cell, lifecycle.Move):
            assert code is None
            assert self.settled(instance_id).instanceStatus == "RUNNING"
        else:
            assert code == CODES[cell]

    @precondition(lambda self: self.live())
    @rule(index=st.integers(0, 200), version=VERSIONS)
    def terminate(self, index: int, version: str) -> None:
        live = self.live()
        instance_id = live[index % len(live)]
        info = self.settled(instance_id)
        if self.balance < 500:  # a postpaid termination bills its started hour
            self.top_up(Decimal("5000"))
        verb = lifecycle.terminate_action(info.instanceChargeType)
        cell = lifecycle.TABLE[(verb, info.instanceStatus)]
        before = self.entries(instance_id)
        code = self.attempt(version, "TerminateInstance", instanceId=instance_id)
        if not isinstance(cell, lifecycle.Move):
            assert code == CODES[cell]
            return
        assert code is None
        new = self.entries(instance_id)[len(before) :]
        answer = call(self.tenant, V2026, "DescribeInstances", instanceIds=[instance_id])
        if cell.effect == lifecycle.REFUNDED_DELETED:
            assert answer.totalCount == 0
            paid = -sum(Decimal(str(e["amount"])) for e in before)
            assert [Decimal(str(e["amount"])) for e in new] == ([paid] if paid else [])
            self.gone.add(instance_id)
        elif cell.effect == lifecycle.RECYCLED:
            assert answer.dataSet[0].instanceStatus == "RECYCLE"
            assert len(new) <= 1  # the started hour, in full
            assert all(e["kind"] == "CHARGE" for e in new)
        else:
            shown = answer.dataSet[0]
            assert (shown.instanceStatus, shown.autoRenew) == (info.instanceStatus, False)
            assert new == []
        self.balance += sum((Decimal(str(e["amount"])) for e in new), Decimal(0))

    @precondition(lambda self: self.live())
    @rule(index=st.integers(0, 200), version=VERSIONS)
    def release(self, index: int, version: str) -> None:
        live = self.live()
        instance_id = live[index % len(live)]
        info = self.settled(instance_id)
        cell = lifecycle.TABLE[(lifecycle.RELEASE, info.instanceStatus)]
        code = self.attempt(version, "ReleaseInstances", instanceIds=[instance_id])
        if isinstance(cell, lifecycle.Move):
            assert code is None
            answer = call(self.tenant, V2022, "DescribeInstances", instanceIds=[instance_id])
            assert answer.totalCount == 0
            self.gone.add(instance_id)
        else:
            assert code == CODES[cell]

    @rule()
    def fail_next_creation(self) -> None:
        self.stack.admin.run(
            "fault", "add", "--tenant", self.tenant.tenant_id, "--operation", "CREATE"
        )

    @invariant()
    def nothing_held_by_the_gone(self) -> None:
        engine = self.stack.engine()
        try:
            with engine.begin() as conn:
                existing = {r.instance_id for r in conn.execute(select(instances.c.instance_id))}
                holders = {
                    r.instance_id
                    for r in conn.execute(
                        select(addresses.c.instance_id).where(addresses.c.instance_id.is_not(None))
                    )
                }
        finally:
            engine.dispose()
        assert holders <= existing, holders - existing
        assert not self.gone & existing


def test_lifecycle_keeps_books_stock_and_addresses(make_stack: StackFactory) -> None:
    stack = make_stack()

    class Machine(LifecycleMachine):
        def __init__(self) -> None:
            super().__init__(stack)

    run_state_machine_as_test(
        Machine,
        settings=settings(
            max_examples=8,
            stateful_step_count=14,
            deadline=None,
            phases=[Phase.explicit, Phase.reuse, Phase.generate],
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        ),
    )
