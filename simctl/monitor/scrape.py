"""Scrape targets' /metrics into samples (docs/alerts.md).

Each round GETs every target at once and parses the Prometheus text with
prometheus_client's own parser. Every series gets the target's ``job`` and ``instance``
labels (a scraped label of the same name becomes ``exported_job``/``exported_instance``,
as Prometheus does without honor_labels), and each target adds ``up``,
``scrape_duration_seconds`` and ``scrape_samples_scraped``. ``*_created`` samples are
skipped: nothing here queries them and they would double the series count.
"""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass, field

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from simctl.monitor.history import Labels

_TARGET = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)/([A-Za-z0-9_.:-]+)=(https?://\S+)$")


@dataclass
class Target:
    job: str
    instance: str
    url: str
    health: str = "unknown"  # up | down | unknown
    last_error: str = ""
    last_scrape: float = 0.0
    last_duration: float = 0.0
    samples: dict[Labels, float] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> Target:
        """JOB/INSTANCE=URL, e.g. router/router.1=http://127.0.0.1:7221/metrics."""
        match = _TARGET.match(text.strip())
        if match is None:
            raise ValueError(f"{text!r} is not JOB/INSTANCE=URL "
                             "(e.g. router/router.1=http://127.0.0.1:7221/metrics)")
        job, instance, url = match.groups()
        return cls(job, instance, url)


def parse_text(text: str, job: str, instance: str) -> dict[Labels, float]:
    """Prometheus text exposition -> {labels: value}, with the target's labels added."""
    out: dict[Labels, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name.endswith("_created"):
                continue
            labels = dict(sample.labels)
            for key in ("job", "instance"):
                if key in labels:
                    labels[f"exported_{key}"] = labels.pop(key)
            labels["__name__"] = sample.name
            labels["job"] = job
            labels["instance"] = instance
            out[tuple(sorted(labels.items()))] = float(sample.value)
    return out


def _meta(target: Target, name: str) -> Labels:
    return (("__name__", name), ("instance", target.instance), ("job", target.job))


class Scraper:
    def __init__(self, targets: list[Target], timeout: float) -> None:
        self.targets = targets
        self.timeout = timeout
        self._session: aiohttp.ClientSession | None = None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def round(self) -> dict[Labels, float]:
        """Scrape every target once; every sample of the round, `up` included."""
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.timeout),
                connector=aiohttp.TCPConnector(limit=0, force_close=False))
        await asyncio.gather(*(self._scrape(t) for t in self.targets))
        samples: dict[Labels, float] = {}
        for target in self.targets:
            up = target.health == "up"
            if up:
                samples.update(target.samples)
            samples[_meta(target, "up")] = 1.0 if up else 0.0
            samples[_meta(target, "scrape_duration_seconds")] = target.last_duration
            samples[_meta(target, "scrape_samples_scraped")] = float(len(target.samples))
        return samples

    async def _scrape(self, target: Target) -> None:
        started = time.monotonic()
        target.last_scrape = time.time()
        assert self._session is not None
        try:
            async with self._session.get(target.url) as response:
                if response.status != 200:
                    raise ValueError(f"HTTP {response.status}")
                text = await response.text()
            target.samples = parse_text(text, target.job, target.instance)
            target.health, target.last_error = "up", ""
        except (TimeoutError, aiohttp.ClientError, OSError, ValueError) as exc:
            target.samples = {}
            target.health = "down"
            target.last_error = str(exc) or type(exc).__name__
        target.last_duration = time.monotonic() - started
