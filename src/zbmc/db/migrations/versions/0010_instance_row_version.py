"""instances.row_version and instance_types.row_version: a new random value whenever the row
changes, set by the database itself (triggers), so DescribeInstances can keep each instance's
and each type's encoded answer until its row changes

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06

Every writer of these tables (API, worker, admin CLI, fleet import, other processes) goes
through the trigger; a snapshot restore copies the column with the row, so a restored row comes
back with the version it had together with the content it had. Random rather than counted, so
that no value is ever handed out again after a restore (docs/performance.md). On SQLite an
``ALTER TABLE ... ADD COLUMN`` cannot have an expression as its default: ``instances`` is
rebuilt, and a later migration that rebuilds it (batch mode) must create its trigger again;
``instance_types`` (which offerings refer to, and which changes only with the catalogue) gets a
constant default and a second trigger that gives each inserted row its random value.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

SQLITE_DEFAULT = "(random())"
# random() is a double in [0, 1): 52 random bits spread over the positive bigints
POSTGRES_RANDOM = "(random() * 9.2e18)::bigint"

SQLITE_TRIGGER = """
CREATE TRIGGER instances_row_version AFTER UPDATE ON instances FOR EACH ROW
WHEN NEW.row_version = OLD.row_version
BEGIN
    UPDATE instances SET row_version = random() WHERE rowid = NEW.rowid;
END
"""
SQLITE_TYPE_TRIGGERS = (
    """
CREATE TRIGGER instance_types_row_version AFTER UPDATE ON instance_types FOR EACH ROW
WHEN NEW.row_version = OLD.row_version
BEGIN
    UPDATE instance_types SET row_version = random() WHERE rowid = NEW.rowid;
END
""",
    """
CREATE TRIGGER instance_types_new_row_version AFTER INSERT ON instance_types FOR EACH ROW
BEGIN
    UPDATE instance_types SET row_version = random() WHERE rowid = NEW.rowid;
END
""",
)
POSTGRES_FUNCTION = f"""
CREATE FUNCTION instances_row_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.row_version := {POSTGRES_RANDOM};
    RETURN NEW;
END
$$
"""
POSTGRES_TRIGGERS = (
    """
CREATE TRIGGER instances_row_version BEFORE UPDATE ON instances FOR EACH ROW
EXECUTE FUNCTION instances_row_version()
""",
    """
CREATE TRIGGER instance_types_row_version BEFORE UPDATE ON instance_types FOR EACH ROW
EXECUTE FUNCTION instances_row_version()
""",
)


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        with op.batch_alter_table("instances", recreate="always") as batch_op:
            batch_op.add_column(
                sa.Column(
                    "row_version",
                    sa.BigInteger(),
                    nullable=False,
                    server_default=sa.text(SQLITE_DEFAULT),
                )
            )
        op.execute(SQLITE_TRIGGER)
        op.execute("ALTER TABLE instance_types ADD COLUMN row_version BIGINT NOT NULL DEFAULT 0")
        for trigger in SQLITE_TYPE_TRIGGERS:
            op.execute(trigger)
        op.execute("UPDATE instance_types SET row_version = random()")
        return
    for table in ("instances", "instance_types"):
        op.add_column(
            table,
            sa.Column(
                "row_version",
                sa.BigInteger(),
                nullable=False,
                server_default=sa.text(POSTGRES_RANDOM),
            ),
        )
    op.execute(POSTGRES_FUNCTION)
    for trigger in POSTGRES_TRIGGERS:
        op.execute(trigger)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for name in ("instances_row_version", *_TYPE_TRIGGER_NAMES):
            op.execute(f"DROP TRIGGER {name}")
        op.execute("ALTER TABLE instance_types DROP COLUMN row_version")
        with op.batch_alter_table("instances", recreate="always") as batch_op:
            batch_op.drop_column("row_version")
        return
    op.execute("DROP TRIGGER instances_row_version ON instances")
    op.execute("DROP TRIGGER instance_types_row_version ON instance_types")
    op.execute("DROP FUNCTION instances_row_version()")
    op.drop_column("instances", "row_version")
    op.drop_column("instance_types", "row_version")


_TYPE_TRIGGER_NAMES = ("instance_types_row_version", "instance_types_new_row_version")
