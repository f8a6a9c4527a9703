"""The HTTP interface of a current ClickHouse, for the collector's ClickHouse test: an in-process
ClickHouse engine (chdb, from PyPI) behind the part of the HTTP protocol the collector speaks.

A POST's SQL is its `query` parameter followed by a newline and the body (INSERT ... FORMAT
JSONEachRow with its rows), or the body alone; the answer is the result as text, 200, or the
engine's message with 500, as clickhouse-server does. One session (one data directory) serves
every request, one at a time.

Usage: python chdb_http.py DATA_DIR  (prints the port it listens on, then serves until killed)
"""

import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

from chdb import session as chs

SESSION = chs.Session(sys.argv[1])
LOCK = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    def log_message(self, fmt, *args):
        pass

    def do_POST(self):
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length).decode("utf-8")
        query = parse_qs(urlparse(self.path).query).get("query", [None])[0]
        sql = f"{query}\n{body}" if query else body
        try:
            with LOCK:
                result = SESSION.query(sql, "TabSeparated")
            status, text = 200, result.bytes() if result is not None else b""
        except Exception as error:  # the engine's message goes back to the client
            status, text = 500, str(error).encode("utf-8")
        self.send_response(status)
        self.send_header("content-type", "text/plain; charset=UTF-8")
        self.send_header("content-length", str(len(text)))
        self.end_headers()
        self.wfile.write(text)


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
