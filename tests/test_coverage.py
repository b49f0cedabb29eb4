"""The action coverage table: zbmc implements only actions the official SDK has (in both API
versions), and docs/coverage.md is what scripts/coverage_table.py generates."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

from zbmc.registry import load_actions
from zbmc.wire import V2022, V2026

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "coverage_table", ROOT / "scripts" / "coverage_table.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_registered_action_is_in_the_sdk_clients_of_its_versions(
    generator: ModuleType,
) -> None:
    actions = {name: spec for (service, name), spec in load_actions().items() if service == "bmc"}
    assert actions, "no actions registered"
    for version in (V2022, V2026):
        served = {name for name, spec in actions.items() if version in spec.versions}
        missing = served - generator.sdk_actions(version)
        assert not missing, f"not in the {version} SDK client: {sorted(missing)}"
        # and an action of the SDK's client is served in that version if it is served at all
        absent = {name for name in set(actions) - served if name in generator.sdk_actions(version)}
        assert not absent, f"served, but not in {version}: {sorted(absent)}"


def test_sdk_action_lists_are_the_clients_methods(generator: ModuleType) -> None:
    v2022, v2026 = generator.sdk_actions(V2022), generator.sdk_actions(V2026)
    # spec README §8: the version-specific extras on each side
    assert {"ModifyBackendWeight", "ModifyLoadBalancerBandwidth"} <= v2022 - v2026
    assert {"ResetInstanceIpmiPassword", "DescribeInstanceIpmiUrl"} <= v2026 - v2022
    assert {"ModifyInstanceBandwidth", "ModifyInstanceTrafficPackage"} <= v2022 & v2026
    assert not {name for name in v2022 | v2026 if not name[0].isupper()}


def test_every_registered_zrm_action_is_in_the_sdk_client(generator: ModuleType) -> None:
    registered = {name for service, name in load_actions() if service == "zrm"}
    assert {"ModifyResourceTags", "DescribeTags", "DescribeResourceTags"} <= registered
    assert registered <= generator.sdk_zrm_actions()
    assert {service for service, _ in load_actions()} == {"bmc", "zrm"}


def test_zrm_table_lists_every_zrm_action_once(generator: ModuleType) -> None:
    section = generator.render().split(generator.ZRM_HEADING)[1]
    rows = [line for line in section.splitlines() if line.startswith("| ")][1:]
    cells = [[cell.strip() for cell in row.split("|")[1:-1]] for row in rows]
    registered = {name for service, name in load_actions() if service == "zrm"}
    assert [c[0] for c in cells] == sorted(generator.sdk_zrm_actions() | registered)
    for name, in_sdk, done in cells:
        assert (in_sdk, done) == ("yes", "yes" if name in registered else "no"), name


def test_table_lists_every_action_once(generator: ModuleType) -> None:
    bmc = generator.render().split(generator.ZRM_HEADING)[0]
    rows = [line for line in bmc.splitlines() if line.startswith("| ")][1:]
    names = [row.split("|")[1].strip() for row in rows]
    assert len(names) == len(set(names))
    registered = {name for service, name in load_actions() if service == "bmc"}
    expected = generator.sdk_actions(V2022) | generator.sdk_actions(V2026) | registered
    assert set(names) == expected
    for row in rows:
        cells = [cell.strip() for cell in row.split("|")[1:-1]]
        assert cells[3] == ("yes" if cells[0] in registered else "no"), row
        versions = load_actions()[("bmc", cells[0])].versions if cells[0] in registered else ()
        assert cells[4] == (", ".join(versions) if versions else "-"), row


def test_docs_coverage_is_up_to_date(generator: ModuleType) -> None:
    path = ROOT / "docs" / "coverage.md"
    assert path.read_text(encoding="utf-8") == generator.render(), (
        "docs/coverage.md is stale: run python scripts/coverage_table.py"
    )
    assert generator.main(["--check"]) == 0
