"""A low-overhead burst client for the benchmarks: one thread, non-blocking sockets.

A burst of 50 or 100 requests from as many Python threads (``http.client`` each) costs
the client process more CPU than the null route costs the server, and on a 2-core
machine that CPU is taken from the server being measured; thread wake-ups also delay
the moment each answer is noticed. Here the requests are serialised beforehand, every
connection is opened first, then all requests are written in one tight loop and the
answers are read with a selector as they come: each latency runs from its request's
write to the last byte of its answer.
"""

from __future__ import annotations

import selectors
import socket
import time

HEADER_END = b"\r\n\r\n"


def raw_request(method: str, path: str, headers: dict, body: bytes | str = b"") -> bytes:
    """An HTTP/1.1 request as bytes, asking the server to close after answering."""
    if isinstance(body, str):
        body = body.encode()
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    if body or method not in ("GET", "HEAD"):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines)).encode() + HEADER_END + body


def _status(buffer: bytes) -> str:
    first = buffer.split(b"\r\n", 1)[0].split()
    return first[1].decode() if len(first) > 1 else "error"


def _complete(buffer: bytes) -> bool:
    """Whether ``buffer`` holds a whole response (headers, then Content-Length bytes)."""
    end = buffer.find(HEADER_END)
    if end < 0:
        return False
    head = buffer[:end].decode("latin-1").lower()
    if _status(buffer) in ("204", "304"):
        return True
    for line in head.split("\r\n")[1:]:
        name, _, value = line.partition(":")
        if name.strip() == "content-length":
            return len(buffer) - end - len(HEADER_END) >= int(value.strip())
    return False  # no length: the server's close ends it


def fire(port: int, requests: list[bytes], timeout: float = 60.0) -> list[tuple[float, str]]:
    """Send every raw request at once, each on its own connection; (latency ms, status)
    per request, in completion order. A request not answered in ``timeout`` is an error."""
    connections = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in requests]
    selector = selectors.DefaultSelector()
    started: dict[socket.socket, float] = {}
    buffers: dict[socket.socket, bytearray] = {}
    for conn, raw in zip(connections, requests, strict=True):
        started[conn] = time.perf_counter()
        conn.sendall(raw)  # a request fits the socket buffer: this does not wait
        conn.setblocking(False)
        buffers[conn] = bytearray()
        selector.register(conn, selectors.EVENT_READ)
    results: list[tuple[float, str]] = []
    deadline = time.perf_counter() + timeout
    while buffers and time.perf_counter() < deadline:
        for key, _events in selector.select(timeout=1.0):
            conn = key.fileobj
            try:
                chunk = conn.recv(65536)
            except OSError:
                chunk = b""
            buffer = buffers[conn]
            buffer += chunk
            if chunk and not _complete(buffer):
                continue
            elapsed = (time.perf_counter() - started[conn]) * 1000
            results.append((elapsed, _status(buffer) if buffer else "error"))
            selector.unregister(conn)
            conn.close()
            del buffers[conn]
    for conn in buffers:  # timed out
        results.append((timeout * 1000, "error"))
        conn.close()
    selector.close()
    return results
