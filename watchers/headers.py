"""Security headers on every answer: no type sniffing anywhere; pages that
run only their own script and cannot be framed; badges that run nothing."""

from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path
from typing import Any

from watchers.limits import Receive, Scope, Send

TEMPLATES = Path(__file__).parent / "templates"
DOCS_PATH = "/api/v1/docs"


def script_hashes() -> str:
    """CSP sources for the inline scripts of the page templates, by hash."""
    found = []
    for template in sorted(TEMPLATES.glob("*.html")):
        for script in re.findall(r"<script>(.*?)</script>", template.read_text(), re.S):
            digest = hashlib.sha256(script.encode()).digest()
            found.append(f"'sha256-{base64.b64encode(digest).decode()}'")
    return " ".join(found)


def page_policy() -> str:
    scripts = script_hashes() or "'none'"
    return (
        f"default-src 'self'; script-src {scripts}; "
        "style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; "
        "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )


# An SVG opened on its own is a document: it may draw, never run anything.
BADGE_POLICY = "default-src 'none'; style-src 'unsafe-inline'"


class SecurityHeaders:
    def __init__(self, app: Any) -> None:
        self.app = app
        self.page = page_policy().encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                kind = dict(headers).get(b"content-type", b"")
                headers.append((b"x-content-type-options", b"nosniff"))
                headers.append((b"referrer-policy", b"same-origin"))
                if scope["path"] == DOCS_PATH:
                    # Swagger UI runs scripts of its own: it may not be framed, no more.
                    headers.append((b"content-security-policy", b"frame-ancestors 'none'"))
                elif kind.startswith(b"text/html"):
                    headers.append((b"content-security-policy", self.page))
                    headers.append((b"x-frame-options", b"DENY"))
                elif kind.startswith(b"image/svg+xml"):
                    headers.append((b"content-security-policy", BADGE_POLICY.encode()))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)
