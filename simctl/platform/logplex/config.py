"""Drain configuration: the ``--drain`` option's syntax, and URLs safe to print.

``--drain NAME=URL`` attaches drain NAME to the app ``web``; ``--drain NAME@APP=URL``
attaches it to APP. Names are unique (they name the drain in ``/admin/drains/NAME``,
in metrics and in the fault plane's ``drain.NAME`` link); URLs are ``http``/``https``
with a host, and may carry ``user:password@`` for Basic auth. Credentials are never
printed: everything shown goes through :func:`mask_url`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from yarl import URL

DEFAULT_APP = "web"
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")
APP = re.compile(r"[a-z0-9][a-z0-9_.-]{0,62}")


class DrainConfigError(ValueError):
    """A ``--drain`` value that cannot be used; the message never contains credentials."""


def mask_url(url: str | URL) -> str:
    """The URL with any userinfo replaced by ``***`` (``http://***@host:port/path``)."""
    try:
        parsed = url if isinstance(url, URL) else URL(url)
    except (ValueError, TypeError):
        return "<invalid url>"
    if parsed.user is None and parsed.password is None:
        return str(parsed)
    text = str(parsed.with_user(None))
    scheme, sep, rest = text.partition("://")
    return f"{scheme}{sep}***@{rest}" if sep else "***@" + text


@dataclass(frozen=True)
class DrainSpec:
    name: str
    app: str
    url: URL = field(repr=False)  # without userinfo
    user: str | None = field(default=None, repr=False)
    password: str | None = field(default=None, repr=False)

    @property
    def dest(self) -> str:
        """The URL as it may be shown (credentials masked)."""
        if self.user is None and self.password is None:
            return str(self.url)
        return mask_url(self.url.with_user("x"))


def parse_drain(value: str) -> DrainSpec:
    """``NAME=URL`` or ``NAME@APP=URL``."""
    target, sep, raw_url = value.partition("=")
    if not sep or not target or not raw_url:
        raise DrainConfigError("expected NAME=URL or NAME@APP=URL")
    name, at, app = target.partition("@")
    if not at:
        app = DEFAULT_APP
    if not NAME.fullmatch(name):
        raise DrainConfigError(
            f"bad drain name {name!r}: letters, digits, '.', '_', '-' (up to 63)")
    if not APP.fullmatch(app):
        raise DrainConfigError(
            f"bad app name {app!r}: lowercase letters, digits, '.', '_', '-' (up to 63)")
    try:
        url = URL(raw_url)
        host = url.host
        url.port  # noqa: B018 - a bad port raises here
    except (ValueError, TypeError):
        raise DrainConfigError(f"drain {name!r}: not a valid URL (host or port)") from None
    if url.scheme not in ("http", "https") or not host:
        # Not echoed: a value that is not a URL may still hold a password.
        raise DrainConfigError(f"drain {name!r} needs an http:// or https:// URL with a host")
    return DrainSpec(name, app, url.with_user(None), url.user, url.password)


def parse_drains(values: Iterable[str | DrainSpec]) -> list[DrainSpec]:
    """Parse ``--drain`` values (specs pass through) and check names are unique."""
    specs: list[DrainSpec] = []
    seen: set[str] = set()
    for value in values:
        spec = value if isinstance(value, DrainSpec) else parse_drain(value)
        if spec.name in seen:
            raise DrainConfigError(f"drain {spec.name!r} is configured twice")
        seen.add(spec.name)
        specs.append(spec)
    return specs
