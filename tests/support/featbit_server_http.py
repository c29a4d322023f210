"""The test server's HTTP side: a tiny HTTP/1.1 server on asyncio streams (keep-alive,
``Content-Length`` bodies only), enough for ``fbclient``'s urllib3 sender; and port reservation,
so a stopped server refuses connections on ports nobody else can take."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Awaitable, Callable, Mapping
from http import HTTPStatus

LOOPBACK = "127.0.0.1"
HEADER_LIMIT = 64 * 1024

Route = Callable[[str, str, Mapping[str, str], bytes], Awaitable[tuple[int, bytes]]]


def reserve_port(port: int) -> socket.socket:
    """Bind (without listening) so connections are refused but nobody else takes the port."""
    deadline = time.monotonic() + 2.0
    while True:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((LOOPBACK, port))
            sock.setblocking(False)
            return sock
        except OSError:
            sock.close()
            if port == 0 or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def http_response(status: int, body: bytes = b"", *, keep_alive: bool = True) -> bytes:
    lines = [
        f"HTTP/1.1 {status} {HTTPStatus(status).phrase}",
        f"Content-Length: {len(body)}",
        "Server: featbit-test-server",
    ]
    if body:
        lines.append("Content-Type: application/json; charset=utf-8")
    if not keep_alive:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


async def serve_http_connection(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, route: Route
) -> None:
    """Answer requests on one connection with ``route(method, target, headers, body)`` until
    the client closes it or asks to."""
    try:
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
                return
            request_line, *header_lines = head.decode("latin-1").split("\r\n")
            parts = request_line.split(" ")
            if len(parts) != 3:
                writer.write(http_response(400, keep_alive=False))
                await writer.drain()
                return
            method, target, version = parts
            headers: dict[str, str] = {}
            for line in header_lines:
                if ":" in line:
                    name, value = line.split(":", 1)
                    headers[name.strip().lower()] = value.strip()
            if "transfer-encoding" in headers:
                writer.write(http_response(411, keep_alive=False))
                await writer.drain()
                return
            try:
                length = int(headers.get("content-length", "0"))
                body = await reader.readexactly(length) if length > 0 else b""
            except (ValueError, asyncio.IncompleteReadError, ConnectionError):
                return
            status, response_body = await route(method, target, headers, body)
            keep_alive = version == "HTTP/1.1" and headers.get("connection", "").lower() != "close"
            writer.write(http_response(status, response_body, keep_alive=keep_alive))
            await writer.drain()
            if not keep_alive:
                return
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        writer.close()
