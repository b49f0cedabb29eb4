"""Loading a catalogue file (TOML or YAML): zones, images, instance types and offerings with
their network defaults, stock and prices. Loading upserts: existing rows are updated, nothing
is deleted (instances keep referring to what they were created from)."""

from __future__ import annotations

import tomllib
from decimal import Decimal, InvalidOperation
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator
from sqlalchemy import Table, insert, select, update
from sqlalchemy.engine import Connection

from zbmc.db.tables import images, instance_types, offerings, zones
from zbmc.domain.changes import INTERNET_CHARGE_TYPES
from zbmc.domain.sizes import is_valid_package_size, tb_to_gb
from zbmc.store import addresses

__all__ = ["INTERNET_CHARGE_TYPES", "Catalogue", "CatalogueError", "demo", "load", "read_file"]


def _decimal_text(value: Any) -> str:
    if isinstance(value, bool):
        raise ValueError("expected a number")
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        raise ValueError(f"{value!r} is not a number") from None
    if not number.is_finite() or number < 0:
        raise ValueError("prices must be finite and >= 0")
    return str(number)


Amount = Annotated[str, BeforeValidator(_decimal_text)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ZoneSpec(_Strict):
    id: str
    name: str
    city: str
    area: str
    cloud_router: bool = False
    byoip: bool = False


class ImageSpec(_Strict):
    id: str
    name: str
    catalog: str
    type: str = "PUBLIC_IMAGE"
    os_type: str = "linux"


class DiskSpec(_Strict):
    size: int = Field(gt=0)
    count: int = Field(gt=0)


class InstanceTypeSpec(_Strict):
    id: str
    description: str
    cpu_core_count: int = Field(gt=0)
    cpu_detail: str
    cpu_cores: int = Field(gt=0)
    cpu_threads: int = Field(gt=0)
    base_frequency: str
    memory_size: int = Field(gt=0)
    maximum_bandwidth: int = Field(gt=0)
    support_raids: list[int] = Field(default_factory=list)
    support_subnet: bool = True
    is_ha: bool = False
    total_disk_size: int = Field(gt=0)
    disk_description: str
    disks: list[DiskSpec]
    images: list[str] = Field(default_factory=list)
    vpu_vendor: str | None = None
    vpu_card: str | None = None
    vpu_count: int | None = None


class PriceSpec(_Strict):
    discount: Amount = "100"
    instance_month: Amount
    instance_hour: Amount
    bandwidth_month: Amount
    bandwidth_hour: Amount
    traffic_tb_month: Amount
    traffic_tb_hour: Amount
    overage_gb: Amount


class OfferingSpec(_Strict):
    zones: list[str]
    instance_types: list[str]
    instance_charge_types: list[str] = Field(default_factory=lambda: ["PREPAID", "POSTPAID"])
    internet_charge_types: list[str]
    default_bandwidth_out: int = Field(ge=0)
    maximum_bandwidth_out: int | None = Field(default=None, gt=0)
    default_traffic_package: Amount = "0"
    maximum_traffic_package: Amount = "1000"
    qty: int = Field(ge=0)
    prices: PriceSpec
    cap_inbound: bool = False  # the network agent caps inbound traffic at the bandwidth too

    @model_validator(mode="after")
    def _check(self) -> OfferingSpec:
        for kind in self.internet_charge_types:
            if kind not in INTERNET_CHARGE_TYPES:
                raise ValueError(f"unknown internet charge type {kind!r}")
        for kind in self.instance_charge_types:
            if kind not in ("PREPAID", "POSTPAID"):
                raise ValueError(f"unknown instance charge type {kind!r}")
        for size in (self.default_traffic_package, self.maximum_traffic_package):
            if not is_valid_package_size(Decimal(size)):
                raise ValueError(f"traffic package {size} TB is not a multiple of 0.05")
        if Decimal(self.prices.discount) > 100:
            raise ValueError("discount is a percentage of the price, at most 100")
        return self


class AddressPoolSpec(_Strict):
    """An address pool (``zbmc admin pool add`` does the same): PUBLIC_IPV4, PRIVATE_IPV4 or
    IPV6, a CIDR, and optionally the one zone it serves."""

    id: str
    kind: str
    cidr: str
    zone: str | None = None


class Catalogue(_Strict):
    currency: str = "USD"
    illustrative: bool = False
    zones: list[ZoneSpec] = Field(default_factory=list)
    images: list[ImageSpec] = Field(default_factory=list)
    instance_types: list[InstanceTypeSpec] = Field(default_factory=list)
    offerings: list[OfferingSpec] = Field(default_factory=list)
    address_pools: list[AddressPoolSpec] = Field(default_factory=list)


class CatalogueError(ValueError):
    pass


def parse(text: str, *, suffix: str) -> Catalogue:
    try:
        data = yaml.safe_load(text) if suffix in (".yaml", ".yml") else tomllib.loads(text)
        return Catalogue.model_validate(data)
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as exc:
        raise CatalogueError(f"cannot parse the catalogue: {exc}") from None
    except ValidationError as exc:
        raise CatalogueError(f"invalid catalogue:\n{exc}") from None


def read_file(path: Path) -> Catalogue:
    return parse(path.read_text(encoding="utf-8"), suffix=path.suffix.lower())


def demo_text() -> str:
    return resources.files("zbmc").joinpath("data/demo-catalogue.toml").read_text("utf-8")


def demo() -> Catalogue:
    return parse(demo_text(), suffix=".toml")


def _upsert(conn: Connection, table: Table, keys: dict[str, Any], values: dict[str, Any]) -> None:
    condition = [table.c[name] == value for name, value in keys.items()]
    if conn.execute(update(table).where(*condition).values(**values)).rowcount == 0:
        conn.execute(insert(table).values(**keys, **values))


def load(conn: Connection, catalogue: Catalogue) -> dict[str, int]:
    """Upsert everything in ``catalogue``; return how many rows of each kind were written."""
    known_zones = {z.id for z in catalogue.zones} | {
        r.zone_id for r in conn.execute(zones.select())
    }
    # Offerings may name types of this file or types already in the database.
    known_types = {
        r.instance_type_id: r.maximum_bandwidth
        for r in conn.execute(
            select(instance_types.c.instance_type_id, instance_types.c.maximum_bandwidth)
        )
    } | {t.id: t.maximum_bandwidth for t in catalogue.instance_types}
    for z in catalogue.zones:
        _upsert(
            conn,
            zones,
            {"zone_id": z.id},
            {
                "zone_name": z.name,
                "city_name": z.city,
                "area_name": z.area,
                "is_cloud_router_available": z.cloud_router,
                "is_byoip_enabled": z.byoip,
            },
        )
    for i in catalogue.images:
        _upsert(
            conn,
            images,
            {"image_id": i.id},
            {
                "image_name": i.name,
                "catalog": i.catalog,
                "image_type": i.type,
                "os_type": i.os_type,
            },
        )
    for t in catalogue.instance_types:
        _upsert(
            conn,
            instance_types,
            {"instance_type_id": t.id},
            {
                "description": t.description,
                "cpu_core_count": t.cpu_core_count,
                "cpu_detail": t.cpu_detail,
                "cpu_cores": t.cpu_cores,
                "cpu_threads": t.cpu_threads,
                "base_frequency": t.base_frequency,
                "memory_size": t.memory_size,
                "maximum_bandwidth": t.maximum_bandwidth,
                "support_raids": t.support_raids,
                "support_subnet": t.support_subnet,
                "is_ha": t.is_ha,
                "total_disk_size": t.total_disk_size,
                "disk_description": t.disk_description,
                "disks": [{"diskSize": d.size, "diskCount": d.count} for d in t.disks],
                "image_ids": t.images,
                "vpu_vendor": t.vpu_vendor,
                "vpu_card": t.vpu_card,
                "vpu_count": t.vpu_count,
            },
        )
    written = 0
    for o in catalogue.offerings:
        for zone_id in o.zones:
            if zone_id not in known_zones:
                raise CatalogueError(f"offering names unknown zone {zone_id!r}")
            for type_id in o.instance_types:
                type_maximum = known_types.get(type_id)
                if type_maximum is None:
                    raise CatalogueError(f"offering names unknown instance type {type_id!r}")
                _upsert(
                    conn,
                    offerings,
                    {"zone_id": zone_id, "instance_type_id": type_id},
                    {
                        "instance_charge_types": o.instance_charge_types,
                        "internet_charge_types": o.internet_charge_types,
                        "maximum_bandwidth_out": min(
                            o.maximum_bandwidth_out or type_maximum, type_maximum
                        ),
                        "default_bandwidth_out": o.default_bandwidth_out,
                        "default_traffic_package_gb": tb_to_gb(Decimal(o.default_traffic_package)),
                        "maximum_traffic_package_gb": tb_to_gb(Decimal(o.maximum_traffic_package)),
                        "qty": o.qty,
                        "cap_inbound": o.cap_inbound,
                        "currency": catalogue.currency,
                        **o.prices.model_dump(),
                    },
                )
                written += 1
    for pool in catalogue.address_pools:
        try:
            addresses.add_pool(conn, pool.kind, pool.cidr, pool.zone, pool.id)
        except addresses.PoolError as exc:
            raise CatalogueError(f"address pool {pool.id!r}: {exc}") from None
    counts = {
        "zones": len(catalogue.zones),
        "images": len(catalogue.images),
        "instance_types": len(catalogue.instance_types),
        "offerings": written,
    }
    if catalogue.address_pools:
        counts["address_pools"] = len(catalogue.address_pools)
    return counts
