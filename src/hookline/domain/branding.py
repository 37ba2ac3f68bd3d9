"""The portal's branding: from the query parameters of its link, over the defaults an
operator set for the application (``PUT /api/v1/app/{app_id}/portal-branding``), both held
to the same grammar.

The names are Svix's where Svix has one: ``svix-react``'s ``AppPortal`` (1.13) adds
``primaryColor``, ``fontFamily``, ``icon`` and ``darkMode`` (``true`` or ``auto``) to the
portal URL, so a page built for Svix's portal brands hookline's the same way. Two more are
hookline's own, for what the issue asks and Svix's public parameters do not name:
``primaryColorDark`` (the primary colour in dark mode) and ``hideNavigation=true`` (no
header or navigation, for a host page that draws its own).

Every value ends up inside a ``<style>`` element or an ``src`` attribute, so each is held
to a grammar with no quote, semicolon, brace or angle bracket: a colour is hex digits, a
font is a list of family names, a logo is an https URL (or loopback http in ``--dev``).
A value outside its grammar is refused (400) with the parameter's name, never dropped in
silence and never passed through.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from hookline.domain.errors import InvalidRequest

_HEX_COLOUR = re.compile(r"#?([0-9a-fA-F]{3}|[0-9a-fA-F]{4}|[0-9a-fA-F]{6}|[0-9a-fA-F]{8})")
_FAMILY = re.compile(r"[A-Za-z][A-Za-z0-9_-]*( [A-Za-z][A-Za-z0-9_-]*)*")
"""Words of letters, digits, ``-`` and ``_``, each starting with a letter: a family name
CSS reads unquoted (CSS Fonts 4, section 2.1), so the value needs no quote at all."""
MAX_FAMILY_LENGTH = 64
MAX_FAMILIES = 5
MAX_URL_LENGTH = 2048
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
PARAMETERS = (
    "primaryColor",
    "primaryColorDark",
    "fontFamily",
    "icon",
    "darkMode",
    "hideNavigation",
)


@dataclass(frozen=True, slots=True)
class Branding:
    """What the portal's link asked for; None keeps hookline's own look."""

    primary: str | None = None
    primary_dark: str | None = None
    font: str | None = None
    """A CSS ``font-family`` value of unquoted names, ending with ``system-ui``."""
    logo: str | None = None
    theme: str | None = None
    """``dark`` (``darkMode=true``), ``light`` (``darkMode=false``), or None: follow the
    system (``darkMode=auto`` or absent)."""
    hide_navigation: bool = False

    def css_variables(self) -> dict[str, str]:
        """The custom properties the stylesheet reads, only those the link set."""
        found = {
            "--brand-primary": self.primary,
            "--brand-primary-dark": self.primary_dark or self.primary,
            "--brand-font": self.font,
        }
        return {name: value for name, value in found.items() if value is not None}


def colour(name: str, text: str) -> str:
    """``#rgb``, ``#rgba``, ``#rrggbb`` or ``#rrggbbaa``; the ``#`` may be left out, as
    ``%23`` is easy to forget in a URL."""
    found = _HEX_COLOUR.fullmatch(text.strip())
    if found is None:
        raise _invalid(name, "must be a hex colour such as #1f6feb")
    return "#" + found.group(1).lower()


def font(text: str) -> str:
    """Family names, comma-separated, optionally quoted. Only names: the portal loads no
    font file, so a family the browser lacks falls back to the system's."""
    families = [" ".join(part.strip(" '\"").split()) for part in text.split(",")]
    families = [family for family in families if family]
    if not families or len(families) > MAX_FAMILIES:
        raise _invalid("fontFamily", f"must name 1 to {MAX_FAMILIES} font families")
    for family in families:
        if len(family) > MAX_FAMILY_LENGTH or not _FAMILY.fullmatch(family):
            raise _invalid(
                "fontFamily",
                "must be family names of words made of letters, digits, - and _, "
                "each word starting with a letter",
            )
    return ", ".join(families) + ", system-ui, sans-serif"


def logo(text: str, *, dev: bool) -> str:
    """An absolute https URL; plain http only to a loopback host, and only in ``--dev``."""
    if len(text) > MAX_URL_LENGTH or any(c in text for c in "\"'<>\\ \t\r\n()"):
        raise _invalid("icon", "must be a plain https URL")
    parts = urlsplit(text)
    host = parts.hostname or ""
    loopback = dev and parts.scheme == "http" and host in LOOPBACK_HOSTS
    if not host or (parts.scheme != "https" and not loopback):
        rule = "an https URL" + (" (or http to a loopback host in --dev)" if dev else "")
        raise _invalid("icon", f"must be {rule}")
    return text


def _flag(name: str, text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in {"true", "1"}:
        return True
    if lowered in {"false", "0", ""}:
        return False
    raise _invalid(name, "must be true or false")


def _theme(text: str) -> str | None:
    lowered = text.strip().lower()
    if lowered == "auto":
        return None
    return "dark" if _flag("darkMode", lowered) else "light"


def parse(query: Mapping[str, str], *, dev: bool = False, where: str = "query") -> Branding:
    """The branding of a portal link's query (``where="body"``: of an application's
    defaults); ``InvalidRequest`` names the first bad one. Parameters that are not
    branding are left to the caller."""
    try:
        return _parsed(query, dev)
    except InvalidRequest as exc:
        if where == "query":
            raise
        name = exc.loc[-1]
        rule = exc.detail.removeprefix(f"The portal link's {name} ")
        raise InvalidRequest(f"{name} {rule}", loc=("body", name)) from None


def _parsed(query: Mapping[str, str], dev: bool) -> Branding:

    def optional(name: str, parse_one: Callable[[str, str], str]) -> str | None:
        value = query.get(name)
        return None if value is None else parse_one(name, value)

    icon = query.get("icon")
    dark = query.get("darkMode")
    return Branding(
        primary=optional("primaryColor", colour),
        primary_dark=optional("primaryColorDark", colour),
        font=None if query.get("fontFamily") is None else font(query["fontFamily"]),
        logo=None if not icon else logo(icon, dev=dev),
        theme=None if dark is None else _theme(dark),
        hide_navigation=_flag("hideNavigation", query.get("hideNavigation", "")),
    )


def _invalid(name: str, rule: str) -> InvalidRequest:
    return InvalidRequest(f"The portal link's {name} {rule}", loc=("query", name))
