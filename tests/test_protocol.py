"""The wire format: parsing, validation and encoding of frames (chat.protocol)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from chat import protocol
from chat.protocol import (
    INVALID_BODY,
    INVALID_JSON,
    INVALID_NICK,
    INVALID_TYPE,
    TOO_LONG,
    ProtocolError,
    Rename,
    SendMessage,
    Typing,
    encode,
    isoformat,
    parse_client_frame,
    validate_body,
    validate_client_id,
    validate_nick,
)

MAX_BODY = 2000
EMOJI = "\U0001f600"  # 😀, four bytes in UTF-8, one code point
ZWJ = "\u200d"  # zero-width joiner, category Cf
ZWSP = "\u200b"  # zero-width space, category Cf
RLM = "\u200f"  # right-to-left mark, category Cf


def parse(frame: object, *, max_body: int = MAX_BODY) -> protocol.ClientFrame:
    return parse_client_frame(json.dumps(frame), max_body=max_body)


def refusal(frame: object, *, max_body: int = MAX_BODY) -> ProtocolError:
    with pytest.raises(ProtocolError) as info:
        parse(frame, max_body=max_body)
    return info.value


# --- parse_client_frame: JSON and type ------------------------------------------------------


def test_parse_invalid_json_is_invalid_json():
    with pytest.raises(ProtocolError) as info:
        parse_client_frame("{not json", max_body=MAX_BODY)
    assert info.value.code == INVALID_JSON


def test_parse_empty_text_is_invalid_json():
    with pytest.raises(ProtocolError) as info:
        parse_client_frame("", max_body=MAX_BODY)
    assert info.value.code == INVALID_JSON


def test_parse_deeply_nested_json_is_invalid_json():
    with pytest.raises(ProtocolError) as info:
        parse_client_frame("[" * 100_000 + "]" * 100_000, max_body=MAX_BODY)
    assert info.value.code == INVALID_JSON


def test_parse_invalid_json_has_a_detail_for_a_person():
    with pytest.raises(ProtocolError) as info:
        parse_client_frame("{", max_body=MAX_BODY)
    assert info.value.detail == "The frame is not valid JSON."


def test_parse_json_array_is_invalid_type():
    assert refusal(["message", "hi"]).code == INVALID_TYPE


def test_parse_json_string_is_invalid_type():
    assert refusal("message").code == INVALID_TYPE


def test_parse_json_number_is_invalid_type():
    assert refusal(42).code == INVALID_TYPE


def test_parse_json_null_is_invalid_type():
    assert refusal(None).code == INVALID_TYPE


def test_parse_missing_type_is_invalid_type():
    assert refusal({"body": "hi"}).code == INVALID_TYPE


def test_parse_unknown_type_is_invalid_type():
    assert refusal({"type": "shout", "body": "hi"}).code == INVALID_TYPE


def test_parse_non_string_type_is_invalid_type():
    assert refusal({"type": ["message"], "body": "hi"}).code == INVALID_TYPE


def test_parse_type_is_case_sensitive():
    assert refusal({"type": "Message", "body": "hi"}).code == INVALID_TYPE


def test_parse_unknown_type_echoes_client_id():
    assert refusal({"type": "shout", "client_id": "c-1"}).client_id == "c-1"


def test_parse_unknown_type_does_not_echo_overlong_client_id():
    assert refusal({"type": "shout", "client_id": "x" * 65}).client_id is None


def test_parse_unknown_type_does_not_echo_non_string_client_id():
    assert refusal({"type": "shout", "client_id": 7}).client_id is None


# --- parse_client_frame: message ------------------------------------------------------------


def test_parse_message_returns_send_message():
    assert parse({"type": "message", "body": "hi", "client_id": "c-1"}) == SendMessage(
        body="hi", client_id="c-1"
    )


def test_parse_message_without_client_id_has_none():
    assert parse({"type": "message", "body": "hi"}) == SendMessage(body="hi", client_id=None)


def test_parse_message_with_null_client_id_has_none():
    frame = parse({"type": "message", "body": "hi", "client_id": None})
    assert frame == SendMessage(body="hi", client_id=None)


def test_parse_message_ignores_unknown_fields():
    frame = parse({"type": "message", "body": "hi", "extra": {"x": 1}})
    assert frame == SendMessage(body="hi", client_id=None)


def test_parse_message_trims_body():
    assert parse({"type": "message", "body": "  \n hi there \t "}).body == "hi there"


def test_parse_message_keeps_inner_newlines():
    assert parse({"type": "message", "body": "line 1\nline 2"}).body == "line 1\nline 2"


def test_parse_message_missing_body_is_invalid_body():
    assert refusal({"type": "message"}).code == INVALID_BODY


def test_parse_message_null_body_is_invalid_body():
    assert refusal({"type": "message", "body": None}).code == INVALID_BODY


def test_parse_message_number_body_is_invalid_body():
    assert refusal({"type": "message", "body": 12}).code == INVALID_BODY


def test_parse_message_list_body_is_invalid_body():
    assert refusal({"type": "message", "body": ["hi"]}).code == INVALID_BODY


def test_parse_message_empty_body_is_invalid_body():
    assert refusal({"type": "message", "body": ""}).code == INVALID_BODY


def test_parse_message_whitespace_only_body_is_invalid_body():
    assert refusal({"type": "message", "body": " \t\n\u3000 "}).code == INVALID_BODY


def test_parse_message_body_error_echoes_client_id():
    assert refusal({"type": "message", "body": "", "client_id": "c-9"}).client_id == "c-9"


def test_parse_message_too_long_echoes_client_id():
    error = refusal({"type": "message", "body": "x" * 11, "client_id": "c-9"}, max_body=10)
    assert error.client_id == "c-9"


def test_parse_message_nul_body_is_invalid_body():
    assert refusal({"type": "message", "body": "a\x00b"}).code == INVALID_BODY


def test_parse_message_body_at_max_body_is_accepted():
    assert parse({"type": "message", "body": "x" * 10}, max_body=10).body == "x" * 10


def test_parse_message_body_over_max_body_is_too_long():
    assert refusal({"type": "message", "body": "x" * 11}, max_body=10).code == TOO_LONG


def test_parse_message_body_limit_applies_after_trimming():
    assert parse({"type": "message", "body": "  " + "x" * 10 + "  "}, max_body=10).body == "x" * 10


def test_parse_message_max_body_zero_means_unlimited():
    body = "x" * 100_000
    assert parse({"type": "message", "body": body}, max_body=0).body == body


def test_parse_message_overlong_client_id_is_invalid_body():
    assert refusal({"type": "message", "body": "hi", "client_id": "x" * 65}).code == INVALID_BODY


def test_parse_message_non_string_client_id_is_invalid_body():
    assert refusal({"type": "message", "body": "hi", "client_id": 123}).code == INVALID_BODY


def test_parse_message_invalid_client_id_is_not_echoed():
    assert refusal({"type": "message", "body": "hi", "client_id": 123}).client_id is None


# --- parse_client_frame: nick and typing ----------------------------------------------------


def test_parse_nick_returns_rename():
    assert parse({"type": "nick", "nick": "Ana"}) == Rename(nick="Ana")


def test_parse_nick_trims_nick():
    assert parse({"type": "nick", "nick": "  Ana  "}) == Rename(nick="Ana")


def test_parse_nick_missing_nick_is_invalid_nick():
    assert refusal({"type": "nick"}).code == INVALID_NICK


def test_parse_nick_non_string_nick_is_invalid_nick():
    assert refusal({"type": "nick", "nick": 5}).code == INVALID_NICK


def test_parse_typing_returns_typing():
    assert parse({"type": "typing"}) == Typing()


def test_parse_typing_ignores_extra_fields():
    assert parse({"type": "typing", "body": 5}) == Typing()


# --- validate_body --------------------------------------------------------------------------


def test_validate_body_returns_trimmed_body():
    assert validate_body("  hello  ", max_body=MAX_BODY) == "hello"


def test_validate_body_non_string_is_invalid_body():
    with pytest.raises(ProtocolError) as info:
        validate_body(b"hi", max_body=MAX_BODY)
    assert info.value.code == INVALID_BODY


def test_validate_body_whitespace_only_is_invalid_body():
    with pytest.raises(ProtocolError) as info:
        validate_body("   ", max_body=MAX_BODY)
    assert info.value.code == INVALID_BODY


def test_validate_body_nul_is_invalid_body():
    with pytest.raises(ProtocolError) as info:
        validate_body("\x00", max_body=MAX_BODY)
    assert info.value.code == INVALID_BODY


def test_validate_body_too_long_detail_names_length_and_limit():
    with pytest.raises(ProtocolError) as info:
        validate_body("x" * 11, max_body=10)
    assert info.value.detail == "The message is 11 characters long; the limit is 10."


def test_validate_body_carries_client_id_on_error():
    with pytest.raises(ProtocolError) as info:
        validate_body("", max_body=MAX_BODY, client_id="c-1")
    assert info.value.client_id == "c-1"


def test_validate_body_counts_code_points_not_bytes():
    assert validate_body(EMOJI * 2000, max_body=2000) == EMOJI * 2000


def test_validate_body_one_code_point_over_is_too_long():
    with pytest.raises(ProtocolError) as info:
        validate_body(EMOJI * 2001, max_body=2000)
    assert info.value.code == TOO_LONG


def test_validate_body_keeps_four_byte_emoji():
    assert validate_body(f"hi {EMOJI}", max_body=MAX_BODY) == f"hi {EMOJI}"


def test_validate_body_keeps_rtl_mark():
    body = f"abc {RLM}שלום{RLM} def"
    assert validate_body(body, max_body=MAX_BODY) == body


def test_validate_body_keeps_zero_width_characters():
    body = f"a{ZWSP}b{ZWJ}c"
    assert validate_body(body, max_body=MAX_BODY) == body


def test_validate_body_keeps_emoji_zwj_sequence():
    family = f"\U0001f468{ZWJ}\U0001f469{ZWJ}\U0001f467"
    assert validate_body(family, max_body=MAX_BODY) == family


def test_validate_body_keeps_combining_marks_unnormalized():
    body = "e\u0301"  # e + combining acute, not folded into U+00E9
    assert validate_body(body, max_body=MAX_BODY) == body


def test_validate_body_counts_combining_marks_as_code_points():
    with pytest.raises(ProtocolError) as info:
        validate_body("e\u0301" * 6, max_body=11)
    assert info.value.code == TOO_LONG


def test_validate_body_lone_surrogate_is_invalid_body():
    text = json.loads('"a\\ud800b"')
    with pytest.raises(ProtocolError) as info:
        validate_body(text, max_body=MAX_BODY)
    assert info.value.code == INVALID_BODY


# --- validate_nick --------------------------------------------------------------------------


def test_validate_nick_returns_trimmed_nick():
    assert validate_nick("  Ana Lu  ") == "Ana Lu"


def test_validate_nick_empty_is_invalid_nick():
    with pytest.raises(ProtocolError) as info:
        validate_nick("")
    assert info.value.code == INVALID_NICK


def test_validate_nick_whitespace_only_is_invalid_nick():
    with pytest.raises(ProtocolError) as info:
        validate_nick("   ")
    assert info.value.code == INVALID_NICK


def test_validate_nick_none_is_invalid_nick():
    with pytest.raises(ProtocolError) as info:
        validate_nick(None)
    assert info.value.code == INVALID_NICK


def test_validate_nick_of_32_characters_is_accepted():
    assert validate_nick("n" * 32) == "n" * 32


def test_validate_nick_of_33_characters_is_invalid_nick():
    with pytest.raises(ProtocolError) as info:
        validate_nick("n" * 33)
    assert info.value.code == INVALID_NICK


def test_validate_nick_length_applies_after_trimming():
    assert validate_nick(" " + "n" * 32 + " ") == "n" * 32


def test_validate_nick_newline_inside_is_invalid_nick():
    with pytest.raises(ProtocolError) as info:
        validate_nick("Ana\nLu")
    assert info.value.code == INVALID_NICK


def test_validate_nick_escape_character_is_invalid_nick():
    with pytest.raises(ProtocolError) as info:
        validate_nick("Ana\x1b[31m")
    assert info.value.code == INVALID_NICK


def test_validate_nick_nul_is_invalid_nick():
    with pytest.raises(ProtocolError) as info:
        validate_nick("Ana\x00")
    assert info.value.code == INVALID_NICK


def test_validate_nick_delete_character_is_invalid_nick():
    with pytest.raises(ProtocolError) as info:
        validate_nick("Ana\x7f")
    assert info.value.code == INVALID_NICK


def test_validate_nick_zero_width_joiner_is_invalid_nick():
    # Category Cf is refused: invisible characters make look-alike nicknames.
    with pytest.raises(ProtocolError) as info:
        validate_nick(f"Ana{ZWJ}Lu")
    assert info.value.code == INVALID_NICK


def test_validate_nick_zero_width_space_is_invalid_nick():
    with pytest.raises(ProtocolError) as info:
        validate_nick(f"Ana{ZWSP}")
    assert info.value.code == INVALID_NICK


def test_validate_nick_rtl_mark_is_invalid_nick():
    with pytest.raises(ProtocolError) as info:
        validate_nick(f"Ana{RLM}")
    assert info.value.code == INVALID_NICK


def test_validate_nick_emoji_zwj_sequence_is_invalid_nick():
    # A consequence of refusing Cf: joined emoji (family, flags with tags) are refused too.
    with pytest.raises(ProtocolError) as info:
        validate_nick(f"\U0001f468{ZWJ}\U0001f469")
    assert info.value.code == INVALID_NICK


def test_validate_nick_line_separator_is_invalid_nick():
    with pytest.raises(ProtocolError) as info:
        validate_nick("Ana\u2028Lu")
    assert info.value.code == INVALID_NICK


def test_validate_nick_four_byte_emoji_is_accepted():
    assert validate_nick(f"Ana {EMOJI}") == f"Ana {EMOJI}"


def test_validate_nick_counts_code_points_not_bytes():
    assert validate_nick(EMOJI * 32) == EMOJI * 32


def test_validate_nick_of_33_emoji_is_invalid_nick():
    with pytest.raises(ProtocolError) as info:
        validate_nick(EMOJI * 33)
    assert info.value.code == INVALID_NICK


def test_validate_nick_non_latin_letters_are_accepted():
    assert validate_nick("Zoë 李 Ñandú") == "Zoë 李 Ñandú"


def test_validate_nick_error_has_no_client_id():
    with pytest.raises(ProtocolError) as info:
        validate_nick("")
    assert info.value.client_id is None


def test_validate_nick_lone_surrogate_is_invalid_nick():
    with pytest.raises(ProtocolError) as info:
        validate_nick(json.loads('"Ana\\udc00"'))
    assert info.value.code == INVALID_NICK


# --- validate_client_id ---------------------------------------------------------------------


def test_validate_client_id_none_is_none():
    assert validate_client_id(None) is None


def test_validate_client_id_returns_it_unchanged():
    assert validate_client_id(" c-1 ") == " c-1 "


def test_validate_client_id_of_64_characters_is_accepted():
    assert validate_client_id("c" * 64) == "c" * 64


def test_validate_client_id_of_65_characters_is_invalid_body():
    with pytest.raises(ProtocolError) as info:
        validate_client_id("c" * 65)
    assert info.value.code == INVALID_BODY


def test_validate_client_id_empty_is_invalid_body():
    with pytest.raises(ProtocolError) as info:
        validate_client_id("")
    assert info.value.code == INVALID_BODY


def test_validate_client_id_integer_is_invalid_body():
    with pytest.raises(ProtocolError) as info:
        validate_client_id(42)
    assert info.value.code == INVALID_BODY


def test_validate_client_id_boolean_is_invalid_body():
    with pytest.raises(ProtocolError) as info:
        validate_client_id(True)
    assert info.value.code == INVALID_BODY


def test_validate_client_id_control_character_is_invalid_body():
    with pytest.raises(ProtocolError) as info:
        validate_client_id("c\n1")
    assert info.value.code == INVALID_BODY


def test_validate_client_id_uuid_is_accepted():
    uuid = "0b7e4b3c-6c1a-4a53-9a5e-1f4f3c2b1a00"
    assert validate_client_id(uuid) == uuid


# --- encode and frames ----------------------------------------------------------------------


def test_encode_is_compact():
    assert encode({"type": "typing", "n": [1, 2]}) == '{"type":"typing","n":[1,2]}'


def test_encode_keeps_non_ascii():
    assert encode({"body": f"olá {EMOJI}"}) == f'{{"body":"olá {EMOJI}"}}'


def test_encode_keeps_rtl_mark_and_zero_width_characters():
    body = f"a{RLM}b{ZWJ}c{ZWSP}"
    assert json.loads(encode({"body": body}))["body"] == body


def test_encode_escapes_html_significant_characters_as_text():
    assert json.loads(encode({"body": '<script>"x"</script>'}))["body"] == '<script>"x"</script>'


def test_parse_then_encode_round_trips_unicode_body():
    body = f"{EMOJI} {RLM}مرحبا{RLM} a{ZWJ}b{ZWSP}c e\u0301"
    frame = parse({"type": "message", "body": body})
    assert json.loads(encode({"body": frame.body}))["body"] == body


def test_parse_accepts_escaped_astral_characters():
    frame = parse_client_frame('{"type":"message","body":"\\ud83d\\ude00"}', max_body=1)
    assert frame.body == EMOJI


def test_encoded_frame_is_valid_utf8():
    assert encode({"body": EMOJI}).encode("utf-8") == '{"body":"😀"}'.encode()


def test_message_frame_has_the_wire_fields():
    frame = protocol.message_frame(
        id=1, nick="Ana", body="hi", sent_at="2025-01-01T00:00:00.000Z", client_id=None, session="s"
    )
    assert frame == {
        "type": "message",
        "id": 1,
        "nick": "Ana",
        "body": "hi",
        "sent_at": "2025-01-01T00:00:00.000Z",
        "client_id": None,
        "session": "s",
        "account": False,
    }


def test_error_frame_includes_client_id_when_given():
    assert json.loads(protocol.error_frame(TOO_LONG, "Too long.", client_id="c-1")) == {
        "type": "error",
        "code": TOO_LONG,
        "detail": "Too long.",
        "client_id": "c-1",
    }


def test_error_frame_omits_client_id_when_none():
    assert "client_id" not in json.loads(protocol.error_frame(INVALID_JSON, "Bad."))


def test_error_frame_carries_extra_fields():
    frame = json.loads(protocol.error_frame(protocol.RATE_LIMITED, "Wait.", retry_after=1.5))
    assert frame["retry_after"] == 1.5


def test_presence_frame_counts_online():
    online = [{"session": "a", "nick": "A"}, {"session": "b", "nick": "B"}]
    assert json.loads(protocol.presence_frame(online)) == {
        "type": "presence",
        "online": online,
        "count": 2,
    }


def test_typing_frame_names_session_and_nick():
    assert json.loads(protocol.typing_frame(session="s", nick="Ana")) == {
        "type": "typing",
        "session": "s",
        "nick": "Ana",
    }


# --- isoformat ------------------------------------------------------------------------------


def test_isoformat_ends_with_z():
    assert isoformat(datetime(2025, 3, 4, 5, 6, 7, tzinfo=UTC)).endswith("Z")


def test_isoformat_has_millisecond_precision():
    moment = datetime(2025, 3, 4, 5, 6, 7, 123456, tzinfo=UTC)
    assert isoformat(moment) == "2025-03-04T05:06:07.123Z"


def test_isoformat_shows_zero_milliseconds():
    assert isoformat(datetime(2025, 3, 4, 5, 6, 7, tzinfo=UTC)) == "2025-03-04T05:06:07.000Z"


def test_isoformat_truncates_rather_than_rounds():
    moment = datetime(2025, 3, 4, 5, 6, 7, 999999, tzinfo=UTC)
    assert isoformat(moment) == "2025-03-04T05:06:07.999Z"


def test_isoformat_parses_back_with_fromisoformat():
    moment = datetime(2025, 3, 4, 5, 6, 7, 123000, tzinfo=UTC)
    assert datetime.fromisoformat(isoformat(moment)) == moment


def test_isoformat_converts_other_offsets_to_utc():
    moment = datetime(2025, 3, 4, 7, 6, 7, tzinfo=timezone(timedelta(hours=2)))
    assert isoformat(moment) == "2025-03-04T05:06:07.000Z"


def test_presence_frame_limit_caps_the_list_not_the_count():
    online = [{"session": f"s{i}", "nick": f"n{i}"} for i in range(5)]
    frame = json.loads(protocol.presence_frame(online, limit=2))
    assert frame["online"] == online[:2]
    assert frame["count"] == 5


def test_online_fields_of_a_page_give_the_pages_count():
    page = protocol.OnlinePage(entries=({"session": "a", "nick": "A"},), count=5000)
    assert protocol.online_fields(page) == {"online": page.entries, "count": 5000}


def test_online_fields_limit_caps_a_pages_entries_not_its_count():
    entries = tuple({"session": f"s{i}", "nick": f"n{i}"} for i in range(3))
    fields = protocol.online_fields(protocol.OnlinePage(entries=entries, count=9), limit=2)
    assert fields == {"online": entries[:2], "count": 9}


def test_presence_frame_of_a_page_encodes_its_entries_as_a_list():
    entries = ({"session": "a", "nick": "A"},)
    frame = json.loads(protocol.presence_frame(protocol.OnlinePage(entries=entries, count=2)))
    assert frame == {"type": "presence", "online": [{"session": "a", "nick": "A"}], "count": 2}


def test_nick_key_folds_case():
    assert protocol.nick_key("Alice") == protocol.nick_key("aLICE")


def test_nick_key_trims_as_validate_nick_does():
    assert protocol.nick_key("  Bo ") == protocol.nick_key(protocol.validate_nick("  Bo "))


def test_nick_key_folds_full_width_forms():
    assert protocol.nick_key("ＡＢＣ") == "abc"


def test_a_delete_frame_names_one_message():
    assert protocol.parse_client_frame('{"type":"delete","id":7}', max_body=10) == (
        protocol.Delete(id=7)
    )


@pytest.mark.parametrize("bad", ['"7"', "0", "-1", "true", "1.5", "null"])
def test_a_delete_frame_without_a_positive_id_is_refused(bad):
    with pytest.raises(protocol.ProtocolError) as exc:
        protocol.parse_client_frame(f'{{"type":"delete","id":{bad}}}', max_body=10)
    assert exc.value.code == protocol.INVALID_BODY


@pytest.mark.parametrize("kind", ["mute", "ban"])
def test_a_mute_or_ban_frame_names_a_session_and_seconds(kind):
    frame = protocol.parse_client_frame(
        f'{{"type":"{kind}","session":"abc","seconds":600}}', max_body=10
    )
    assert frame == protocol.Sanction(kind=kind, session="abc", seconds=600)


@pytest.mark.parametrize(
    "fields",
    [
        '"session":"abc"',
        '"session":"abc","seconds":0',
        f'"session":"abc","seconds":{protocol.MAX_SANCTION_SECONDS + 1}',
        '"seconds":60',
        '"session":"","seconds":60',
        '"session":5,"seconds":60',
        f'"session":"{"x" * (protocol.MAX_SESSION + 1)}","seconds":60',
    ],
)
def test_a_bad_mute_frame_is_refused(fields):
    with pytest.raises(protocol.ProtocolError) as exc:
        protocol.parse_client_frame(f'{{"type":"mute",{fields}}}', max_body=10)
    assert exc.value.code == protocol.INVALID_BODY


def _page(*nicks: str, count: int) -> protocol.OnlinePage:
    return protocol.OnlinePage(
        entries=tuple({"session": f"s-{nick}", "nick": nick} for nick in nicks), count=count
    )


def test_a_count_only_presence_frame_has_type_and_count_only():
    assert json.loads(protocol.presence_count_frame(1001)) == {"type": "presence", "count": 1001}


def test_presence_update_is_count_only_when_the_held_page_is_unchanged():
    held = _page("Ana", "Bia", count=1000).entries
    frame = protocol.presence_update(_page("Ana", "Bia", count=1001), held=held)
    assert json.loads(frame) == {"type": "presence", "count": 1001}


def test_presence_update_is_count_only_for_the_very_same_page_object():
    page = _page("Ana", "Bia", count=1001)
    assert json.loads(protocol.presence_update(page, held=page.entries)) == {
        "type": "presence",
        "count": 1001,
    }


def test_presence_update_carries_the_page_when_it_changed():
    held = _page("Ana", "Bia", count=1000).entries
    frame = json.loads(protocol.presence_update(_page("Aaron", "Ana", count=1001), held=held))
    assert frame["online"] == [
        {"session": "s-Aaron", "nick": "Aaron"},
        {"session": "s-Ana", "nick": "Ana"},
    ]
    assert frame["count"] == 1001


def test_presence_update_carries_the_page_after_a_rename_inside_it():
    held = _page("Ana", "Bia", count=5).entries
    frame = json.loads(protocol.presence_update(_page("Ana", "Bea", count=5), held=held))
    assert [entry["nick"] for entry in frame["online"]] == ["Ana", "Bea"]


def test_presence_update_carries_the_page_when_what_pages_hold_is_not_known():
    frame = json.loads(protocol.presence_update(_page("Ana", count=1), held=None))
    assert frame == {
        "type": "presence",
        "online": [{"session": "s-Ana", "nick": "Ana"}],
        "count": 1,
    }


def _online(*nicks: str) -> tuple[dict[str, str], ...]:
    return tuple({"session": f"s{i}", "nick": nick} for i, nick in enumerate(nicks))


def test_a_hello_with_an_online_page_is_the_plain_encoding() -> None:
    online = _online("ann", 'bo "b" <i>', "cy")
    fields = {"session": "s", "nick": "n", "online": online, "count": 3, "limits": {"a": 1}}
    expected = protocol.encode({"type": "hello", "history": [], **fields, "online": list(online)})
    assert protocol.hello_frame(history=[], **fields) == expected
    assert protocol.hello_frame(history=[], **fields) == expected


def test_a_hello_encodes_a_changed_online_page_afresh() -> None:
    first = protocol.hello_frame(history=[], online=_online("ann"), count=1)
    second = protocol.hello_frame(history=[], online=_online("bo"), count=1)
    assert '"nick":"ann"' in first and '"nick":"bo"' in second and "ann" not in second


def test_a_hello_with_online_entries_is_the_plain_encoding() -> None:
    online = tuple(
        protocol.OnlineEntry(f"s{i}", nick)
        for i, nick in enumerate(["ann", 'bo "b" <i>', "ç\u2028🙂", "\n"])
    )
    fields = {"session": "s", "nick": "n", "online": online, "count": 9}
    plain = [dict(entry) for entry in online]
    expected = protocol.encode({"type": "hello", "history": [], **fields, "online": plain})
    assert protocol.hello_frame(history=[], **fields) == expected
    assert json.loads(expected)["online"] == plain


def test_an_online_entry_is_encoded_once_for_every_page_it_is_in(monkeypatch) -> None:
    encoded: list[object] = []
    encoder = protocol._json_encoder

    class Counting:
        def encode(self, value: object) -> str:
            encoded.append(value)
            return encoder.encode(value)

    monkeypatch.setattr(protocol, "_json_encoder", Counting())
    ann, bo = protocol.OnlineEntry("s1", "ann"), protocol.OnlineEntry("s2", "bo")
    assert protocol.encode_entries((ann, bo)) == encoder.encode([ann, bo])
    assert protocol.encode_entries((bo, ann, protocol.OnlineEntry("s3", "cy"))) == (
        encoder.encode([bo, ann, {"session": "s3", "nick": "cy"}])
    )
    assert [entry["nick"] for entry in encoded] == ["ann", "bo", "cy"]  # type: ignore[index]


def test_error_codes_lists_every_error_code_constant():
    constants = {
        value for name, value in vars(protocol).items() if name.isupper() and type(value) is str
    }
    assert set(protocol.ERROR_CODES) == constants
    assert len(protocol.ERROR_CODES) == len(constants)


@pytest.mark.parametrize(
    ("text", "size"),
    [("", 0), ("hello", 5), ("é", 2), ("日本", 6), ("🙂", 4), ('{"body":"aé"}', 14)],
)
def test_frame_size_is_the_utf8_length(text, size):
    assert protocol.frame_size(text) == size
