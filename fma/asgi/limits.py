"""Request-size limits for the small HTTP servers of FMA (launcher, stub engine, requester).

Pydantic bounds each field of a request; this bounds the bytes read before parsing.
"""

import json

from starlette.types import ASGIApp, Receive, Scope, Send


class BodySizeLimit:
    """Rejects request bodies over ``limit_bytes`` (413) and bodies of unknown length (411)
    before anything reads them: pydantic bounds fields, this bounds the bytes."""

    def __init__(self, app: ASGIApp, *, limit_bytes: int) -> None:
        self._app = app
        self._limit_bytes = limit_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in ("POST", "PUT", "PATCH"):
            headers = dict(scope["headers"])
            length = headers.get(b"content-length")
            if length is None and b"transfer-encoding" in headers:
                await _send_error(send, 411, "a request body needs a Content-Length")
                return
            if length is not None and (
                not length.isdigit() or len(length) > 12 or int(length) > self._limit_bytes
            ):
                await _send_error(send, 413, f"request body larger than {self._limit_bytes} bytes")
                return
        await self._app(scope, receive, send)


async def _send_error(send: Send, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}, ensure_ascii=False, separators=(",", ":")).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
