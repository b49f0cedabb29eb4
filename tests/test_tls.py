"""HTTPS: ``zbmc serve --tls-dev`` (a local CA under the data directory) and ``--tls-cert`` /
``--tls-key``, driven through the official SDK with ``Config(scheme="https",
certification=...)`` in both API versions, group commit's held writes included."""

from __future__ import annotations

import ipaddress
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from cryptography import x509
from zenlayercloud.common.excpetion.zenlayer_cloud_sdk_exception import (
    ZenlayerCloudSdkException,
)

from tests.conftest import StackFactory
from tests.harness import V2022, V2026, Stack, wait_until
from tests.test_bandwidth import call
from zbmc.certificates import check_pair, ensure_dev_certificates, names_for


def _https_stack(make_stack: StackFactory, tmp_path: Path, **env: str) -> Stack:
    stack = make_stack(start=False)
    stack.tls_ca = tmp_path / "data" / "tls" / "ca.pem"
    stack.start(tmp_path / "server.log", ZBMC_DATA_DIR=str(tmp_path / "data"), **env)
    return stack


@pytest.mark.parametrize("version", [V2022, V2026])
def test_sdk_over_https_with_the_development_ca(
    make_stack: StackFactory, tmp_path: Path, version: str
) -> None:
    stack = _https_stack(make_stack, tmp_path, ZBMC_TLS_DEV="1")
    log = (tmp_path / "server.log").read_text()
    assert f"SSL_CERT_FILE={stack.tls_ca}" in log  # how to trust it is printed
    tenant = stack.tenant()
    instance_id = tenant.instance()
    assert call(tenant, version, "DescribeZones").zoneSet
    order = call(
        tenant, version, "ModifyInstanceBandwidth", instanceId=instance_id, bandwidthOutMbps=150
    ).orderNumber
    assert order
    status = wait_until(
        lambda: (
            (
                s := call(tenant, version, "DescribeInstanceInternetStatus", instanceId=instance_id)
            ).internetMaxBandwidthOut
            == 150
            and s
        )
    )
    assert status.internetMaxBandwidthOut == 150
    assert any(o["orderNumber"] == order for o in tenant.orders())


def test_https_rejects_untrusting_and_plain_clients(
    make_stack: StackFactory, tmp_path: Path
) -> None:
    from zenlayercloud.bmc.v20260201 import bmc_client, models
    from zenlayercloud.common.config import Config
    from zenlayercloud.common.credential import Credential

    stack = _https_stack(make_stack, tmp_path, ZBMC_TLS_DEV="1")
    tenant = stack.tenant()
    # without certification=..., the SDK trusts certifi's bundle, which lacks the local CA
    untrusting = bmc_client.BmcClient(
        Credential(tenant.access_key_id, tenant.access_key_password),
        Config(scheme="https", domain=stack.host, rate_limit_max_retries=0),
    )
    with pytest.raises(ZenlayerCloudSdkException) as caught:
        untrusting.DescribeZones(models.DescribeZonesRequest())
    assert caught.value.code == "NETWORK_ERROR"
    assert "CERTIFICATE_VERIFY_FAILED" in str(caught.value.message)
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://{stack.host}/healthz", timeout=5)
    assert requests.get(f"https://{stack.host}/healthz", verify=stack.verify, timeout=5).ok


def test_concurrent_calls_over_https_share_commits(
    make_stack: StackFactory, tmp_path: Path
) -> None:
    """Group commit holds a batch's response writes on the TLS transport too
    (zbmc.writes): every concurrent caller gets its own, complete answer."""
    stack = _https_stack(make_stack, tmp_path, ZBMC_TLS_DEV="1")
    tenant = stack.tenant(balance="100000")
    instances = [tenant.instance(name=f"tls-{n}") for n in range(8)]

    def modify(instance_id: str) -> str:
        order = call(
            tenant, V2026, "ModifyInstanceBandwidth", instanceId=instance_id, bandwidthOutMbps=120
        )
        return str(order.orderNumber)

    with ThreadPoolExecutor(8) as pool:
        orders = list(pool.map(modify, instances))
    assert len(set(orders)) == len(instances)
    recorded = {o["orderNumber"]: o["instanceId"] for o in tenant.orders()}
    assert {recorded[order] for order in orders} == set(instances)


def test_operator_certificate_and_key(make_stack: StackFactory, tmp_path: Path) -> None:
    issued = ensure_dev_certificates(tmp_path / "mine", "127.0.0.1")
    stack = make_stack(start=False)
    stack.tls_ca = issued.ca
    stack.start(
        tmp_path / "server.log",
        ZBMC_TLS_CERT=str(issued.cert),
        ZBMC_TLS_KEY=str(issued.key),
        ZBMC_DATA_DIR=str(tmp_path / "data"),
    )
    tenant = stack.tenant()
    assert call(tenant, V2026, "DescribeZones").zoneSet
    assert not (tmp_path / "data" / "tls").exists()  # no development CA was made


def _serve(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "zbmc", "serve", *args],
        env={"PATH": "/usr/bin:/bin", **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_bad_tls_settings_are_refused_before_serving(tmp_path: Path) -> None:
    first = ensure_dev_certificates(tmp_path / "a", "127.0.0.1")
    second = ensure_dev_certificates(tmp_path / "b", "127.0.0.1")
    data = f"--data-dir={tmp_path / 'data'}"
    mismatched = _serve(data, "--tls-cert", str(first.cert), "--tls-key", str(second.key))
    assert mismatched.returncode == 2
    assert "cannot be used together" in mismatched.stderr
    alone = _serve(data, "--tls-cert", str(first.cert))
    assert alone.returncode == 2
    assert "go together" in alone.stderr
    env_alone = _serve(data, ZBMC_TLS_KEY=str(first.key))
    assert env_alone.returncode == 2
    assert "ZBMC_TLS_CERT and ZBMC_TLS_KEY go together" in env_alone.stderr
    missing = _serve(data, "--tls-cert", "/nonexistent.pem", "--tls-key", str(first.key))
    assert missing.returncode == 2
    assert "does not exist" in missing.stderr


def test_development_ca_is_kept_and_leaves_follow_the_address(tmp_path: Path) -> None:
    first = ensure_dev_certificates(tmp_path, "127.0.0.1")
    assert first.issued
    again = ensure_dev_certificates(tmp_path, "127.0.0.1")
    assert not again.issued
    assert again.cert.read_bytes() == first.cert.read_bytes()
    ca_before = first.ca.read_bytes()
    moved = ensure_dev_certificates(tmp_path, "10.1.2.3")
    assert moved.issued
    assert moved.ca.read_bytes() == ca_before  # trusted once, covers later certificates
    leaf = x509.load_pem_x509_certificate(moved.cert.read_bytes())
    names = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert ipaddress.ip_address("10.1.2.3") in names.get_values_for_type(x509.IPAddress)
    assert "localhost" in names.get_values_for_type(x509.DNSName)
    assert oct(moved.key.stat().st_mode & 0o777) == "0o600"
    check_pair(moved.cert, moved.key)


def test_names_for_listen_addresses() -> None:
    assert names_for("127.0.0.1") == (["localhost"], ["127.0.0.1", "::1"])
    dns, ips = names_for("zbmc.example.test")
    assert "zbmc.example.test" in dns
    assert "127.0.0.1" in ips
    dns, _ = names_for("0.0.0.0")
    assert len(dns) == 2  # localhost and this machine's name


def test_sdk_error_envelope_over_https(make_stack: StackFactory, tmp_path: Path) -> None:
    stack = _https_stack(make_stack, tmp_path, ZBMC_TLS_DEV="1")
    tenant = stack.tenant()
    with pytest.raises(ZenlayerCloudSdkException) as caught:
        call(tenant, V2026, "ModifyInstanceBandwidth", instanceId="nope", bandwidthOutMbps=10)
    assert caught.value.code == "INVALID_INSTANCE_NOT_FOUND"
