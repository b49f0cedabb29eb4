"""``zbmc agent``: enforce the caps of the instances attached to this host (docs/drivers.md)."""

from __future__ import annotations

import json
import logging
import socket
import sys
import time
from pathlib import Path

import click

from zbmc import logs

log = logging.getLogger("zbmc.agent")


@click.command()
@click.option(
    "--api",
    envvar="ZBMC_AGENT_API",
    required=True,
    help="Base URL of a zbmc API process with ZBMC_ADMIN_TOKEN set (env ZBMC_AGENT_API).",
)
@click.option(
    "--token",
    envvar="ZBMC_ADMIN_TOKEN",
    required=True,
    help="The admin token (env ZBMC_ADMIN_TOKEN).",
)
@click.option(
    "--host",
    "host_name",
    envvar="ZBMC_AGENT_HOST",
    default=None,
    help="This host's name in the attachments (env ZBMC_AGENT_HOST, default: hostname).",
)
@click.option(
    "--netns",
    envvar="ZBMC_AGENT_NETNS",
    default=None,
    help="Work in this network namespace instead of the agent's own (env ZBMC_AGENT_NETNS).",
)
@click.option(
    "--state-dir",
    envvar="ZBMC_AGENT_STATE_DIR",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("/var/lib/zbmc-agent"),
    show_default=True,
    help="Where the last counter readings and unsent samples are kept (env ZBMC_AGENT_STATE_DIR).",
)
@click.option(
    "--interval",
    envvar="ZBMC_AGENT_INTERVAL_SECONDS",
    type=click.FloatRange(min=0.05),
    default=1.0,
    show_default=True,
    help="Seconds between passes.",
)
@click.option(
    "--sample-interval",
    envvar="ZBMC_AGENT_SAMPLE_SECONDS",
    type=click.IntRange(min=1, max=300),
    default=300,
    show_default=True,
    help="Seconds between traffic samples (aligned to multiples of it).",
)
@click.option("--once", is_flag=True, help="Run one pass and exit (status 1 if anything failed).")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON line per pass that did work.")
def agent(
    api: str,
    token: str,
    host_name: str | None,
    netns: str | None,
    state_dir: Path,
    interval: float,
    sample_interval: int,
    once: bool,
    as_json: bool,
) -> None:
    """Make this host's kernel enforce the bandwidth of the instances attached to it, and
    report their traffic (tc TBF + IFB caps, nftables counters)."""
    from zbmc.agent.client import AdminClient, ApiError
    from zbmc.agent.counters import Counters
    from zbmc.agent.kernel import Kernel, KernelError
    from zbmc.agent.meter import Meter
    from zbmc.agent.reconciler import Agent
    from zbmc.cli.common import settings_from

    settings = settings_from(None)
    logs.configure(settings.log_format, settings.log_level)
    host = host_name or socket.gethostname()
    meter = Meter.load(state_dir / f"agent-{host}.json", host)
    worker = Agent(
        AdminClient(api, token),
        Kernel(netns),
        Counters(netns),
        meter,
        host,
        sample_interval=sample_interval,
    )
    while True:
        started = time.monotonic()
        try:
            report = worker.run_pass()
        except (ApiError, KernelError) as exc:
            log.warning("agent pass failed: %s", exc)
            if once:
                raise click.ClickException(str(exc)) from None
        else:
            if once or report.changed or report.removed or report.failed or report.enabled:
                line = report.as_dict()
                click.echo(json.dumps(line) if as_json else line)
                sys.stdout.flush()
            if once:
                sys.exit(1 if report.failed else 0)
        time.sleep(max(0.0, interval - (time.monotonic() - started)))
