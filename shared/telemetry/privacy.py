"""What is kept of a request, and how (P23): every reduction applied before an event leaves the ingest.

- the IP address gives a country (an offline database shipped in the `geoip2fast` package: no call
  to any service) and takes part in the daily visitor hash; it is never stored, published or logged;
- the user agent is reduced to browser family, OS family and device class (`ua-parser`); bots are
  recognised and counted apart;
- a page URL keeps its path (segments that look like an email, an IP or an opaque id are replaced)
  and, of its query string, only the `utm_*` campaign parameters; the fragment is dropped;
- a referrer keeps only its domain; a link from the site itself is no referrer;
- visitors are counted with `visitor_hash(daily salt, IP, user agent, site)`: the salt is random per
  UTC day and deleted after 48 hours, so no visitor can be followed across days or tied to anyone.
"""

from __future__ import annotations

import hashlib
import re
import threading
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from shared.telemetry.catalogue import looks_personal

UNKNOWN = "unknown"
UTM_KEYS = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")
MAX_PATH = 200
MAX_FAMILY = 40

# Clients that are not people: crawlers, monitors, HTTP libraries, headless browsers.
_BOT = re.compile(
    r"bot\b|bot/|crawl|spider|slurp|scrap|curl/|wget/|python|httpclient|http-client|headless|java/|go-http|"
    r"okhttp|axios|node-fetch|undici|libwww|phantom|lighthouse|pingdom|uptime|monitor|preview|facebookexternalhit|"
    r"embedly|quora link|whatsapp|feedfetcher|validator",
    re.IGNORECASE,
)
_TABLET = re.compile(r"ipad|tablet|kindle|silk/|playbook|(android(?!.*mobile))", re.IGNORECASE)
_MOBILE = re.compile(r"mobi|iphone|ipod|android|windows phone|blackberry|opera mini", re.IGNORECASE)
_OPAQUE = re.compile(r"^(?=.*\d)[A-Za-z0-9_\-=.~%]{16,}$")
_UUID = re.compile(r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$")
_LONG_NUMBER = re.compile(r"^\d{6,}$")


# --- Country --------------------------------------------------------------------------------------


class CountryLookup:
    """IP -> ISO 3166 alpha-2 country, offline (geoip2fast's IPv4+IPv6 database, loaded once)."""

    DATA_FILE = "geoip2fast-ipv6.dat.gz"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._db: Any = None

    def _load(self) -> Any:
        if self._db is None:
            with self._lock:
                if self._db is None:
                    from geoip2fast import GeoIP2Fast

                    self._db = GeoIP2Fast(geoip2fast_data_file=self.DATA_FILE, verbose=False)
        return self._db

    def country(self, ip: str) -> str:
        if not ip:
            return UNKNOWN
        try:
            found = self._load().lookup(ip.strip())
        except Exception:  # a malformed address is no country, never an error
            return UNKNOWN
        code = str(getattr(found, "country_code", "") or "")
        return code if re.fullmatch(r"[A-Z]{2}", code) else UNKNOWN


# --- User agent -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Agent:
    """All that is kept of a user agent string."""

    browser: str
    os: str
    device: str  # desktop | mobile | tablet | bot
    bot: bool


def _family(value: Any) -> str:
    family = str(getattr(value, "family", "") or "").strip()
    if not family or family == "Other":
        return "other"
    return family[:MAX_FAMILY]


def reduce_user_agent(user_agent: str) -> Agent:
    """Browser family, OS family, device class; never the string itself."""
    from ua_parser import parse

    ua = (user_agent or "").strip()[:512]
    if not ua:
        return Agent("other", "other", "bot", True)
    parsed = parse(ua)
    browser, os_family = _family(parsed.user_agent), _family(parsed.os)
    device_family = str(getattr(parsed.device, "family", "") or "")
    if device_family == "Spider" or _BOT.search(ua) or browser.lower().endswith("bot"):
        return Agent(browser, os_family, "bot", True)
    if _TABLET.search(ua):
        device = "tablet"
    elif _MOBILE.search(ua):
        device = "mobile"
    else:
        device = "desktop"
    return Agent(browser, os_family, device, False)


# --- URLs -----------------------------------------------------------------------------------------


class UrlRefused(ValueError):
    """The URL cannot be kept (not http(s), not on the site)."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def on_site(host: str, site: str) -> bool:
    return host == site or host.endswith("." + site)


def _clean_segment(segment: str) -> str:
    decoded = unquote(segment)
    if "@" not in decoded and (_UUID.match(decoded) or _LONG_NUMBER.match(decoded)):
        return ":id"
    kind = looks_personal(decoded)
    if kind:
        return f":{kind}"
    if _OPAQUE.match(decoded):
        return ":id"
    return segment


def clean_path(path: str) -> str:
    """The path with identifying segments replaced, at most MAX_PATH characters."""
    segments = [_clean_segment(s) if s else s for s in (path or "/").split("/")]
    cleaned = "/".join(segments) or "/"
    if not cleaned.startswith("/"):
        cleaned = "/" + cleaned
    return cleaned[:MAX_PATH]


def clean_utm(value: str) -> str | None:
    value = unquote(value).strip()[:64]
    if not value or looks_personal(value):
        return None
    return value


@dataclass(frozen=True)
class Page:
    host: str
    path: str
    utm: dict[str, str]


def clean_url(url: str, site: str) -> Page:
    """A page URL reduced to host, clean path and `utm_*` parameters; the rest of the query is dropped."""
    try:
        parts = urlsplit(url.strip())
        host = (parts.hostname or "").lower().rstrip(".")
    except ValueError:
        raise UrlRefused("invalid-url", "url is not a valid URL") from None
    if parts.scheme not in ("http", "https") or not host:
        raise UrlRefused("invalid-url", "url must be an absolute http(s) URL")
    if not on_site(host, site):
        raise UrlRefused("url-not-on-site", f"url must be on {site}")
    utm = {}
    for key, value in parse_qsl(parts.query, keep_blank_values=False):
        if key in UTM_KEYS and key not in utm:
            cleaned = clean_utm(value)
            if cleaned:
                utm[key] = cleaned
    return Page(host=host, path=clean_path(parts.path), utm=utm)


def referrer_domain(referrer: str | None, site: str) -> str | None:
    """The referrer's domain (without `www.`), or None for none, a non-web referrer or the site itself."""
    if not referrer:
        return None
    try:
        host = (urlsplit(referrer.strip()).hostname or "").lower().rstrip(".")
        scheme = urlsplit(referrer.strip()).scheme
    except ValueError:
        return None
    if scheme not in ("http", "https") or not host or on_site(host, site):
        return None
    if looks_personal(host) == "ip":
        return None
    return host.removeprefix("www.")[:100]


# --- Visitors -------------------------------------------------------------------------------------


def visitor_hash(salt: bytes, *parts: str) -> str:
    """A keyed hash of the parts (BLAKE2b keyed by the daily salt): unlinkable once the salt is gone."""
    digest = hashlib.blake2b(key=salt, digest_size=16)
    for part in parts:
        digest.update(part.encode("utf-8", "replace"))
        digest.update(b"\x00")
    return digest.hexdigest()
