"""What is kept of a request (P23): country, browser/OS/device families, clean paths, referrer domains."""

from __future__ import annotations

import pytest

from shared.telemetry.privacy import (
    CountryLookup,
    UrlRefused,
    clean_url,
    reduce_user_agent,
    referrer_domain,
    visitor_hash,
)

pytestmark = pytest.mark.policy("P23")

CHROME_WINDOWS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"
)
SAFARI_IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.0 Mobile/15E148 Safari/604.1"
)
SAFARI_IPAD = (
    "Mozilla/5.0 (iPad; CPU OS 16_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/16.0 Mobile/15E148 Safari/604.1"
)
CHROME_ANDROID = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.6099.43 Mobile Safari/537.36"
)
FIREFOX_LINUX = "Mozilla/5.0 (X11; Linux x86_64; rv:130.0) Gecko/20100101 Firefox/130.0"
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"


@pytest.mark.parametrize(
    ("ua", "browser", "os", "device"),
    [
        (CHROME_WINDOWS, "Chrome", "Windows", "desktop"),
        (SAFARI_IPHONE, "Mobile Safari", "iOS", "mobile"),
        (SAFARI_IPAD, "Mobile Safari", "iOS", "tablet"),
        (CHROME_ANDROID, "Chrome Mobile", "Android", "mobile"),
        (FIREFOX_LINUX, "Firefox", "Linux", "desktop"),
    ],
)
def test_user_agents_are_reduced_to_families(ua: str, browser: str, os: str, device: str) -> None:
    agent = reduce_user_agent(ua)
    assert (agent.browser, agent.os, agent.device, agent.bot) == (browser, os, device, False)


@pytest.mark.parametrize("ua", [GOOGLEBOT, "curl/8.5.0", "python-requests/2.32", "", "HeadlessChrome/120.0"])
def test_bots_are_recognised(ua: str) -> None:
    agent = reduce_user_agent(ua)
    assert agent.bot and agent.device == "bot"


@pytest.mark.parametrize(
    ("ip", "country"),
    [
        ("81.2.69.160", "GB"),
        ("8.8.8.8", "US"),
        ("2a02:2f0c::1", "RO"),
        ("10.1.2.3", "unknown"),
        ("nonsense", "unknown"),
    ],
)
def test_country_comes_from_the_offline_database(ip: str, country: str) -> None:
    assert CountryLookup().country(ip) == country


def test_a_url_keeps_its_path_and_campaign_only() -> None:
    page = clean_url(
        "https://www.example.test/pricing?plan=pro&email=ada%40example.com&utm_source=news&utm_campaign=nov#top",
        "example.test",
    )
    assert page.path == "/pricing"
    assert page.utm == {"utm_source": "news", "utm_campaign": "nov"}


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/users/ada@example.com/profile", "/users/:email/profile"),
        ("/invite/Zx8fK2pQ9mLw4rTb7yHc", "/invite/:id"),
        ("/orders/123456789", "/orders/:id"),
        ("/docs/2024/intro", "/docs/2024/intro"),
        ("/hosts/192.168.1.20", "/hosts/:ip"),
        ("/a/550e8400-e29b-41d4-a716-446655440000", "/a/:id"),
    ],
)
def test_identifying_path_segments_are_replaced(path: str, expected: str) -> None:
    assert clean_url(f"https://example.test{path}", "example.test").path == expected


def test_a_personal_utm_value_is_dropped() -> None:
    assert clean_url("https://example.test/?utm_source=ada@example.com", "example.test").utm == {}


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("javascript:alert(1)", "invalid-url"),
        ("/relative/path", "invalid-url"),
        ("https://evil.test/pricing", "url-not-on-site"),
        ("https://notexample.test/", "url-not-on-site"),
    ],
)
def test_urls_off_the_site_are_refused(url: str, reason: str) -> None:
    with pytest.raises(UrlRefused) as refused:
        clean_url(url, "example.test")
    assert refused.value.reason == reason


@pytest.mark.parametrize(
    ("referrer", "expected"),
    [
        ("https://www.google.com/search?q=ada+lovelace", "google.com"),
        ("https://news.ycombinator.com/item?id=1", "news.ycombinator.com"),
        ("https://blog.example.test/post", None),  # the site itself
        ("android-app://com.slack", None),
        ("http://192.0.2.7/x", None),
        ("", None),
        (None, None),
    ],
)
def test_a_referrer_keeps_its_domain_only(referrer: str | None, expected: str | None) -> None:
    assert referrer_domain(referrer, "example.test") == expected


def test_the_visitor_hash_depends_on_the_daily_salt_and_reveals_nothing() -> None:
    today, tomorrow = b"a" * 32, b"b" * 32
    first = visitor_hash(today, "81.2.69.160", FIREFOX_LINUX, "example.test")
    assert first == visitor_hash(today, "81.2.69.160", FIREFOX_LINUX, "example.test")
    assert first != visitor_hash(tomorrow, "81.2.69.160", FIREFOX_LINUX, "example.test")
    assert first != visitor_hash(today, "81.2.69.161", FIREFOX_LINUX, "example.test")
    assert "81.2.69.160" not in first and len(first) == 32
