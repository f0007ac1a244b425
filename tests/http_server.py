"""A real HTTP server on 127.0.0.1 for download tests, with a mode that cuts transfers."""
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Dict


class FileServer:
    """Serves ``files`` (path -> bytes). ``truncate_to`` sends the full Content-Length but
    only that many bytes before closing, as an interrupted transfer does."""

    def __init__(self, files: Dict[str, bytes]):
        self.files = files
        self.truncate_to = None
        self.requests = []
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
                self.wfile.write(body if server.truncate_to is None else body[:server.truncate_to])
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
