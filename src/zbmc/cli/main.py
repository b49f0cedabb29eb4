"""The ``zbmc`` command: ``serve``, ``worker``, ``admin`` and ``agent``, each imported when used."""

from __future__ import annotations

import click

from zbmc.cli.lazy import LazyGroup


@click.group(
    cls=LazyGroup,
    lazy={
        "serve": "zbmc.cli.server:serve",
        "worker": "zbmc.cli.server:worker",
        "admin": "zbmc.cli.admin:admin",
        "agent": "zbmc.cli.agent:agent",
    },
)
@click.version_option(package_name="zbmc")
def main() -> None:
    """zbmc: the Zenlayer Cloud Bare Metal (BMC) API 2.0, self-hosted."""
