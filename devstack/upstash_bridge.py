"""The Upstash Redis REST protocol in front of a real Redis, for the local stack.

Faithful to what Upstash serves and the `upstash-redis` client parses:
- `POST /` with a JSON command array -> `{"result": ...}`; a Redis error -> 400 `{"error": "..."}`.
- `POST /pipeline` with an array of command arrays -> 200 and one `{"result"}`/`{"error"}` each.
- `POST /multi-exec`: the same inside MULTI/EXEC; a transaction Redis discards as a whole (a
  command rejected while queuing) -> 400 and one `{"error"}` per command (the queuing error for
  the rejected command, EXECABORT for the others), the shape `upstash-redis` parses.
- Stateless per request, as Upstash is: commands that would leave state on the shared Redis
  connection (MULTI, EXEC, WATCH, SELECT, SUBSCRIBE, ...) are refused with 400; a transaction is
  one `/multi-exec` request.
- `GET|POST|PUT|HEAD /<cmd>/<arg>/...`: path segments are the command; a POST/PUT body is the
  last argument, then query parameters as name/value pairs.
- `Authorization: Bearer <token>` or `?_token=`; otherwise 401 `{"error": "Unauthorized"}`.
- `Upstash-Encoding: base64`: every string in the result is base64 of its raw bytes, except the
  status reply "OK"; integers, nulls and error messages stay as they are. Without it, strings
  are UTF-8 with invalid bytes replaced by U+FFFD.
Replies keep RESP2 shapes (nested arrays for streams, flat field/value arrays for hashes), as
Upstash returns them. JSON numbers are passed to Redis as their literal text.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import parse_qsl, unquote

from redis.asyncio import BlockingConnectionPool
from redis.exceptions import RedisError, ResponseError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

Command = list[str | bytes]
Reply = Any  # None | int | bytes | list[Reply] | ResponseError (nested in EXEC replies)

UNAUTHORIZED = {"error": "Unauthorized"}
# Commands that change the state of the connection they run on: on a pooled connection that
# state would leak into other requests.
CONNECTION_STATE_COMMANDS = frozenset({
    "MULTI", "EXEC", "DISCARD", "WATCH", "UNWATCH", "SELECT", "SWAPDB", "AUTH", "HELLO", "RESET",
    "QUIT", "MONITOR", "SUBSCRIBE", "PSUBSCRIBE", "SSUBSCRIBE", "UNSUBSCRIBE", "PUNSUBSCRIBE",
    "SUNSUBSCRIBE", "CLIENT", "READONLY", "READWRITE", "ASKING",
})
ALLOWED_METHODS = ["GET", "HEAD", "POST", "PUT"]


class BadRequest(Exception):
    """The request is not a command Upstash would accept (400 `{"error": ...}`)."""


class Discarded(Exception):
    """Redis discarded a transaction; one error per command (the queuing error or EXECABORT)."""

    def __init__(self, errors: list[ResponseError]) -> None:
        super().__init__(errors)
        self.errors = errors


def error_text(exc: RedisError) -> str:
    """Redis's own error line: redis-py strips a known prefix ("ERR", "NOSCRIPT") into status_code."""
    prefix = getattr(exc, "status_code", None)
    message = str(exc)
    return f"{prefix} {message}" if prefix else message


def encode_reply(reply: Reply, base64_strings: bool) -> Any:
    if reply is None or isinstance(reply, int):
        return reply
    if isinstance(reply, bytes):
        if base64_strings and reply != b"OK":
            return base64.b64encode(reply).decode("ascii")
        return reply.decode("utf-8", errors="replace")
    if isinstance(reply, list):
        return [encode_reply(item, base64_strings) for item in reply]
    if isinstance(reply, RedisError):
        return error_text(reply)
    return str(reply)


def _argument(value: Any) -> str:
    # Numbers arrive as their JSON text (see parse_json); bools and nested values as JSON text.
    if isinstance(value, str):
        return value
    if value is None:
        raise BadRequest("ERR null is not a valid command argument")
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _reject_constant(name: str) -> Any:
    raise BadRequest(f"ERR invalid JSON number {name}")


def parse_json(body: bytes) -> Any:
    try:
        return json.loads(body, parse_int=str, parse_float=str, parse_constant=_reject_constant)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest("ERR failed to parse request body as JSON") from exc


def stateless(command: Command) -> Command:
    """`command`, unless it would leave state on the connection (400)."""
    name = _text(command[0]).upper()
    if name in CONNECTION_STATE_COMMANDS:
        raise BadRequest(f"ERR Command is not available: '{name}'. Use /multi-exec for a "
                         "transaction; every request runs on its own")
    return command


def command_from_json(value: Any) -> Command:
    if not isinstance(value, list) or not value:
        raise BadRequest("ERR a command must be a non-empty JSON array")
    return stateless([_argument(item) for item in value])


def commands_from_json(value: Any) -> list[Command]:
    if not isinstance(value, list) or not value:
        raise BadRequest("ERR expected a non-empty JSON array of commands")
    return [command_from_json(item) for item in value]


def command_from_path(raw_path: bytes, query: bytes, body: bytes) -> Command:
    # Split the raw path so that an encoded "/" (%2F) stays inside its argument.
    segments = raw_path.decode("latin-1").strip("/").split("/")
    command: Command = [unquote(segment) for segment in segments if segment]
    if body:
        command.append(body)
    for name, value in parse_qsl(query.decode("latin-1"), keep_blank_values=True):
        if name == "_token":
            continue
        command.append(name)
        if value:
            command.append(value)
    if not command:
        raise BadRequest("ERR empty command")
    return stateless(command)


def _sha1(script: bytes) -> str:
    return hashlib.sha1(script, usedforsecurity=False).hexdigest()


class Scripts:
    """Lua scripts as Upstash takes them.

    Upstash accepts a first line `#!lua flags=...` (Redis 7 syntax, plus flags of its own such as
    `allow-key-locking`, which upstash-ratelimit sends); Redis 6.2 cannot compile it and Redis 7
    rejects the unknown flag. The bridge blanks that line (line numbers in errors stay the same)
    and keeps the SHA1 clients see equal to the SHA1 of the text they sent.
    """

    def __init__(self) -> None:
        self._redis_sha: dict[str, str] = {}

    def _strip(self, script: str | bytes) -> tuple[str | bytes, str | None]:
        raw = script.encode() if isinstance(script, str) else script
        if not raw.startswith(b"#!"):
            return script, None
        newline = raw.find(b"\n")
        stripped = raw[newline:] if newline >= 0 else b""
        client_sha = _sha1(raw)
        self._redis_sha[client_sha] = _sha1(stripped)
        return stripped, client_sha

    def _sha(self, sha: str | bytes) -> str | bytes:
        key = sha.decode() if isinstance(sha, bytes) else sha
        return self._redis_sha.get(key.lower(), sha)

    def prepare(self, command: Command) -> tuple[Command, Callable[[Reply], Reply] | None]:
        """The command to send to Redis, and how to turn Redis's reply into Upstash's."""
        name = _text(command[0]).upper()
        sub = _text(command[1]).upper() if len(command) > 1 else ""
        if name in ("EVAL", "EVAL_RO") and len(command) > 1:
            script, _ = self._strip(command[1])
            return [command[0], script, *command[2:]], None
        if name in ("EVALSHA", "EVALSHA_RO") and len(command) > 1:
            return [command[0], self._sha(command[1]), *command[2:]], None
        if name == "SCRIPT" and sub == "LOAD" and len(command) == 3:
            script, client_sha = self._strip(command[2])
            if client_sha is None:
                return command, None
            sha = client_sha.encode()
            return [*command[:2], script], lambda r: r if isinstance(r, RedisError) else sha
        if name == "SCRIPT" and sub == "EXISTS":
            return [*command[:2], *(self._sha(s) for s in command[2:])], None
        return command, None


def _text(value: str | bytes) -> str:
    return value.decode("utf-8", errors="replace") if isinstance(value, bytes) else value


class RedisRunner:
    """Sends commands on one pooled connection and returns raw RESP2 replies (errors as values)."""

    def __init__(self, redis_url: str, max_connections: int = 32) -> None:
        self.scripts = Scripts()
        self.pool = BlockingConnectionPool.from_url(
            redis_url, protocol=2, decode_responses=False, max_connections=max_connections,
            timeout=30,
        )

    async def _send(self, commands: Sequence[Command]) -> list[Reply]:
        conn = await self.pool.get_connection()
        try:
            await conn.send_packed_command(conn.pack_commands(commands))
            replies: list[Reply] = []
            for _ in commands:
                try:
                    replies.append(await conn.read_response(disable_decoding=True))
                except ResponseError as exc:
                    replies.append(exc)
            return replies
        except BaseException:
            # A half-read connection must not go back into the pool.
            await conn.disconnect()
            raise
        finally:
            await self.pool.release(conn)

    async def run(self, commands: Sequence[Command]) -> list[Reply]:
        """One reply per command, in order (a pipeline: other clients may interleave)."""
        prepared = [self.scripts.prepare(command) for command in commands]
        replies = await self._send([command for command, _ in prepared])
        return [fix(r) if fix else r for r, (_, fix) in zip(replies, prepared, strict=True)]

    async def transaction(self, commands: Sequence[Command]) -> list[Reply]:
        """Replies of the commands inside MULTI/EXEC; raises `Discarded` when Redis discarded
        the transaction (a command refused while queuing)."""
        prepared = [self.scripts.prepare(command) for command in commands]
        replies = await self._send([["MULTI"], *(command for command, _ in prepared), ["EXEC"]])
        queued, executed = replies[1:-1], replies[-1]
        if isinstance(executed, ResponseError):  # EXECABORT: Redis discarded the transaction
            raise Discarded([r if isinstance(r, ResponseError) else executed for r in queued])
        if not isinstance(executed, list) or len(executed) != len(prepared):
            raise ResponseError("ERR transaction aborted")
        return [fix(r) if fix else r for r, (_, fix) in zip(executed, prepared, strict=True)]

    async def close(self) -> None:
        await self.pool.aclose()


def _wants_base64(request: Request) -> bool:
    return request.headers.get("upstash-encoding", "").lower() == "base64"


def _result(reply: Reply, base64_strings: bool) -> dict[str, Any]:
    if isinstance(reply, RedisError):
        return {"error": error_text(reply)}
    return {"result": encode_reply(reply, base64_strings)}


def create_app(redis_url: str, token: str) -> Starlette:
    """The bridge as an ASGI app; serve it with devstack.serve.ServerThread."""
    expected = token.encode()
    runner: RedisRunner | None = None

    def authorized(request: Request) -> bool:
        header = request.headers.get("authorization", "")
        scheme, _, presented = header.partition(" ")
        if scheme.lower() != "bearer" or not presented:
            presented = request.query_params.get("_token", "")
        return bool(presented) and hmac.compare_digest(presented.strip().encode(), expected)

    async def handle(request: Request) -> Response:
        nonlocal runner
        if not authorized(request):
            return JSONResponse(UNAUTHORIZED, status_code=401)
        if runner is None:  # served without lifespan events
            runner = RedisRunner(redis_url)
        b64 = _wants_base64(request)
        body = await request.body()
        path = request.url.path.rstrip("/")
        try:
            if path == "/pipeline":
                replies = await runner.run(commands_from_json(parse_json(body)))
                return JSONResponse([_result(r, b64) for r in replies])
            if path == "/multi-exec":
                try:
                    replies = await runner.transaction(commands_from_json(parse_json(body)))
                except Discarded as exc:
                    return JSONResponse([{"error": error_text(e)} for e in exc.errors],
                                        status_code=400)
                return JSONResponse([_result(r, b64) for r in replies])
            if path == "" and request.method in ("POST", "PUT"):
                command = command_from_json(parse_json(body))
            else:
                command = command_from_path(request.scope.get("raw_path") or b"/",
                                            request.scope.get("query_string", b""), body)
            (reply,) = await runner.run([command])
        except BadRequest as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        except RedisError as exc:  # Redis unreachable or the connection broke
            return JSONResponse({"error": error_text(exc)}, status_code=500)
        result = _result(reply, b64)
        return JSONResponse(result, status_code=400 if "error" in result else 200)

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        nonlocal runner
        runner = runner or RedisRunner(redis_url)
        try:
            yield
        finally:
            await runner.close()
            runner = None

    routes = [
        Route("/", handle, methods=ALLOWED_METHODS),
        Route("/{rest:path}", handle, methods=ALLOWED_METHODS),
    ]
    return Starlette(routes=routes, lifespan=lifespan)
