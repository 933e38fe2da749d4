from classifier.normalize import (
    EMAIL, MAX_CHARS, NUMBER, ORDER, PHONE, URL, display, has_content, normalize,
)
from classifier.tokenize import tokenize


def test_full_width_becomes_half_width_and_lower_case():
    assert normalize("ＡＢＣ１２３！？") == "abc123!?"


def test_real_and_masked_phone_numbers_become_one_placeholder():
    text = normalize("电话13812345678，或者138****1234，座机010-12345678，[电话]")
    assert text.count(PHONE) == 4
    assert "1381234" not in text


def test_emails_urls_order_numbers_and_long_digits_are_replaced():
    text = normalize("邮箱 a.b@qq.com 见 https://x.cn/a?b=1 订单号:AB12345678 卡号 6222020200112233")
    assert EMAIL in text and URL in text and ORDER in text and NUMBER in text
    assert "qq.com" not in text and "ab12345678" not in text and "622202" not in text
    assert "订单号" in text  # the keyword stays, only the number goes


def test_service_numbers_are_kept_because_they_carry_meaning():
    assert "12315" in normalize("我要打12315投诉")
    assert "10086" in normalize("打10086没人接")


def test_traditional_characters_map_to_simplified():
    assert normalize("快遞還沒到，電話沒人接") == "快递还没到,电话没人接"


def test_bytes_and_lone_surrogates_never_raise():
    assert normalize("快递\udc80没到") == "快递?没到"
    assert normalize("退款".encode("gb18030")) == "退款"
    assert isinstance(normalize(b"\xff\xfe\x00\x81"), str)
    assert normalize(None) == ""


def test_long_text_is_truncated():
    assert len(normalize("差" * 100_000)) == MAX_CHARS


def test_content_detection():
    assert not has_content(normalize("😀😀😀"))
    assert not has_content(normalize("！！！。。。"))
    assert not has_content(normalize("   "))
    assert has_content(normalize("差"))


def test_display_names_placeholders():
    assert display(normalize("打13812345678")) == "打[电话]"


def test_tokenizer_keeps_domain_words_whole_and_drops_stop_words():
    tokens = tokenize("快递员的态度太差了，退款一直没到账，我要打12315！")
    for word in ("快递员", "退款", "12315"):
        assert word in tokens
    assert "的" not in tokens and "了" not in tokens
    assert "!" in tokens  # exclamation marks are signal, not noise


def test_placeholder_is_a_single_token():
    assert tokenize("我的电话13812345678") == ["电话", PHONE]
