"""Keeps a real redis-server's `default` ACL user in step with a replication
group's AUTH tokens, so clients of the test bed meet the passwords ElastiCache
would ask for; and copies its keys into a snapshot (DUMP/PTTL) and out of one
into a restored group's server (RESTORE ... REPLACE).

A binding (POST /_oms/config {"redis_bindings": {id: {...}}}) names the server
and an admin ACL user the emulator logs in as; the `default` user is the one
clients without a user name authenticate as (AUTH <token>), as on ElastiCache.
Minimal RESP over a TCP (optionally TLS) socket; no client library needed.
Tokens never appear in logs or error messages.
"""
from __future__ import annotations

import contextlib
import socket
import ssl
import time
from typing import Any, Callable, Iterator

from . import state

TIMEOUT_SECONDS = 5.0


class RedisError(Exception):
    pass


def binding(rg_id: str) -> dict[str, Any] | None:
    return (state.CONFIG.get("redis_bindings") or {}).get(rg_id)


def validate_binding(b: Any) -> str | None:
    """Why a binding is malformed, or None."""
    if not isinstance(b, dict):
        return "a redis binding must be an object"
    types = {"host": str, "port": int, "tls": bool, "ca_file": str, "admin_user": str, "admin_password": str}
    for k, v in b.items():
        if k not in types:
            return f"unknown redis binding key {k}"
        if not isinstance(v, types[k]) or (isinstance(v, bool) and types[k] is not bool):
            return f"bad type for redis binding key {k}"
    for k in ("host", "port", "admin_user", "admin_password"):
        if k not in b:
            return f"a redis binding needs {k}"
    return None


def acl_args(tokens: list[str], open_access: bool) -> list[str]:
    """ACL SETUSER arguments for `default`: nopass while the group takes
    unauthenticated clients, else exactly its valid tokens."""
    if open_access or not tokens:
        return ["ACL", "SETUSER", "default", "on", "nopass", "~*", "&*", "+@all"]
    return ["ACL", "SETUSER", "default", "on", "resetpass", *[">" + t for t in tokens], "~*", "&*", "+@all"]


def _encode(args: list[str | bytes]) -> bytes:
    out = [f"*{len(args)}\r\n".encode()]
    for a in args:
        b = a.encode() if isinstance(a, str) else a
        out.append(b"$%d\r\n%s\r\n" % (len(b), b))
    return b"".join(out)


def _reply(f: Any, raw: bool = False) -> Any:
    """One RESP reply; bulk strings as text, or as bytes when raw (DUMP payloads are binary)."""
    line = f.readline()
    if not line.endswith(b"\r\n"):
        raise RedisError("connection closed")
    kind, rest = line[:1], line[1:-2].decode(errors="replace")
    if kind == b"+":
        return rest
    if kind == b"-":
        raise RedisError(rest)
    if kind == b":":
        return int(rest)
    if kind == b"$":
        n = int(rest)
        if n < 0:
            return None
        data = f.read(n + 2)[:-2]
        return data if raw else data.decode(errors="replace")
    if kind == b"*":
        return [_reply(f, raw) for _ in range(max(0, int(rest)))]
    raise RedisError(f"unexpected reply {line[:20]!r}")


@contextlib.contextmanager
def _session(b: dict[str, Any]) -> Iterator[Callable[..., Any]]:
    """Logs in as the binding's admin user; yields run(args, raw=False) for commands."""
    raw_sock = socket.create_connection((b["host"], int(b["port"])), timeout=TIMEOUT_SECONDS)
    try:
        sock: socket.socket = raw_sock
        if b.get("tls", True):
            ctx = ssl.create_default_context(cafile=b.get("ca_file"))
            sock = ctx.wrap_socket(raw_sock, server_hostname=b["host"])
        with sock, sock.makefile("rb") as f:
            sock.sendall(_encode(["AUTH", b["admin_user"], b["admin_password"]]))
            _reply(f)

            def run(args: list[str | bytes], raw: bool = False) -> Any:
                sock.sendall(_encode(args))
                return _reply(f, raw)

            yield run
    finally:
        raw_sock.close()


def _command(b: dict[str, Any], args: list[str]) -> Any:
    """Logs in as the binding's admin user and runs one command."""
    with _session(b) as run:
        return run(args)


def dump_all(rg_id: str) -> list[tuple[bytes, int | None, bytes]] | None:
    """The keys of database 0 on the server bound to group rg_id, as (key, absolute expiry in
    epoch milliseconds or None, DUMP payload); None when the group is not bound. Raises
    RedisError when the server cannot be read."""
    b = binding(rg_id)
    if b is None:
        return None
    try:
        with _session(b) as run:
            out = []
            for key in run(["KEYS", "*"], raw=True) or []:
                payload = run([b"DUMP", key], raw=True)
                pttl = run([b"PTTL", key])
                if payload is None or pttl == -2:  # gone meanwhile
                    continue
                expires = int(time.time() * 1000) + pttl if pttl >= 0 else None
                out.append((key, expires, payload))
            return out
    except (OSError, ValueError, RedisError) as e:
        raise RedisError(f"cannot read the keys of {rg_id} on redis {b['host']}:{b['port']}: {type(e).__name__}: {e}") from None


def restore_all(rg_id: str, entries: list[tuple[bytes, int | None, bytes]]) -> int:
    """Loads dump_all()'s entries into the server bound to group rg_id (RESTORE key ttl payload
    REPLACE; keys whose expiry has passed are left out); how many were loaded. Raises RedisError
    when the server cannot be told."""
    b = binding(rg_id)
    if b is None:
        return 0
    n = 0
    try:
        with _session(b) as run:
            for key, expires, payload in entries:
                ttl = 0
                if expires is not None:
                    ttl = expires - int(time.time() * 1000)
                    if ttl <= 0:
                        continue
                run([b"RESTORE", key, str(ttl).encode(), payload, b"REPLACE"])
                n += 1
    except (OSError, ValueError, RedisError) as e:
        raise RedisError(f"cannot restore keys of {rg_id} on redis {b['host']}:{b['port']}: {type(e).__name__}: {e}") from None
    return n


def apply(rg: Any) -> None:
    """Sets the bound server's `default` user to the group's tokens; raises
    RedisError (without any token in it) when the server cannot be told."""
    b = binding(rg.replication_group_id)
    if b is None:
        return
    try:
        _command(b, acl_args(rg.auth_tokens, rg.auth_open))
    except (OSError, ValueError, RedisError) as e:
        why = str(e)
        for t in rg.auth_tokens:  # a server's error may quote its arguments
            why = why.replace(t, "****")
        raise RedisError(f"cannot set the AUTH tokens of {rg.replication_group_id} on redis {b['host']}:{b['port']}: {type(e).__name__}: {why}") from None
