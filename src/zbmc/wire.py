"""The wire vocabulary: API versions, the pydantic base class that owns the camelCase alias rule,
request field types that are exact about JSON types, and serialisation per API version."""

from __future__ import annotations

import functools
from decimal import Decimal
from typing import Annotated, Any, ClassVar

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field
from pydantic.alias_generators import to_camel
from pydantic_core import PydanticCustomError

V2022 = "2022-11-20"
V2026 = "2026-02-01"
VERSIONS = (V2022, V2026)
DEFAULT_VERSION = V2022  # spec Q4: a missing X-ZC-Version means the older API


class WireModel(BaseModel):
    """Base of every request and response schema: snake_case in code, camelCase on the wire."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="ignore",  # spec Q6: unknown keys are ignored (v2022 clients send sshKeys)
        strict=True,
        frozen=True,
    )

    # Output keys that exist only in API version 2026-02-01 (dropped for 2022-11-20).
    v2026_only: ClassVar[frozenset[str]] = frozenset()
    # Keys a subclass reuses from its parent but never sends.
    omitted: ClassVar[frozenset[str]] = frozenset()

    def wire(self, version: str) -> dict[str, Any]:
        """This response as plain JSON data (``to_wire``); a subclass may have it ready."""
        data: dict[str, Any] = to_wire(self, version)
        return data

    def finish(self, body: str) -> bytes:
        """The answer's bytes from its encoding; a subclass whose ``wire`` left placeholders
        fills them in."""
        return body.encode()


def to_wire(value: Any, version: str) -> Any:
    """Dump a response model as plain JSON data, every documented key present (null if unset)."""
    if isinstance(value, WireModel):
        return {
            key: to_wire(getattr(value, name), version)
            for name, key in wire_keys(type(value), version)
        }
    if isinstance(value, list):
        return [to_wire(item, version) for item in value]
    return value


@functools.cache
def wire_keys(cls: type[WireModel], version: str) -> tuple[tuple[str, str], ...]:
    """(attribute, wire key) of every field ``cls`` sends in ``version``; computed once per class
    (DescribeInstances dumps thousands of nested models per request)."""
    drop = cls.omitted | cls.v2026_only if version == V2022 else cls.omitted
    return tuple(
        (name, info.alias or name) for name, info in cls.model_fields.items() if name not in drop
    )


def _non_empty(value: str) -> str:
    if value == "":
        raise PydanticCustomError("missing", "Field required")
    return value


def _json_number(value: Any) -> Decimal:
    # The body is decoded with parse_float=Decimal, so a JSON number arrives as int or Decimal.
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        raise PydanticCustomError("float_type", "Input should be a number")
    if isinstance(value, Decimal) and not value.is_finite():
        raise PydanticCustomError("float_type", "Input should be a finite number")
    return Decimal(value)


RequiredStr = Annotated[str, AfterValidator(_non_empty)]
WireFloat = Annotated[Decimal, BeforeValidator(_json_number)]
StrList = Annotated[list[str], Field(max_length=100)]
