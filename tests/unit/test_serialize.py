"""The orjson fast path for messages says exactly what the MessageOut model says."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest

from hookline.api import serialize
from hookline.domain.models import Message

AT = datetime(2026, 11, 25, 1, 2, 3, 456000, tzinfo=UTC)
ON_THE_SECOND = datetime(2026, 11, 25, 1, 2, 3, tzinfo=UTC)

MESSAGES = [
    Message("msg_1", "app_1", "user.created", None, b'{"a":1}', None, None, AT, AT),
    Message(
        "msg_2",
        "app_1",
        "user.created",
        "evt-1",
        orjson.dumps({"nested": {"list": [1, 2.5, None, True]}, "text": 'é \u2028 "q"'}),
        ("ch1", "ch2"),
        ("tag",),
        ON_THE_SECOND,
        AT,
    ),
    Message("msg_3", "app_1", "user.deleted", None, None, (), (), AT, None),
    Message("msg_4", "app_1", "user.later", None, b"{}", None, None, AT, None, ON_THE_SECOND),
]


@pytest.mark.parametrize("msg", MESSAGES, ids=lambda m: m.id)
@pytest.mark.parametrize("with_content", [True, False])
def test_message_wire_encodes_like_the_message_out_model(msg: Message, with_content: bool) -> None:
    """Same keys, values, timestamp spelling and payload as the pydantic model's JSON,
    with content and without, for expunged payloads and empty or missing lists."""
    fast = orjson.dumps(serialize.message_wire(msg, with_content), option=orjson.OPT_UTC_Z)
    model = serialize.message(msg, with_content).model_dump_json(by_alias=True).encode()
    assert orjson.loads(fast) == orjson.loads(model)
