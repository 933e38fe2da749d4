"""The intake chatbot's conversation, every intent, against a recording backend."""
from __future__ import annotations

from dataclasses import dataclass, field

from connectors.webchat.dialogue import Dialogue, Photo, Registered, new_state, welcome


@dataclass
class RecordingBackend:
    """Stands in for the web chat channel: records what the dialogue asked kesu to do."""
    urgency: str = "P1"
    number: str | None = "20261123-LG-0001"
    contacts: dict = field(default_factory=lambda: {"20261120-CS-0007": "13700001111"})
    registered: list = field(default_factory=list)
    added: list = field(default_factory=list)
    ratings: list = field(default_factory=list)
    human: int = 0

    async def register(self, slots):
        self.registered.append(slots)
        if self.number is None:
            return None
        return Registered(self.number, self.urgency, {"P0": "2小时", "P1": "4小时"}[self.urgency], "2026-11-23 14:00")

    async def verify(self, number, contact):
        return self.contacts.get(number) == contact

    async def status(self, number):
        return ("in_progress", None) if number in self.contacts or number == self.number else None

    async def add_info(self, number, text, photo):
        self.added.append((number, text, photo))
        return True

    async def rate(self, number, score):
        self.ratings.append((number, score))
        return True

    async def request_human(self):
        self.human += 1


def make(**kw):
    backend = RecordingBackend(**kw)
    return Dialogue(backend, new_state()), backend


async def talk(d, *lines):
    said = []
    for line in lines:
        said = await d.hear(line)
    return said


def text_of(said):
    return "\n".join(s.text for s in said)


def test_welcome_offers_the_menu():
    (say,) = welcome()
    assert "投诉" in say.text and "转人工" in say.options


async def test_complaint_asks_only_for_what_is_missing_then_summarises_and_registers():
    d, b = make()
    said = await d.hear("昨天买的冰箱漏水，订单号 JD123456789，电话 13912345678")
    # product, time, order and phone were given: only what the customer wants is missing
    assert d.state["slots"] == {"description": "昨天买的冰箱漏水，订单号 JD123456789，电话 13912345678",
                                "product": "冰箱", "order_no": "JD123456789", "when": "昨天", "contact": "13912345678"}
    assert "怎么处理" in text_of(said) and said[-1].options == ("退款", "换货", "道歉", "维修")
    said = await d.hear("换货")
    assert d.state["mode"] == "confirm"
    summary = text_of(said)
    for part in ("冰箱", "JD123456789", "昨天", "换货", "13912345678", "确认"):
        assert part in summary
    said = await d.hear("确认")
    assert b.registered == [{"description": "昨天买的冰箱漏水，订单号 JD123456789，电话 13912345678", "product": "冰箱",
                             "order_no": "JD123456789", "when": "昨天", "wants": "换货", "contact": "13912345678"}]
    assert "20261123-LG-0001" in said[0].text and "4小时" in said[0].text and "14:00" in said[0].text
    assert "主管" not in text_of(said)
    assert d.state["numbers"] == ["20261123-LG-0001"] and d.state["told"] == ["20261123-LG-0001"]
    assert said[-1].options[:5] == ("1", "2", "3", "4", "5")


async def test_each_question_in_turn_with_none_answers():
    d, b = make()
    said = await talk(d, "我要投诉")
    assert "描述" in text_of(said)
    said = await talk(d, "客服一直不回消息，态度很差")
    assert "产品或服务" in text_of(said)
    said = await talk(d, "会员服务")
    assert "订单号" in text_of(said)
    said = await talk(d, "没有")
    assert "什么时候" in text_of(said)
    said = await talk(d, "不记得了")
    assert "怎么处理" in text_of(said)
    said = await talk(d, "希望客服给个说法")
    assert "手机号或邮箱" in text_of(said)
    said = await talk(d, "li@example.com")
    assert d.state["mode"] == "confirm"
    assert "订单号：无" in text_of(said) and "发生时间：不记得" in text_of(said)
    assert d.state["slots"]["wants"] == "给出解释"


async def test_invalid_contact_is_asked_again_with_the_format():
    d, _ = make()
    await talk(d, "快递三天还没到，订单号 SF1234567890", "快递", "今天", "补发")
    said = await d.hear("1381234")
    assert "格式" in text_of(said) and d.state["slots"].get("contact") is None
    said = await d.hear("138 1234 5678")
    assert d.state["mode"] == "confirm" and d.state["slots"]["contact"] == "13812345678"


async def test_unclear_answers_are_asked_again_twice_then_a_human_is_offered():
    d, b = make()
    await talk(d, "我要投诉")
    first = await d.hear("？")
    second = await d.hear("啥")
    assert "没太明白" in text_of(first) and "没太明白" in text_of(second)
    third = await d.hear("嗯")
    assert "人工" in text_of(third) and third[0].options == ("转人工", "继续")
    said = await d.hear("继续")
    assert d.state["mode"] == "collect" and "描述" in text_of(said)
    await talk(d, "？", "？", "？")
    said = await d.hear("转人工")
    assert b.human == 1 and d.state["mode"] == "human" and "人工客服" in text_of(said)


async def test_p0_reply_says_a_supervisor_was_alerted():
    d, _ = make(urgency="P0")
    said = await talk(d, "孩子吃了你们的零食中毒住院了 昨天 订单号 A998877665 我要赔偿 13812345678", "确认")
    assert "主管" in text_of(said) and "2小时" in text_of(said)


async def test_number_that_comes_later_is_promised():
    d, b = make(number=None)
    said = await talk(d, "外卖送错了 今天 订单号 MT20261123001 要退款 13812345678", "外卖", "确认")
    assert "编号生成后" in text_of(said) and d.state["numbers"] == []


async def test_modifying_one_field_from_the_summary():
    d, _ = make()
    await talk(d, "昨天买的冰箱漏水，订单号 JD123456789，电话 13912345678，要换货")
    assert d.state["mode"] == "confirm"
    said = await d.hear("修改")
    assert "哪一项" in text_of(said)
    said = await d.hear("联系方式")
    assert "手机号或邮箱" in text_of(said)
    said = await d.hear("wang@example.com")
    assert d.state["mode"] == "confirm" and "wang@example.com" in text_of(said)


async def test_a_corrected_value_in_the_summary_is_taken():
    d, _ = make()
    await talk(d, "昨天买的冰箱漏水，订单号 JD123456789，电话 13912345678，要换货")
    said = await d.hear("电话写错了，是13700002222")
    assert d.state["slots"]["contact"] == "13700002222" and "13700002222" in text_of(said)


async def test_cancel_during_collection():
    d, b = make()
    said = await talk(d, "空调坏了不制冷", "取消")
    assert d.state["mode"] == "idle" and d.state["slots"] == {} and not b.registered and "取消" in text_of(said)


async def test_status_needs_the_registered_contact():
    d, _ = make()
    said = await d.hear("查询 20261120-CS-0007 的进度")
    assert "手机号或邮箱" in text_of(said)
    said = await d.hear("13800000000")
    assert "不匹配" in text_of(said) and "处理中" not in text_of(said)
    said = await d.hear("13700001111")
    assert "20261120-CS-0007" in text_of(said) and "处理中" in text_of(said)
    assert "20261120-CS-0007" in d.state["verified"]


async def test_status_of_a_complaint_registered_in_this_chat_needs_no_contact():
    d, _ = make()
    await talk(d, "昨天买的冰箱漏水，订单号 JD123456789，电话 13912345678，要换货", "确认", "跳过")
    said = await d.hear("查询进度")
    assert said[0].options == ("20261123-LG-0001",)
    said = await d.hear("20261123-LG-0001")
    assert "处理中" in text_of(said)


async def test_adding_information_and_a_photo_to_a_complaint():
    d, b = make()
    said = await d.hear("补充 20261120-CS-0007：快递员还把箱子摔坏了")
    assert "手机号或邮箱" in text_of(said)
    said = await d.hear("13700001111")
    assert b.added == [("20261120-CS-0007", "快递员还把箱子摔坏了", None)] and "已将" in text_of(said)
    said = await d.hear("继续补充")
    assert "照片" in text_of(said)
    photo = Photo("box.jpg", "image/jpeg", b"\xff\xd8jpeg")
    said = await d.photo(photo)
    assert b.added[-1] == ("20261120-CS-0007", "", photo) and "照片" in text_of(said)


async def test_adding_information_step_by_step():
    d, b = make()
    said = await talk(d, "补充材料")
    assert "投诉编号" in text_of(said)
    await talk(d, "20261120-CS-0007", "13700001111")
    assert d.state["mode"] == "add_info"
    await d.hear("收到的是二手货，包装被拆过")
    assert b.added == [("20261120-CS-0007", "收到的是二手货，包装被拆过", None)]


async def test_a_photo_without_a_complaint_is_explained():
    d, b = make()
    said = await d.photo(Photo("a.png", "image/png", b"png"))
    assert "投诉编号" in text_of(said) and b.added == []


async def test_asking_for_a_human_at_any_time_hands_over_and_the_bot_stays_quiet():
    d, b = make()
    await talk(d, "空调坏了不制冷")
    said = await d.hear("我要转人工")
    assert b.human == 1 and d.state["mode"] == "human" and "人工客服" in text_of(said)
    assert await d.hear("人呢") == []
    said = d.agent_released()
    assert d.state["mode"] == "idle" and "结束" in text_of(said)


async def test_a_complaint_about_customer_service_is_not_a_request_for_a_human():
    d, b = make()
    await d.hear("你们客服人员态度太差了")
    assert b.human == 0 and d.state["mode"] == "collect"


async def test_rating_after_registration_is_stored():
    d, b = make()
    await talk(d, "昨天买的冰箱漏水，订单号 JD123456789，电话 13912345678，要换货", "确认")
    said = await d.hear("5")
    assert b.ratings == [("20261123-LG-0001", 5)] and "感谢" in text_of(said)


async def test_rating_by_intent_and_chinese_digits_and_out_of_range():
    d, b = make()
    await talk(d, "评价 20261120-CS-0007", "13700001111")
    said = await d.hear("6")
    assert "1到5" in text_of(said) and b.ratings == []
    await d.hear("四分")
    assert b.ratings == [("20261120-CS-0007", 4)]


async def test_skipping_the_rating():
    d, b = make()
    await talk(d, "昨天买的冰箱漏水，订单号 JD123456789，电话 13912345678，要换货", "确认")
    await d.hear("跳过")
    assert b.ratings == [] and d.state["mode"] == "idle"


async def test_greeting_then_off_topic_offers_a_human_after_two_retries():
    d, b = make()
    said = await d.hear("你好")
    assert "有什么可以帮您" in text_of(said)
    await d.hear("在吗")
    said = await d.hear("？")
    assert "人工" in text_of(said) and d.state["mode"] == "offer_human"
    said = await d.hear("好的")
    assert b.human == 1


async def test_menu_choices_start_each_flow():
    d, _ = make()
    assert "描述" in text_of(await d.hear("我要投诉"))
    d, _ = make()
    assert "投诉编号" in text_of(await d.hear("查询进度"))
