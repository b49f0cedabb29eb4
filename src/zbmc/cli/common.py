"""What the command groups share: the ``--data-dir`` and ``--json`` options, loading the
settings, and the schema check every command that uses the database makes first."""

from __future__ import annotations

from pathlib import Path

import click
from sqlalchemy import Engine

from zbmc.db.migrate import is_at_head
from zbmc.settings import Settings, load_settings

data_dir_option = click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Directory of the embedded SQLite database (env ZBMC_DATA_DIR, default ./zbmc-data). "
    "Ignored when ZBMC_DATABASE_URL is set.",
)

json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON.")


def settings_from(data_dir: Path | None, **overrides: object) -> Settings:
    """The settings (environment) with the command line's values; a bad one is a usage error."""
    try:
        settings = load_settings()
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    return settings.with_overrides(data_dir=data_dir, **overrides)


def require_head(engine: Engine) -> None:
    if not is_at_head(engine):
        raise click.ClickException(
            "the database schema is behind the code; run `zbmc admin db upgrade` first"
        )
