"""Pick out what a customer already said: phone, e-mail, order number, time, product, what they want.

Pure functions on one message; the dialogue calls them on every message so it never asks for
something the customer has already given.
"""
from __future__ import annotations

import re
import unicodedata

COMPLAINT_NUMBER = re.compile(r"(?<![\dA-Za-z])\d{8}-[A-Za-z]{2,8}-\d{4,}(?!\d)")
_MOBILE = re.compile(r"(?<![\dA-Za-z])(?:\+?86[-\s]?)?(1[3-9]\d)[-\s]?(\d{4})[-\s]?(\d{4})(?![\dA-Za-z])")
_LANDLINE = re.compile(r"(?<![\dA-Za-z])(0\d{2,3})[-\s]?(\d{7,8})(?![\dA-Za-z])")
_EMAIL = re.compile(r"(?<![\w.+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,24}(?![\w-])")
_EMAIL_EXACT = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,24}")
_ORDER_KEYED = re.compile(r"(?:订单编号|订单号码|订单号|订单|单号|order\s*(?:no\.?|number|id|#)?)\s*(?:是|为|:|：|#|号)?\s*"
                          r"([A-Za-z0-9][A-Za-z0-9-]{4,31})", re.I)
_ORDER_BARE = re.compile(r"(?<![A-Za-z0-9-])((?=[A-Za-z0-9-]*\d)[A-Za-z0-9][A-Za-z0-9-]{7,31})(?![A-Za-z0-9-])")

_CN_NUM = "一二三四五六七八九十两几半"
_TIME_PATTERNS = [
    r"\d{4}\s*[-/.年]\s*\d{1,2}\s*[-/.月]\s*\d{1,2}\s*[日号]?",
    r"\d{1,2}\s*月\s*\d{1,2}\s*[日号]",
    r"\d{1,2}\s*月(?:初|中旬|中|底|末|份)?",
    rf"(?:\d+|[{_CN_NUM}]+)\s*(?:个)?(?:天|日|周|星期|礼拜|月|小时|钟头|年)(?:前|以前|之前)",
    r"(?:上|这|本|上上)(?:个)?(?:周|星期|礼拜)[一二三四五六日天]?",
    r"(?:上|这|本|上上)个?月(?:\d{1,2}\s*[日号])?",
    r"(?:星期|礼拜|周)[一二三四五六日天]",
    r"(?:大前天|前天|昨天|今天|昨晚|今晚|昨夜|今早|昨早|今天早上|刚才|刚刚|去年|今年|上午|下午|中午|晚上|凌晨)",
    r"\d{1,2}\s*[号日](?![\d])",
    r"\d{1,2}\s*[点:：]\s*\d{0,2}\s*分?",
]
_TIME = re.compile("|".join(f"(?:{p})" for p in _TIME_PATTERNS))

# What customers complain about most; the first one mentioned wins.
PRODUCTS = (
    "笔记本电脑", "平板电脑", "洗碗机", "热水器", "洗衣机", "扫地机器人", "电饭煲", "微波炉", "吸尘器", "净水器",
    "空调", "冰箱", "电暖器", "取暖器", "加湿器", "电热毯", "电视", "手机", "电脑", "笔记本", "平板", "耳机", "音箱", "手表", "手环", "相机", "打印机",
    "路由器", "充电器", "充电宝", "显示器", "键盘", "鼠标", "空气净化器", "电风扇", "油烟机", "燃气灶", "烤箱",
    "衣服", "外套", "羽绒服", "裤子", "鞋子", "鞋", "包", "化妆品", "面膜", "奶粉", "尿不湿", "食品", "零食", "水果",
    "生鲜", "外卖", "家具", "沙发", "床垫", "宽带", "话费", "流量", "套餐", "会员", "快递", "物流", "机票", "酒店",
    "火车票", "门票", "保险", "信用卡", "贷款", "课程", "网课", "维修服务", "售后服务", "安装服务", "iPhone", "iPad",
    "MacBook", "华为", "小米", "OPPO", "vivo", "荣耀",
)
_PRODUCT_AFTER_VERB = re.compile(
    r"(?:买的|买了|购买的|购买了|订的|订了|订购的|下单的|下单了|办的|办理的|用的)"
    r"(?:一[台个件部双条款份张套箱盒瓶只]|[这那][台个件部双条款份张套])?"
    r"([\u4e00-\u9fffA-Za-z0-9]{2,12}?)(?=[，。,.!！？?；;\s]|$|的|在|后|才|就|一直|坏|有|出现|不|没|收到|到货|送|用|才|刚)")

WANTS = (
    ("退款", ("退款", "退钱", "把钱退", "返还")),
    ("退货", ("退货",)),
    ("换货", ("换货", "换一", "换个", "更换", "换新")),
    ("维修", ("维修", "修理", "修好", "保修", "上门修")),
    ("道歉", ("道歉", "赔礼")),
    ("赔偿", ("赔偿", "补偿", "赔付", "赔钱")),
    ("补发", ("补发", "重新发", "重发", "再发")),
    ("给出解释", ("解释", "说法", "说明原因")),
    ("尽快处理", ("尽快处理", "尽快解决", "马上处理", "尽快送达", "尽快发货")),
)

_NONE_WORDS = re.compile(r"^(?:没有|没|无|暂无|不知道|不清楚|忘了|忘记了|找不到|不记得(?:了)?|记不清(?:了)?|不确定|"
                         r"没有订单号?|无订单号?|跳过|不用|none|no|n/?a)[。.!！~～\s]*$", re.I)
_GREETING = re.compile(r"^(?:你好|您好|你好呀|在吗|在不在|有人吗|哈喽|嗨|喂|hi|hello|hey|早上好|下午好|晚上好|"
                       r"谢谢|好的|嗯+|哦+|啊+)[呀啊吗呢!！。.?？~～\s]*$", re.I)
_CONFUSED = re.compile(r"^(?:什么|啥|啥意思|什么意思|不懂|不明白|看不懂|\?+|？+|。+|…+|\.+|不知道说什么)[?？。!！\s]*$")
_MEANINGFUL = re.compile(r"[\u4e00-\u9fffA-Za-z0-9]")


def clean(text: str) -> str:
    text = unicodedata.normalize("NFKC", text or "")
    return re.sub(r"\s+", " ", text).strip()


def phones(text: str) -> list[str]:
    found = [a + b + c for a, b, c in _MOBILE.findall(clean(text))]
    found += [f"{a}-{b}" for a, b in _LANDLINE.findall(_MOBILE.sub(" ", clean(text)))]
    return found


def emails(text: str) -> list[str]:
    return _EMAIL.findall(clean(text))


def complaint_numbers(text: str) -> list[str]:
    return [n.upper() for n in COMPLAINT_NUMBER.findall(clean(text))]


def _without_contacts(text: str) -> str:
    text = COMPLAINT_NUMBER.sub(" ", text)
    text = _EMAIL.sub(" ", text)
    text = _MOBILE.sub(" ", text)
    return _LANDLINE.sub(" ", text)


def order_number(text: str, *, asked: bool = False) -> str | None:
    """An order number after a keyword (订单号 ...), or a long alphanumeric token with digits.
    When the customer was just asked for it, a shorter bare token (5+ characters) counts too."""
    rest = _without_contacts(clean(text))
    m = _ORDER_KEYED.search(rest)
    if m and re.search(r"\d", m.group(1)):
        return m.group(1)
    for m in _ORDER_BARE.finditer(rest):
        if not _TIME.fullmatch(m.group(1)):
            return m.group(1)
    if asked:
        m = re.fullmatch(r"[#＃]?\s*([A-Za-z0-9][A-Za-z0-9-]{4,31})", rest.strip())
        if m and re.search(r"\d", m.group(1)):
            return m.group(1)
    return None


def when(text: str) -> str | None:
    """The first time expression, as the customer wrote it (昨天下午, 11月20日, 三天前...)."""
    rest = _without_contacts(clean(text))
    rest = _ORDER_KEYED.sub(" ", rest)
    m = _TIME.search(rest)
    if not m:
        return None
    # Keep adjacent parts together: 昨天下午3点, 11月20日晚上.
    end = m.end()
    while True:
        nxt = _TIME.match(rest, end) or _TIME.match(rest, end + 1) if end < len(rest) else None
        if not nxt or nxt.start() - end > 1:
            break
        end = nxt.end()
    return rest[m.start():end].strip()


def product(text: str) -> str | None:
    t = clean(text)
    hits = [(t.find(p), -len(p), p) for p in PRODUCTS if p.lower() in t.lower()]
    hits = [(i if i >= 0 else t.lower().find(p.lower()), n, p) for i, n, p in hits]
    if hits:
        return min(hits)[2]
    m = _PRODUCT_AFTER_VERB.search(t)
    return m.group(1) if m else None


def wants(text: str) -> str | None:
    t = clean(text)
    found = [label for label, words in WANTS if any(w in t for w in words)]
    return "、".join(found) if found else None


def is_none(text: str) -> bool:
    """"没有", "不记得了", "跳过"...: the customer has no answer to this question."""
    return bool(_NONE_WORDS.match(clean(text)))


def is_greeting(text: str) -> bool:
    return bool(_GREETING.match(clean(text)))


def is_unclear(text: str) -> bool:
    """Nothing we can use: empty, only punctuation, a greeting or 'what?'."""
    t = clean(text)
    return not _MEANINGFUL.search(t) or bool(_CONFUSED.match(t)) or is_greeting(t)


def valid_email(value: str) -> bool:
    return bool(_EMAIL_EXACT.fullmatch(clean(value))) and len(value) <= 254


def extract(text: str) -> dict[str, str]:
    """Every slot this one message fills (absent keys: not mentioned)."""
    found: dict[str, str] = {}
    for key, value in (("phone", next(iter(phones(text)), None)), ("email", next(iter(emails(text)), None)),
                       ("order_no", order_number(text)), ("when", when(text)), ("product", product(text)),
                       ("wants", wants(text))):
        if value:
            found[key] = value
    return found
