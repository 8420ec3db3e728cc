"""Logplex: the log router (docs/platform.md, "Logplex"). ``command`` runs it as a process.

    buffer      the bounded, loss-recording buffer behind drains and tails
    config      the --drain syntax (NAME[@APP]=URL) and credential masking
    http_drain  one HTTP drain: framing, retries, backoff, L10, shrink
    tail        tail sessions and the L11 line
    rods        control rods
    service     LogplexService: ingest, channels, admin API, health
    cli         the click command
"""

from simctl.platform.logplex.cli import command
from simctl.platform.logplex.service import LogplexService

__all__ = ["LogplexService", "command"]
