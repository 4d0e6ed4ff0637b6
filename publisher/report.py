"""The v1 report payload: what a screen says its TV is doing (DESIGN section 13).

Published by the screen on `{prefix}/{client_id}/power/state`, retained, QoS 1.
Decoding is strict (schema, at most 4 KB, real UTC instants in whole seconds,
`since` not after `reported_at`); evolution follows the intent payload's rules:
fields are only ever added, with a default, under the same major version, and
readers ignore fields they do not know.
"""

from __future__ import annotations

import functools
from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec

from ledger.errors import InvalidInput
from ledger.values import format_instant, parse_instant
from publisher.payload import SCHEMA_VERSION, Timestamp

__all__ = [
    "MAX_DETAIL",
    "MAX_REPORT_BYTES",
    "TV_STATES",
    "InvalidReport",
    "Report",
    "build_report",
    "decode_report",
    "encode_report",
    "epoch",
    "report_schema",
]

MAX_REPORT_BYTES = 4096
MAX_DETAIL = 200
TV_STATES = ("on", "off", "unknown")
TvState = Literal["on", "off", "unknown"]

ClientId = Annotated[
    str,
    msgspec.Meta(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$",
        description="The screen's client id (1 to 64 of A-Z a-z 0-9 _ . -)",
    ),
]
IntentId = Annotated[
    str,
    msgspec.Meta(
        pattern=r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$",
        description="The intent_id of the intent the screen follows now",
    ),
]


class InvalidReport(InvalidInput):
    """A report that is not a valid v1 report (too big, not JSON, wrong schema, since in the future)."""


class Report(msgspec.Struct, kw_only=True):
    """What a screen publishes on `{prefix}/{client_id}/power/state` (keys in this order)."""

    schema_version: Annotated[str, msgspec.Meta(pattern=r"^1\.[0-9]+$")]
    client_id: ClientId
    reported_at: Timestamp
    intent_id: IntentId | None
    tv_state: TvState
    since: Timestamp
    # No NUL: PostgreSQL's text refuses it, and one such report would fail its whole batch.
    detail: Annotated[str, msgspec.Meta(max_length=MAX_DETAIL, pattern=r"^[^\x00]*$")] | None = None


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(Report)


def build_report(
    *,
    client_id: str,
    reported_at: datetime,
    intent_id: str | None,
    tv_state: TvState,
    since: datetime,
    detail: str | None = None,
) -> Report:
    """A report stamped `reported_at`; a longer `detail` is cut to 200 characters, NULs dropped."""
    if since > reported_at:
        after = f"{format_instant(since)} is after reported_at {format_instant(reported_at)}"
        raise InvalidReport(f"invalid report: since {after}")
    return Report(
        schema_version=SCHEMA_VERSION,
        client_id=client_id,
        reported_at=format_instant(reported_at),
        intent_id=intent_id,
        tv_state=tv_state,
        since=format_instant(since),
        detail=None if detail is None else detail.replace("\x00", "")[:MAX_DETAIL],
    )


def encode_report(report: Report) -> bytes:
    return _encoder.encode(report)


def decode_report(data: bytes | str) -> Report:
    """The report in `data`, or `InvalidReport` saying what is wrong (one line)."""
    size = len(data.encode() if isinstance(data, str) else data)
    if size > MAX_REPORT_BYTES:
        raise InvalidReport(f"invalid report: {size} bytes, at most {MAX_REPORT_BYTES}")
    try:
        report = _decoder.decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError) as e:
        raise InvalidReport(f"invalid report: {e}") from None
    # The pattern allows 2027-02-31; the instants must be real ones.
    try:
        reported_at = epoch(report.reported_at, "reported_at")
        since = epoch(report.since, "since")
    except InvalidInput as e:
        raise InvalidReport(f"invalid report: {e}") from None
    if since > reported_at:
        raise InvalidReport(f"invalid report: since {report.since} is after reported_at {report.reported_at}")
    return report


@functools.lru_cache(maxsize=4096)
def epoch(text: str, what: str = "instant") -> int:
    """A whole-second RFC 3339 instant as epoch seconds, or `InvalidInput`.

    Cached: the reports of a burst share a handful of instants."""
    return int(parse_instant(text, what).timestamp())


def report_schema() -> dict[str, Any]:
    """The JSON Schema of the v1 report (`intent-ledger schema --report`)."""
    return msgspec.json.schema(Report)
