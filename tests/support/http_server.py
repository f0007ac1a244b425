"""A real HTTP server on 127.0.0.1 for download tests, with modes that cut or slow transfers."""
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Dict


class FileServer:
    """Serves ``files`` (path -> bytes). ``truncate_to`` sends the full Content-Length but
    only that many bytes before closing, as an interrupted transfer does. ``chunk_delay_s``
    sends the body in ``chunk_size`` pieces with that pause before each, a slow server.
    ``requests`` lists every request's path, ``completed`` those whose whole body was sent."""

    def __init__(self, files: Dict[str, bytes]):
        self.files = files
        self.truncate_to = None
        self.chunk_delay_s = 0.0
        self.chunk_size = 1 << 16
        self.requests = []
        self.completed = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                server.requests.append(self.path)
                body = server.files.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header('Content-Length', str(len(body)))
                self.end_headers()
                sent = body if server.truncate_to is None else body[:server.truncate_to]
                for start in range(0, len(sent), server.chunk_size):
                    time.sleep(server.chunk_delay_s)
                    self.wfile.write(sent[start:start + server.chunk_size])
                    self.wfile.flush()
                if len(sent) == len(body):
                    server.completed.append(self.path)
                self.close_connection = True

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(('127.0.0.1', 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f'http://127.0.0.1:{self.httpd.server_address[1]}'

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
