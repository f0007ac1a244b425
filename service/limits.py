"""What the service lets in: who (a bearer token), how much (request bodies) and how
many at once (requests in flight)."""
import hashlib
import hmac
import json
import re
from urllib.parse import parse_qs
from typing import Optional, Sequence

# Paths that carry no data of the index: the review page's own files and the API's
# description, so that a browser can load the page and ask for the token.
PUBLIC_PATHS = ('/', '/docs', '/openapi.json', '/favicon.ico')
PUBLIC_PREFIXES = ('/page/',)
IN_FLIGHT_RETRY_AFTER_S = 1
# Answered whatever the load: a monitor must see the service alive when it is busiest.
ALWAYS_ADMITTED = ('/health',)


# A browser's <video> cannot send a header: a video's file is also let in with a key
# made from the token and that one video's id (the token itself never goes in a URL).
VIDEO_FILE = re.compile(r'^/videos/([0-9a-f]{64})/file$')


def video_key(token: str, video_id: str) -> str:
    """The key that opens one video's file (``?key=``) for whoever holds ``token``."""
    return hmac.new(token.encode(), f'video-file:{video_id}'.encode(), hashlib.sha256).hexdigest()


class TooLarge(Exception):
    pass


async def _send_json(send, status: int, detail: str, headers: Sequence = ()) -> None:
    body = json.dumps({'detail': detail}).encode()
    await send({'type': 'http.response.start', 'status': status,
                'headers': [(b'content-type', b'application/json'), (b'content-length', str(len(body)).encode()),
                            *headers]})
    await send({'type': 'http.response.body', 'body': body})


class TokenCheck:
    """ASGI middleware: every request but the public paths must send
    ``Authorization: Bearer <token>`` (compared in constant time)."""

    def __init__(self, app, token: Optional[str]):
        self.app, self.token = app, token

    async def __call__(self, scope, receive, send):
        if scope['type'] != 'http' or self.token is None or _public(scope['path']):
            return await self.app(scope, receive, send)
        headers = dict(scope['headers'])
        given = headers.get(b'authorization', b'').decode('latin-1')
        if not given and self._keyed_video(scope):
            return await self.app(scope, receive, send)
        if not hmac.compare_digest(given.encode(), f'Bearer {self.token}'.encode()):
            reason = 'a token is required: send "Authorization: Bearer TOKEN"' if not given else 'wrong token'
            return await _send_json(send, 401, reason, [(b'www-authenticate', b'Bearer')])
        return await self.app(scope, receive, send)

    def _keyed_video(self, scope) -> bool:
        found = VIDEO_FILE.match(scope['path'])
        if found is None or scope['method'] not in ('GET', 'HEAD'):
            return False
        keys = parse_qs(scope.get('query_string', b'').decode('latin-1')).get('key', [])
        return len(keys) == 1 and hmac.compare_digest(keys[0].encode(), video_key(self.token, found[1]).encode())


class BodyLimit:
    """ASGI middleware: refuse a request body over ``max_bytes`` with 413, from its
    Content-Length before reading anything, else as soon as the bytes read pass it
    (a chunked upload), so a huge upload never lands on disk whole."""

    def __init__(self, app, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send):
        if scope['type'] != 'http':
            return await self.app(scope, receive, send)
        reason = f'the request body is larger than the limit of {self.max_bytes / 1e6:g} MB'
        length = dict(scope['headers']).get(b'content-length')
        if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
            return await _send_json(send, 413, reason if length.isdigit() else 'a bad Content-Length')
        received, exceeded, answered = 0, False, False

        async def counting_receive():
            nonlocal received, exceeded
            message = await receive()
            if message['type'] == 'http.request':
                received += len(message.get('body', b''))
                if received > self.max_bytes:
                    exceeded = True
                    raise TooLarge()
            return message

        async def answering_send(message):
            # The framework turns the aborted read into its own error answer: say why instead.
            nonlocal answered
            if not exceeded:
                await send(message)
            elif not answered:
                answered = True
                await _send_json(send, 413, reason)

        try:
            await self.app(scope, counting_receive, answering_send)
        except TooLarge:
            if not answered:
                await _send_json(send, 413, reason)


class InFlightLimit:
    """ASGI middleware: at most ``max_in_flight`` requests in the service at once (the
    page's files and /health aside); one more is answered 503 with Retry-After at once,
    before its body is read, instead of queueing without bound. Bounds the threads, the
    memory and the spooled upload bodies whatever the load."""

    def __init__(self, app, max_in_flight: int):
        if max_in_flight < 1:
            raise ValueError(f'the limit of requests in flight must be at least 1, got {max_in_flight}')
        self.app, self.max_in_flight, self.in_flight = app, max_in_flight, 0

    async def __call__(self, scope, receive, send):
        if scope['type'] != 'http' or _public(scope['path']) or scope['path'] in ALWAYS_ADMITTED:
            return await self.app(scope, receive, send)
        if self.in_flight >= self.max_in_flight:  # one event loop: no lock needed
            return await _send_json(send, 503, f'the service is answering {self.max_in_flight} requests already; '
                                    f'retry after {IN_FLIGHT_RETRY_AFTER_S} s',
                                    [(b'retry-after', str(IN_FLIGHT_RETRY_AFTER_S).encode())])
        self.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1


def _public(path: str) -> bool:
    return path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)
