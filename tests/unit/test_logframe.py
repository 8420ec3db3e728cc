"""logplex-1 framing: round trips, the two variants, and a parser that only ever says FrameError."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simctl.platform import logframe
from simctl.platform.logframe import FrameError, LogMessage

# Header fields: one run of printable, non-space characters (what encode keeps as is).
field = st.text(
    st.characters(blacklist_categories=("Cc", "Cs", "Zs", "Zl", "Zp", "Cn", "Co", "Cf")),
    min_size=1, max_size=20,
)
# Text: anything UTF-8 can carry; a trailing newline is not part of the message.
text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=200).map(
    lambda t: t.rstrip("\n"))
messages = st.builds(
    LogMessage, app=field, proc=field, text=text, timestamp=field, host=field,
    priority=st.integers(0, 191),
)


def test_encode_matches_the_documented_frame() -> None:
    message = LogMessage("app", "web.1", "hello", "2012-12-10T03:00:48.123456Z", "erlang", 134)
    assert logframe.encode(message) == (
        b"61 <134>1 2012-12-10T03:00:48.123456Z erlang app web.1 - - hello")
    assert logframe.encode(message, structured=False) == (
        b"59 <134>1 2012-12-10T03:00:48.123456Z erlang app web.1 - hello")


def test_octet_count_is_bytes_not_characters() -> None:
    raw = logframe.encode(LogMessage("app", "web.1", "héllo ✓", "ts"))
    count, _, rest = raw.partition(b" ")
    assert int(count) == len(rest)


@given(st.lists(messages, min_size=1, max_size=20))
def test_round_trip_input_variant(batch: list[LogMessage]) -> None:
    assert logframe.parse(logframe.encode_many(batch)) == batch
    assert logframe.parse(logframe.encode_many(batch), structured=True) == batch


@given(st.lists(messages, min_size=1, max_size=20))
def test_round_trip_output_variant(batch: list[LogMessage]) -> None:
    body = logframe.encode_many(batch, structured=False)
    assert logframe.parse(body, structured=False) == batch


def test_variants_differ_only_in_structured_data() -> None:
    message = LogMessage("app", "web.1", "- [not sd] text", "ts")
    assert logframe.parse(logframe.encode(message))[0].text == "- [not sd] text"
    out = logframe.encode(message, structured=False)
    assert logframe.parse(out, structured=False)[0].text == "- [not sd] text"
    with pytest.raises(FrameError):
        logframe.parse(b"%d %s" % (len(b"<1>1 t h a p - x"), b"<1>1 t h a p - x"),
                       structured=True)


def test_structured_data_elements_are_skipped() -> None:
    raw = b'<134>1 ts host app web.1 - [meta a="1"] the text'
    assert logframe.parse(b"%d %s" % (len(raw), raw))[0].text == "the text"


def test_trailing_newline_is_counted_but_not_kept() -> None:
    raw = b"<134>1 ts host app web.1 - - line\n"
    assert logframe.parse(b"%d %s" % (len(raw), raw))[0].text == "line"


def test_unsafe_header_fields_are_made_safe() -> None:
    message = LogMessage("my app", "", "text", "ts", "h\tst")
    parsed = logframe.parse(logframe.encode(message))[0]
    assert (parsed.app, parsed.proc, parsed.host, parsed.text) == ("my_app", "-", "h_st", "text")


def test_lone_surrogates_do_not_break_encoding() -> None:
    parsed = logframe.parse(logframe.encode(LogMessage("app", "web.1", "bad \ud800 char", "ts")))
    assert parsed[0].text == "bad ? char"


@pytest.mark.parametrize(("body", "error"), [
    (b"", "empty body"),
    (b"abc", "bad octet count"),
    (b"10 short", "claims 10 bytes"),
    (b"0 ", "claims 0 bytes"),
    (b"5 hello", "not an RFC 5424 message"),
    (b"23 <192>1 ts h app p - - x", "priority 192"),
    (b"99999999 x", "bad octet count"),
])
def test_malformed_bodies(body: bytes, error: str) -> None:
    with pytest.raises(FrameError, match=error):
        logframe.parse(body)


def test_message_limit() -> None:
    body = logframe.encode_many([LogMessage("app", "web.1", str(i), "ts") for i in range(11)])
    with pytest.raises(FrameError, match="too many"):
        logframe.parse(body, limit=10)


def frame_like() -> st.SearchStrategy[bytes]:
    """Bodies near the grammar: real frames, cut, spliced and with wrong counts."""
    good = st.lists(messages, min_size=1, max_size=3).map(logframe.encode_many)
    wrong_count = st.tuples(st.integers(0, 300), st.binary(max_size=200)).map(
        lambda t: b"%d %s" % t)
    header = st.sampled_from([b"<", b"<1", b"<134>1 ", b"<999>1 a b c d e - - ", b"- - ", b" "])
    return st.one_of(
        st.binary(max_size=300),
        good,
        wrong_count,
        st.tuples(good, st.integers(0, 400)).map(lambda t: t[0][:t[1]]),
        st.tuples(good, st.binary(max_size=20), st.integers(0, 400)).map(
            lambda t: t[0][:t[2]] + t[1] + t[0][t[2]:]),
        st.lists(st.one_of(header, st.binary(max_size=10), good), max_size=8).map(b"".join),
    )


@settings(max_examples=500, suppress_health_check=[HealthCheck.too_slow])
@given(frame_like(), st.sampled_from([None, True, False]))
def test_parse_raises_only_frame_error(body: bytes, structured: bool | None) -> None:
    try:
        result = logframe.parse(body, structured=structured)
    except FrameError:
        return
    assert result
    assert all(isinstance(m, LogMessage) for m in result)


@given(st.text(max_size=300), st.integers(4, 50))
def test_split_long_keeps_characters_whole(line: str, limit: int) -> None:
    chunks = logframe.split_long(line, limit)
    assert all(len(c.encode(errors="replace")) <= limit for c in chunks)
    if "\ud800" not in line and not any(0xD800 <= ord(c) <= 0xDFFF for c in line):
        assert "".join(chunks) == line


def test_split_long_default_limit() -> None:
    line = "é" * 6000  # 12,000 bytes
    chunks = logframe.split_long(line)
    assert [len(c.encode()) for c in chunks] == [10_000, 2_000]
    assert "".join(chunks) == line


def test_display_format() -> None:
    message = LogMessage("heroku", "router", "at=info", "2013-03-10T19:53:10+00:00")
    assert message.display() == "2013-03-10T19:53:10+00:00 heroku[router]: at=info"
    assert message.with_frame("f1").frame_id == "f1"


@given(st.lists(messages, min_size=1, max_size=20), st.booleans())
def test_encode_many_is_the_frames_joined(batch: list[LogMessage], structured: bool) -> None:
    assert logframe.encode_many(batch, structured=structured) == b"".join(
        logframe.encode(m, structured=structured) for m in batch)


def test_encode_many_makes_unsafe_fields_safe_among_fast_ones() -> None:
    batch = [LogMessage("app", "web.1", "a", "ts"), LogMessage("my app", "", "b", "ts"),
             LogMessage("app", "web.1", "héllo", "ts"), LogMessage("app", "web.1", "c", "ts")]
    body = logframe.encode_many(batch)
    assert body == b"".join(logframe.encode(m) for m in batch)
    assert [m.text for m in logframe.parse(body)] == ["a", "b", "héllo", "c"]


@settings(max_examples=500, suppress_health_check=[HealthCheck.too_slow])
@given(frame_like(), st.sampled_from([None, True, False]))
def test_the_ascii_fast_path_agrees_with_the_general_parser(
        body: bytes, structured: bool | None) -> None:
    """Where the fast path answers, it answers what the frame-by-frame parser does."""
    fast = logframe._fields_ascii(body, 100_000, structured)
    if fast is None:
        return
    assert fast == logframe._fields_any(body, 100_000, structured)


def test_parse_fields_gives_plain_tuples() -> None:
    body = logframe.encode_many([LogMessage("app", "web.1", "one\n", "ts", "h", 134)],
                                structured=False)
    assert logframe.parse_fields(body, structured=False) == [
        (134, "ts", "h", "app", "web.1", "one")]


ascii_field = st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1,
                      max_size=12)
ascii_messages = st.builds(
    LogMessage, app=ascii_field, proc=ascii_field, timestamp=ascii_field, host=ascii_field,
    text=st.text(st.characters(max_codepoint=127), max_size=80), priority=st.integers(0, 191))


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(ascii_messages, min_size=1, max_size=10), st.booleans(), st.integers(0, 400),
       st.binary(max_size=8))
def test_the_fast_path_on_ascii_bodies(batch: list[LogMessage], structured: bool, cut: int,
                                       junk: bytes) -> None:
    body = logframe.encode_many(batch, structured=structured)
    if structured:  # the input variant: the fast path takes every ASCII body
        assert logframe._fields_ascii(body, 100_000, None) is not None
    for variant in (None, True, False):
        for sample in (body, body[:cut], body[:cut] + junk + body[cut:]):
            fast = logframe._fields_ascii(sample, 100_000, variant)
            if fast is not None:
                assert fast == logframe._fields_any(sample, 100_000, variant)
