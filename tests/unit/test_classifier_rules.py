import pytest

from classifier.normalize import normalize
from classifier.rules import match, p0_hit


def hits(text):
    return match(normalize(text))


@pytest.mark.parametrize("text, name", [
    ("米线里吃出一只虫子", "食品安全"),
    ("饭里居然有头发", "食品安全"),
    ("吃完就拉肚子了", "身体不适"),
    ("孩子喝了以后呕吐", "身体不适"),
    ("用完皮肤过敏了", "过敏"),
    ("充电器漏电，手都麻了", "电气安全"),
    ("插座冒烟了", "电气安全"),
    ("信用卡被盗刷了五千", "资金安全"),
    ("宽带断网三天了没人修", "服务中断"),
    ("莫名扣了我600元话费", "大额扣费"),
    ("木耳里有飞虫", "食品安全"),
    ("饭里全是沙子", "食品安全"),
    ("洗发水用完头皮特别痒", "皮肤反应"),
    ("固话不能用一个星期", "服务中断"),
])
def test_p0_signals_are_flagged(text, name):
    found = hits(text)
    assert p0_hit(found)
    assert name in [h.name for h in found if h.level == "P0"]


@pytest.mark.parametrize("text, name", [
    ("这是第三次投诉了", "重复投诉"),
    ("再次出现同样的问题", "重复投诉"),
    ("不解决我就打12315", "升级投诉"),
    ("已经找了律师准备起诉", "升级投诉"),
    ("问题一直没解决", "一直未解决"),
])
def test_p1_signals_are_flagged_without_forcing_p0(text, name):
    found = hits(text)
    assert name in [h.name for h in found]
    assert not p0_hit(found)


def test_negated_symptom_is_not_a_hit():
    assert not p0_hit(hits("吃了没拉肚子，就是有点咸"))
    assert not p0_hit(hits("苹果很新鲜，没有虫"))
    assert not p0_hit(hits("用了一个月头皮不痒了"))


def test_ordinary_complaints_hit_no_p0_rule():
    for text in ("味道一般，送餐有点慢", "价格太贵了", "客服态度很差", "差到爆炸"):
        assert not p0_hit(hits(text)), text


def test_hit_reason_names_rule_and_match():
    (hit,) = [h for h in hits("吃出虫子") if h.name == "食品安全"]
    assert hit.reason.startswith("规则:食品安全(") and "吃出" in hit.reason
