"""Partner platforms for the push scenario (d): one Locations receiver per port on 127.0.0.1.

Each answers every request with the OCPI success envelope and records when it arrived (time.time(), the same clock
as the push driver), the method, the path and the small part of the body that matters (status, last_updated). On
SIGTERM or SIGINT, or after --max-seconds, it writes the records to --out as JSON and exits.
"""

import argparse
import json
import signal
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ACK = b'{"status_code":1000,"timestamp":"2026-01-01T00:00:00Z"}'
RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(ACK), ACK)
_records: list[list[Any]] = []
_lock = threading.Lock()


class Receiver(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: the platform's pooled client reuses connections

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _answer(self) -> None:
        arrived = time.time()
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        status = last_updated = None
        if body and len(body) < 4096:
            try:
                data = json.loads(body)
                status, last_updated = data.get("status"), data.get("last_updated")
            except ValueError:
                pass
        with _lock:
            _records.append([self.connection.getsockname()[1], arrived, self.command, self.path, status, last_updated])
        # status line, headers and body in one write: two small writes on a kept-alive connection would meet the
        # client's delayed ACK (Nagle) and add ~40 ms to every answer
        self.wfile.write(RESPONSE)

    do_GET = do_PUT = do_PATCH = do_POST = do_DELETE = _answer

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        return


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, action="append", required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--max-seconds", type=float, default=3600.0)
    args = parser.parse_args()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    servers = [ThreadingHTTPServer(("127.0.0.1", port), Receiver) for port in args.port]
    for server in servers:
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
    stop.wait(args.max_seconds)
    for server in servers:
        server.shutdown()
        server.server_close()
    with _lock:
        args.out.write_text(json.dumps(_records))


if __name__ == "__main__":
    main()
