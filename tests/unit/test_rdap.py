"""Reading a registry's RDAP answer (RFC 9083) and which domain a target
stands on: every malformed answer is a reason, never an exception."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from pydantic import TypeAdapter

from watchers.domains import DomainsSection, domains_of, registered_domain, server_for
from watchers.probes import AnyTarget, Target
from watchers.probes.rdap import _read

EXPIRES_MS = int(datetime(2027, 8, 13, 4, tzinfo=UTC).timestamp() * 1000)
ADAPTER: TypeAdapter[AnyTarget] = TypeAdapter(Target)
GOOD = {"objectClassName": "domain", "ldhName": "EXAMPLE.COM",
        "events": [{"eventAction": "registration", "eventDate": "1995-08-14T04:00:00Z"},
                   {"eventAction": "expiration", "eventDate": "2027-08-13T04:00:00Z"}]}  # fmt: skip


def test_the_expiration_event_is_read() -> None:
    found = _read("example.com", json.dumps(GOOD).encode(), 1)
    assert (found.expires_ms, found.error) == (EXPIRES_MS, None)
    offset = {**GOOD, "events": [{"eventAction": "expiration",
                                  "eventDate": "2027-08-13T06:00:00+02:00"}]}  # fmt: skip
    assert _read("example.com", json.dumps(offset).encode(), 1).expires_ms == EXPIRES_MS


@pytest.mark.parametrize(
    ("body", "said"),
    [
        (b"<html>", "not JSON"),
        (b"[" * 100_000, "not JSON"),
        (json.dumps({"objectClassName": "entity"}).encode(), "not a domain object"),
        (json.dumps({"objectClassName": "domain", "events": "soon"}).encode(), "no events"),
        (json.dumps({**GOOD, "events": [{"eventAction": "registration"}]}).encode(),
         "no expiration event"),
        (json.dumps({**GOOD, "events": [{"eventAction": "expiration",
                                         "eventDate": "next tuesday"}]}).encode(),
         "unreadable"),
        (json.dumps({**GOOD, "events": [{"eventAction": "expiration",
                                         "eventDate": "2027-08-13T04:00:00"}]}).encode(),
         "unreadable"),
    ],
)  # fmt: skip
def test_a_malformed_answer_is_a_reason(body: bytes, said: str) -> None:
    found = _read("example.com", body, 1)
    assert found.expires_ms is None and found.error is not None and said in found.error


def target(**fields: object) -> AnyTarget:
    return ADAPTER.validate_python({"id": "t", **fields})


def test_the_domain_a_target_stands_on() -> None:
    assert (
        registered_domain(target(kind="http", url="https://shop.Example.com./x")) == "example.com"
    )
    assert registered_domain(target(kind="tcp", host="db.example.net", port=5432)) == "example.net"
    assert registered_domain(target(kind="tcp", host="10.0.0.5", port=5432)) is None
    assert registered_domain(target(kind="http", url="http://[::1]:8080/")) is None
    assert registered_domain(target(kind="dns", query="biphrost.org", resolver="9.9.9.9")) == (
        "biphrost.org"
    )
    shop = target(kind="http", url="https://shop.acme.co.uk/", domain="acme.co.uk")
    assert registered_domain(shop) == "acme.co.uk"
    assert registered_domain(target(kind="http", url="https://a.example.com/", domain="")) is None
    on_one = [target(kind="http", url="https://a.example.com/"),
              target(kind="tcp", host="b.example.com", port=1)]  # fmt: skip
    assert domains_of(on_one) == {"example.com": ["t", "t"]}


def test_a_registry_is_found_by_its_top_level_domain_and_config_wins() -> None:
    servers = DomainsSection.model_validate({"rdap": {"io": "https://rdap.example/io"}}).servers()
    assert server_for("example.com", servers) == "https://rdap.verisign.com/com/v1/"
    assert server_for("example.io", servers) == "https://rdap.example/io/"
    assert server_for("example.zz", servers) is None
