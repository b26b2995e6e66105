"""A tiny local HTTP server answering from a script, for retry and failure tests."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Dict, List, Optional, Tuple

Answer = Tuple[int, Dict[str, str], Any]


def problem(status: int, kind: str, detail: str, field: Optional[str] = None) -> Dict[str, Any]:
    p = {"type": f"https://learnloop.dev/problems/{kind}", "title": kind, "status": status, "detail": detail}
    if field:
        p["field"] = field
    return p


class Scripted:
    """Answers each request with the next scripted answer (the last one repeats)."""

    def __init__(self, answers: List[Answer], delay: float = 0.0) -> None:
        self.answers = list(answers)
        self.delay = delay
        self.requests: List[Dict[str, Any]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                outer.requests.append({"method": self.command, "path": self.path, "body": body,
                                       "time": time.monotonic(), "headers": dict(self.headers)})
                if outer.delay:
                    time.sleep(outer.delay)
                status, headers, payload = outer.answers.pop(0) if len(outer.answers) > 1 else outer.answers[0]
                data = json.dumps(payload).encode()
                self.send_response(status)
                ctype = "application/problem+json" if status >= 400 else "application/json"
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = _answer

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> "Scripted":
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def closed_port() -> str:
    """A loopback URL where nothing listens."""
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return f"http://127.0.0.1:{port}"
