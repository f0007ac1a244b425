"""What the service lets in: who (a bearer token) and how much (request bodies)."""
import hmac
import json
from typing import Optional, Sequence

# Paths that carry no data of the index: the review page's own files and the API's
# description, so that a browser can load the page and ask for the token.
PUBLIC_PATHS = ('/', '/docs', '/openapi.json', '/favicon.ico')
PUBLIC_PREFIXES = ('/page/',)


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
        if not hmac.compare_digest(given.encode(), f'Bearer {self.token}'.encode()):
            reason = 'a token is required: send "Authorization: Bearer TOKEN"' if not given else 'wrong token'
            return await _send_json(send, 401, reason, [(b'www-authenticate', b'Bearer')])
        return await self.app(scope, receive, send)


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


def _public(path: str) -> bool:
    return path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)
