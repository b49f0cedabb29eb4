"""ReinstallInstance through the SDK: the settings are checked with CreateInstances' rules and
codes (spec §0, §10), a refused request changes nothing, and an accepted one goes INSTALLING ->
RUNNING with the new image, hostname and NIC names."""

from __future__ import annotations

from typing import Any

import pytest
from zenlayercloud.common.excpetion.zenlayer_cloud_sdk_exception import ZenlayerCloudSdkException

from tests.harness import V2022, V2026, Stack, Tenant, wait_until
from tests.test_lifecycle import call, describe, models


def reinstall(tenant: Tenant, version: str, instance_id: str, **fields: Any) -> None:
    call(tenant, version, "ReinstallInstance", instanceId=instance_id, **fields)


CASES: list[tuple[dict[str, Any], str, int]] = [
    ({"imageId": "img-nowhere"}, "INVALID_IMAGE_NOT_FOUND", 404),
    ({"hostname": "-bad-"}, "INVALID_PARAMETER_HOSTNAME_MALFORMED", 400),
    ({"hostname": "h" * 65}, "INVALID_PARAMETER_HOSTNAME_EXCEED", 400),
    ({"password": "short"}, "INVALID_PARAMETER_VALUE_PASSWORD_MALFORMED", 400),
    (
        {"password": "Passw0rd!x", "keyId": "key-1"},
        "INVALID_PARAMETER_INSTANCE_LOGIN_CONFLICT",
        400,
    ),
    ({"nic": {"wanName": "lan9", "lanName": "lan0"}}, "INVALID_PARAMETER_NIC_NAME_MALFORMED", 400),
    ({"raidConfig": {"raidType": 5}}, "INVALID_INSTANCE_TYPE_RAID_NOT_SUPPORT", 400),
    (
        {"raidConfig": {"raidType": 1, "customRaids": [{"raidType": 1, "diskSequence": [1, 2]}]}},
        "INVALID_RAID_CONFIG_FAST_CUSTOM_CONFLICT",
        400,
    ),
    (
        {
            "imageId": "img-ubuntu-2204",
            "partitions": [{"fsPath": "/data", "fsType": "ext4", "size": 10}],
        },
        "INVALID_PARTITION_MISSING_REQUIRED_FILE_PATH",
        400,
    ),
    (
        {"partitions": [{"fsPath": "/", "fsType": "ext4", "size": 10}]},
        "INVALID_PARTITION_IMAGE_NOT_SET",
        400,
    ),
    ({"ipxeUrl": "ftp://nope"}, "INVALID_PARAMETER", 400),
]


@pytest.mark.parametrize(("fields", "code", "status"), CASES, ids=[c[1] for c in CASES])
def test_bad_settings_are_refused_and_change_nothing(
    tenant: Tenant, version: str, fields: dict[str, Any], code: str, status: int
) -> None:
    instance_id = tenant.instance()
    before = str(describe(tenant, instance_id))
    with pytest.raises(ZenlayerCloudSdkException) as refused:
        reinstall(tenant, version, instance_id, **fields)
    assert refused.value.code == code, refused.value.message
    raw = tenant.stack.raw(
        {"instanceId": instance_id, **fields},
        action="ReinstallInstance",
        version=version,
        key=(tenant.access_key_id, tenant.access_key_password),
    )
    assert (raw.status_code, raw.json()["code"]) == (status, code)
    assert str(describe(tenant, instance_id)) == before


def test_v2022_ssh_keys_conflict_with_a_password(tenant: Tenant) -> None:
    instance_id = tenant.instance()
    request = models(V2022).ReinstallInstanceRequest()
    request.instanceId, request.password = instance_id, "Passw0rd!x"
    request.sshKeys = ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPv0 a@b"]
    with pytest.raises(ZenlayerCloudSdkException) as refused:
        tenant.client(V2022).ReinstallInstance(request)
    assert refused.value.code == "INVALID_PARAMETER_INSTANCE_LOGIN_CONFLICT"


def test_an_unknown_image_is_404_before_the_status(tenant: Tenant, version: str) -> None:
    creating = tenant.instance(status="CREATING")  # spec Q14: not found before state
    with pytest.raises(ZenlayerCloudSdkException) as refused:
        reinstall(tenant, version, creating, imageId="img-nowhere")
    assert refused.value.code == "INVALID_IMAGE_NOT_FOUND"


def test_reinstall_installs_the_new_settings(stack: Stack, version: str) -> None:
    tenant = stack.tenant()
    instance_id = tenant.instance(image="img-centos-79", hostname="old-name")
    reinstall(
        tenant,
        version,
        instance_id,
        imageId="img-ubuntu-2404",
        hostname="web-[7,2]",
        password="Passw0rd!x",
        nic={"wanName": "public0", "lanName": "private0"},
        raidConfig={"raidType": 1},
        partitions=[
            {"fsPath": "/", "fsType": "ext4", "size": 100},
            {"fsPath": "/data", "fsType": "ext4", "size": 200},
        ],
    )
    wait_until(lambda: describe(tenant, instance_id).instanceStatus == "RUNNING")
    info = describe(tenant, instance_id)
    assert (info.imageId, info.hostname) == ("img-ubuntu-2404", "web-07")
    assert (info.nic.wanName, info.nic.lanName) == ("public0", "private0")
    # the same again, keeping everything: omitted settings stay
    reinstall(tenant, V2026, instance_id)
    wait_until(lambda: describe(tenant, instance_id).instanceStatus == "RUNNING")
    again = describe(tenant, instance_id)
    assert (again.imageId, again.hostname, again.nic.wanName) == (
        "img-ubuntu-2404",
        "web-07",
        "public0",
    )
