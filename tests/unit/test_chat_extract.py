"""What the chatbot picks out of a customer's message without asking."""
from __future__ import annotations

import pytest

from connectors.webchat import extract as ex


@pytest.mark.parametrize("text, phone", [
    ("我的电话13812345678，尽快联系", "13812345678"),
    ("手机 138 1234 5678", "13812345678"),
    ("+86 139-0000-1111", "13900001111"),
    ("座机 010-62345678", "010-62345678"),
])
def test_phone_numbers_are_found_and_normalised(text, phone):
    assert ex.phones(text)[0] == phone
    assert ex.extract(text)["phone"] == phone


def test_eleven_digits_that_are_not_a_mobile_number_are_not_a_phone():
    assert ex.phones("金额 12345678901 元") == []


@pytest.mark.parametrize("text, email", [
    ("邮箱是 li.lei@example.com 谢谢", "li.lei@example.com"),
    ("联系我：ZHANG_san+kf@mail.example.cn。", "ZHANG_san+kf@mail.example.cn"),
])
def test_email_addresses_are_found(text, email):
    assert ex.extract(text)["email"] == email


def test_email_validation():
    assert ex.valid_email("a@b.cn")
    assert not ex.valid_email("a@b")
    assert not ex.valid_email("not an email")


@pytest.mark.parametrize("text, order", [
    ("订单号：JD2026112012345，买的空调坏了", "JD2026112012345"),
    ("订单号是 88776655", "88776655"),
    ("order no. A1B2C3D4", "A1B2C3D4"),
    ("我的单号 TB-20261120-991 还没发货", "TB-20261120-991"),
    ("4200001234567890 这个订单一直没退款", "4200001234567890"),
])
def test_order_numbers_are_found(text, order):
    assert ex.order_number(text) == order


def test_phones_dates_and_complaint_numbers_are_not_order_numbers():
    assert ex.order_number("电话13812345678") is None
    assert ex.order_number("2026-11-20 买的") is None
    assert ex.order_number("投诉编号 20261123-LG-0001") is None
    assert ex.order_number("没有") is None


def test_a_short_bare_token_counts_only_when_we_asked_for_the_order_number():
    assert ex.order_number("A12345") is None
    assert ex.order_number("A12345", asked=True) == "A12345"
    assert ex.order_number("好的", asked=True) is None


@pytest.mark.parametrize("text, when", [
    ("昨天下午买的手机屏幕就碎了", "昨天下午"),
    ("2026年11月20日收到的货", "2026年11月20日"),
    ("11月3号下的单", "11月3号"),
    ("三天前买的", "三天前"),
    ("上周五送来的冰箱不制冷", "上周五"),
    ("2026-11-01 买的", "2026-11-01"),
])
def test_time_expressions_are_found(text, when):
    assert ex.when(text) == when


def test_no_time_in_a_plain_sentence():
    assert ex.when("空调不制冷") is None


@pytest.mark.parametrize("text, product", [
    ("买的空调不制冷", "空调"),
    ("我的笔记本电脑开不了机", "笔记本电脑"),
    ("外卖送错了", "外卖"),
    ("买了一台破壁机用了两次就坏了", "破壁机"),
])
def test_products_are_found(text, product):
    assert ex.product(text) == product


@pytest.mark.parametrize("text, wants", [
    ("我要退款", "退款"),
    ("请给我换一台新的并道歉", "换货、道歉"),
    ("上门维修吧", "维修"),
])
def test_what_the_customer_wants_is_found(text, wants):
    assert ex.wants(text) == wants


def test_complaint_numbers():
    assert ex.complaint_numbers("查一下 20261123-lg-0001 的进度") == ["20261123-LG-0001"]


@pytest.mark.parametrize("text", ["你好", "在吗？", "？？", "...", "什么意思", "", "嗯嗯"])
def test_unclear_messages(text):
    assert ex.is_unclear(text)


def test_none_answers():
    assert ex.is_none("没有") and ex.is_none("不记得了") and ex.is_none("忘了。")
    assert not ex.is_none("没有收到货")


def test_one_message_fills_several_slots():
    found = ex.extract("昨天买的冰箱漏水，订单号 JD123456789，电话 13912345678，要求换货")
    assert found == {"phone": "13912345678", "order_no": "JD123456789", "when": "昨天", "product": "冰箱",
                     "wants": "换货"}
