"""The status page follows the node's event stream in a real browser: the
pair agrees that a target is down and the open page shows it at once,
swapped in place (no reload), long before its 30 s refresh would."""

from __future__ import annotations

from tests.integration.browser import needs_browser
from tests.integration.devtools import chromium
from tests.integration.processes import Pair
from tests.integration.test_pair import Behaviour

STATE_OF_BLOG = "document.querySelector('tr.target').dataset.state"
# The page's own refresh: what the stream must beat.
EVERY_S = 30.0


@needs_browser
def test_an_open_page_shows_the_agreed_down_at_once_without_a_reload(
    blog_pair: tuple[Pair, Behaviour],
) -> None:
    pair, behaviour = blog_pair
    with chromium() as browser:
        browser.open(pair.url("huginn", "/"))
        browser.wait(lambda: browser.evaluate(STATE_OF_BLOG) == "UP", "the page shows UP", 30)
        browser.evaluate("window.sameDocument = 'yes'")

        def streaming() -> bool:
            sent = browser.of("Network.requestWillBeSent")
            return any(r["request"]["url"].endswith("/api/v1/stream") for r in sent)

        browser.wait(streaming, "the page opened the node's stream", 30)
        behaviour.down = True
        browser.wait(lambda: bool(browser.of("Network.eventSourceMessageReceived")),
                     "a stream event reached the page", 90)  # fmt: skip
        browser.wait(lambda: browser.evaluate(STATE_OF_BLOG) == "DOWN", "the page shows DOWN", 30)
        assert browser.evaluate("window.sameDocument") == "yes", "the page was reloaded"
        (told, *_) = browser.of("Network.eventSourceMessageReceived")
        assert told["eventName"] == "transition" and '"notice":"DOWN"' in told["data"]
        # The page fetched itself again right after the event: the stream's
        # doing, not its 30 s timer's.
        fetches = [r["timestamp"] for r in browser.of("Network.requestWillBeSent")
                   if r.get("type") == "Fetch" and r["timestamp"] >= told["timestamp"]]  # fmt: skip
        assert fetches and min(fetches) - told["timestamp"] < EVERY_S / 6, fetches
