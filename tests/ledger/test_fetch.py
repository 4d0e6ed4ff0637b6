"""Reading a feed (ledger.fetch) from files and from a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from ledger.errors import InvalidInput
from ledger.fetch import MAX_BYTES, TIMEOUT, FeedUnavailable, fetch, source_label
from tests.feed_server import FeedServer, serve_feeds

BODY = b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nEND:VCALENDAR\r\n"


@pytest.fixture
def server() -> Iterator[FeedServer]:
    with serve_feeds() as s:
        s.bodies["/cal.ics"] = BODY
        yield s


def test_the_documented_limits() -> None:
    assert (TIMEOUT, MAX_BYTES) == (30.0, 10 * 1024 * 1024)


def test_a_file_is_read(tmp_path: Path) -> None:
    path = tmp_path / "cal.ics"
    path.write_bytes(BODY)
    assert fetch(str(path)) == BODY


def test_a_missing_file_is_bad_input_and_an_oversized_one_unavailable(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="no such file"):
        fetch(str(tmp_path / "nope.ics"))
    with pytest.raises(InvalidInput, match="it is a directory"):
        fetch(str(tmp_path))
    big = tmp_path / "big.ics"
    big.write_bytes(b"x" * 1001)
    with pytest.raises(FeedUnavailable, match="larger than 1000 bytes"):
        fetch(str(big), limit=1000)
    assert fetch(str(big), limit=1001) == b"x" * 1001


def test_other_schemes_are_bad_input() -> None:
    with pytest.raises(InvalidInput, match="unsupported feed ftp://"):
        fetch("ftp://example.org/cal.ics")


def test_a_url_is_read(server: FeedServer) -> None:
    assert fetch(server.url("/cal.ics")) == BODY


def test_a_404_is_unavailable(server: FeedServer) -> None:
    message = f"feed http://127.0.0.1:{server.port}/... answered HTTP 404"
    with pytest.raises(FeedUnavailable, match=re.escape(message)):
        fetch(server.url("/gone.ics"))


def test_an_oversized_body_is_refused_by_its_header(server: FeedServer) -> None:
    with pytest.raises(FeedUnavailable, match="larger than 10 MB"):
        fetch(server.url("/declared-huge.ics"))


def test_an_endless_body_stops_being_read_past_the_cap(server: FeedServer) -> None:
    with pytest.raises(FeedUnavailable, match="larger than 1 MB"):
        fetch(server.url("/endless.ics"), limit=1024 * 1024)
    assert server.finished["/endless.ics"].wait(10)
    # The server gave up on a closed socket long before its 200 MB: we stopped reading.
    assert server.sent["/endless.ics"] < 100 * 1024 * 1024


@pytest.mark.parametrize("path", ["/silent.ics", "/stalled.ics"])
def test_a_feed_that_does_not_answer_in_time_is_unavailable(server: FeedServer, path: str) -> None:
    with pytest.raises(FeedUnavailable, match=re.escape("did not answer within 0.2 s")):
        fetch(server.url(path), timeout=0.2)


def test_an_unreachable_host_is_unavailable() -> None:
    # Port 1 on loopback: nothing listens, the connection is refused at once.
    with pytest.raises(FeedUnavailable, match=re.escape("cannot reach feed http://127.0.0.1:1/...")):
        fetch("http://127.0.0.1:1/cal.ics", timeout=5)


def test_credentials_in_the_url_become_basic_auth_and_never_reach_a_message(server: FeedServer) -> None:
    token = base64.b64encode(b"room101:s3cr@t").decode()
    server.auth["/private.ics"] = f"Basic {token}"
    server.bodies["/private.ics"] = BODY
    assert fetch(server.url("/private.ics", "room101:s3cr%40t@")) == BODY
    with pytest.raises(FeedUnavailable) as refused:
        fetch(server.url("/private.ics", "room101:wrong@"))
    assert "401" in str(refused.value)
    assert "wrong" not in str(refused.value)
    assert "room101" not in str(refused.value)


def test_credentials_do_not_follow_a_redirect(server: FeedServer) -> None:
    server.auth["/private.ics"] = "Basic " + base64.b64encode(b"room101:pw").decode()
    server.bodies["/private.ics"] = BODY
    assert fetch(server.url("/redirect/cal.ics", "room101:pw@")) == BODY  # redirects work
    with pytest.raises(FeedUnavailable, match="answered HTTP 401"):
        fetch(server.url("/redirect/private.ics", "room101:pw@"))


def test_labels_hide_paths_and_secrets() -> None:
    label = source_label("https://u:p@calendar.example.org/ical/private-abc123/basic.ics?token=x")
    assert label == "https://calendar.example.org/..."
    assert source_label("feeds/room.ics") == "feeds/room.ics"
