"""Read a feed's bytes from a file or an http(s) URL, within a time limit and a size cap.

This is the I/O edge of `sync --ics`: everything past it is pure. A feed that
cannot be reached, answers with an error status, takes too long or is too
large raises `FeedUnavailable` (exit 1); a local file that does not exist, or a
source that is neither a path nor an http(s) URL, is bad input (exit 2).
Messages name a URL by its scheme and host only: feed URLs often carry secrets.
"""

from __future__ import annotations

import base64
import http.client
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from ledger.errors import InvalidInput, LedgerError

__all__ = ["MAX_BYTES", "TIMEOUT", "FeedUnavailable", "fetch", "is_url", "source_label"]

MAX_BYTES = 10 * 1024 * 1024
TIMEOUT = 30.0
_CHUNK = 64 * 1024


class FeedUnavailable(LedgerError):
    """The feed could not be read in time, or was too large; nothing was changed (exit 1)."""


def is_url(source: str) -> bool:
    return source.lower().startswith(("http://", "https://"))


def source_label(source: str) -> str:
    """How messages name a source: a path as given, a URL by scheme and host only."""
    if not is_url(source):
        return source
    try:
        parts = urllib.parse.urlsplit(source)
        host, port = parts.hostname or "?", parts.port
    except ValueError:  # an unclosed [IPv6 address], a port that is no number
        raise InvalidInput("invalid feed URL: malformed host or port") from None
    return f"{parts.scheme}://{host}{f':{port}' if port else ''}/..."


def fetch(source: str, *, timeout: float = TIMEOUT, limit: int = MAX_BYTES) -> bytes:
    """The bytes of a file or an http(s) URL: at most `limit`, within `timeout` seconds."""
    if is_url(source):
        return _http(source, timeout, limit)
    if "://" in source:
        raise InvalidInput(f"unsupported feed {source.split('://', 1)[0]}://: give a file or an http(s) URL")
    return _file(Path(source), limit)


def _file(path: Path, limit: int) -> bytes:
    try:
        with path.open("rb") as f:
            data = f.read(limit + 1)
    except FileNotFoundError:
        raise InvalidInput(f"cannot read {path}: no such file") from None
    except IsADirectoryError:
        raise InvalidInput(f"cannot read {path}: it is a directory") from None
    except OSError as e:
        raise FeedUnavailable(f"cannot read {path}: {e.strerror or 'read failed'}") from None
    if len(data) > limit:
        raise FeedUnavailable(f"feed {path} is larger than {_size(limit)}")
    return data


def _http(url: str, timeout: float, limit: int) -> bytes:
    label = source_label(url)
    request = _request(url)
    deadline = time.monotonic() + timeout
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            declared = response.headers.get("Content-Length")
            if declared is not None and declared.isdigit() and int(declared) > limit:
                raise FeedUnavailable(f"feed {label} is larger than {_size(limit)}")
            return _read(response, label, deadline, limit)
    except urllib.error.HTTPError as e:
        raise FeedUnavailable(f"feed {label} answered HTTP {e.code}") from None
    except TimeoutError:
        raise FeedUnavailable(f"feed {label} did not answer within {timeout:g} s") from None
    except urllib.error.URLError as e:
        reason = e.reason
        text = reason.strerror if isinstance(reason, OSError) and reason.strerror else str(reason)
        raise FeedUnavailable(f"cannot reach feed {label}: {text}") from None
    except (http.client.HTTPException, OSError):
        raise FeedUnavailable(f"cannot read feed {label}: the connection failed") from None


def _request(url: str) -> urllib.request.Request:
    # user:password@ in the URL becomes Basic authentication and never reaches a message.
    # The credentials never follow a redirect (to another host they would leak).
    parts = urllib.parse.urlsplit(url)
    headers = {"User-Agent": "intent-ledger", "Accept": "text/calendar, */*"}
    if parts.username is None:
        return urllib.request.Request(url, headers=headers)
    user = urllib.parse.unquote(parts.username)
    password = urllib.parse.unquote(parts.password or "")
    netloc = parts.hostname or ""
    netloc = f"[{netloc}]" if ":" in netloc else netloc
    netloc += f":{parts.port}" if parts.port else ""
    request = urllib.request.Request(urllib.parse.urlunsplit(parts._replace(netloc=netloc)), headers=headers)
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    request.add_unredirected_header("Authorization", f"Basic {token}")
    return request


def _read(response: http.client.HTTPResponse, label: str, deadline: float, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError
        chunk = response.read1(_CHUNK) if hasattr(response, "read1") else response.read(_CHUNK)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > limit:  # stop reading: an oversized feed is refused, not downloaded
            raise FeedUnavailable(f"feed {label} is larger than {_size(limit)}")
        chunks.append(chunk)


def _size(limit: int) -> str:
    return f"{limit / 1024 / 1024:g} MB" if limit >= 1024 * 1024 else f"{limit} bytes"
