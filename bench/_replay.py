"""A stub HTTP server that answers every request with one recorded JSON body, at once:
the MLflow client's own floor (``python bench/_replay.py PORT FILE``). Timing the client
against it measures what the client alone costs -- sending the request, reading and
parsing the answer -- which no server can go below."""

from __future__ import annotations

import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


def main() -> None:
    port, body = int(sys.argv[1]), Path(sys.argv[2]).read_bytes()

    class Replay(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as the real servers
        # TCP_NODELAY, and the answer in one write, as uvicorn sends it: a body written
        # after its headers would wait on the client's delayed ACK (Nagle's algorithm).
        disable_nagle_algorithm = True

        def _answer(self) -> None:
            self.rfile.read(int(self.headers.get("content-length") or 0))
            head = (
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                f"content-length: {len(body)}\r\n\r\n"
            )
            self.wfile.write(head.encode() + body)

        do_GET = do_POST = _answer

        def log_message(self, *args: object) -> None:
            pass

    ThreadingHTTPServer(("127.0.0.1", port), Replay).serve_forever()


if __name__ == "__main__":
    main()
