"""DescribeImages: the catalogue's OS images, optionally only those a model supports."""

from __future__ import annotations

from pydantic import Field
from sqlalchemy import func, select

from zbmc.context import Context
from zbmc.db.tables import images, instance_types
from zbmc.errors import InstanceTypeNotFound
from zbmc.registry import action
from zbmc.wire import StrList, WireModel


class DescribeImagesRequest(WireModel):
    image_ids: StrList | None = None
    image_name: str | None = None
    catalog: str | None = None
    image_type: str | None = None
    os_type: str | None = None
    instance_type_id: str | None = None


class ImageInfo(WireModel):
    image_id: str
    image_name: str
    catalog: str
    image_type: str
    os_type: str


class DescribeImagesResponse(WireModel):
    images: list[ImageInfo] = Field(default_factory=list)


@action(
    "DescribeImages",
    request=DescribeImagesRequest,
    response=DescribeImagesResponse,
    write=False,
)
def describe_images(ctx: Context, req: DescribeImagesRequest) -> DescribeImagesResponse:
    """OS images; catalog and osType match case-insensitively (spec C10), the others exactly."""
    query = select(images).order_by(images.c.catalog, images.c.image_name, images.c.image_id)
    if req.instance_type_id is not None:
        supported = ctx.conn.execute(
            select(instance_types.c.image_ids).where(
                instance_types.c.instance_type_id == req.instance_type_id
            )
        ).first()
        if supported is None:
            raise InstanceTypeNotFound(instance_type_id=req.instance_type_id)
        query = query.where(images.c.image_id.in_(list(supported.image_ids)))
    if req.image_ids is not None:
        query = query.where(images.c.image_id.in_(req.image_ids))
    if req.image_name is not None:
        query = query.where(images.c.image_name == req.image_name)
    if req.catalog is not None:
        query = query.where(func.lower(images.c.catalog) == req.catalog.lower())
    if req.os_type is not None:
        query = query.where(func.lower(images.c.os_type) == req.os_type.lower())
    if req.image_type is not None:
        query = query.where(images.c.image_type == req.image_type)
    return DescribeImagesResponse(
        images=[
            ImageInfo(
                image_id=row.image_id,
                image_name=row.image_name,
                catalog=row.catalog,
                image_type=row.image_type,
                os_type=row.os_type,
            )
            for row in ctx.conn.execute(query)
        ]
    )
