"""What a customer's reply means in each state, and numbered survey answers."""
from __future__ import annotations

import pytest

from workflow.replies import meaning
from workflow.surveys import parse_numbered_reply


@pytest.mark.parametrize("text, expected", [
    ("5 4 3", ({"efficiency": 5, "attitude": 4, "solution": 3}, None)),
    ("５，４，５ 很满意", ({"efficiency": 5, "attitude": 4, "solution": 5}, "很满意")),
    ("2", ({"efficiency": 2, "attitude": 2, "solution": 2}, None)),
    ("3分。太慢了", ({"efficiency": 3, "attitude": 3, "solution": 3}, "太慢了")),
    ("5 4", None), ("6 6 6", None), ("12", None), ("你好", None),
])
def test_numbered_survey_answers(text, expected):
    assert parse_numbered_reply(text) == expected


def test_replies_by_state():
    assert meaning("resolved", "1", False) == ("confirm", {})
    assert meaning("resolved", "确认已解决", False) == ("confirm", {})
    assert meaning("resolved", "2 还是漏水", False) == ("dispute", {"reason": "还是漏水"})
    assert meaning("resolved", "不满意", False)[0] == "dispute"
    assert meaning("resolved", "什么时候到？", False) is None
    assert meaning("resolved", "12点前能到吗", False) is None
    assert meaning("confirmed", "4 4 5", True) == ("record_survey", {"efficiency": 4, "attitude": 4, "solution": 5,
                                                                      "comment": None})
    assert meaning("confirmed", "4 4 5", False) is None          # no survey asked yet
    assert meaning("awaiting_customer", "订单号是 A100", False) == ("resume", {})
    assert meaning("in_progress", "1", False) is None
