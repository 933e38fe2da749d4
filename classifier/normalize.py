"""Text clean-up shared by training and suggestion.

Everything the models see goes through `normalize()`, so training and
run time can never drift apart. Personal data (phones, emails, order
numbers, URLs, long digit runs) becomes a one-character placeholder: the
model learns "a phone number was given" without memorising any number.
"""
from __future__ import annotations

import re
import unicodedata

MAX_CHARS = 5000  # complaints longer than this are pasted logs or mail threads

# Private-use code points: jieba yields a non-Han character as its own token
# and a char n-gram sees one symbol, so a placeholder stays one unit.
PHONE = "\ue001"
EMAIL = "\ue002"
ORDER = "\ue003"
URL = "\ue004"
NUMBER = "\ue005"
PLACEHOLDER_NAMES = {
    PHONE: "[电话]",
    EMAIL: "[邮箱]",
    ORDER: "[订单号]",
    URL: "[网址]",
    NUMBER: "[长数字]",
}

_URL_RE = re.compile(r"(?:https?://|www\.)[^\s\u4e00-\u9fff，。！？]+", re.I)
_EMAIL_RE = re.compile(r"[\w.+-]+@[a-z0-9-]+(?:\.[a-z0-9-]+)+", re.I)
# Masks already present in the data ("[电话]", "138****1234") and real numbers:
# mainland mobiles, landlines with area code, 400/800 hot-lines.
_PHONE_RE = re.compile(
    r"\[电话\]"
    r"|(?<!\d)1[3-9]\d[\d*xX]{4}\d{4}(?!\d)"
    r"|(?<!\d)0\d{2,3}-?\d{7,8}(?!\d)"
    r"|(?<!\d)[48]00-?\d{3}-?\d{4}(?!\d)"
)
_EMAIL_MASK_RE = re.compile(r"\[邮箱\]")
# An order / waybill number after its keyword, or any long letter+digit code.
_ORDER_AFTER_KEYWORD_RE = re.compile(r"(订单号|运单号|单号|订单编号)[:：#\s]*[a-z0-9-]{6,}", re.I)
_CODE_RE = re.compile(
    r"(?<![a-z0-9])(?=[a-z0-9-]*\d)(?=[a-z0-9-]*[a-z])[a-z0-9-]{10,}(?![a-z0-9])", re.I
)
_LONG_DIGITS_RE = re.compile(r"\d{6,}")
_SPACE_RE = re.compile(r"\s+")
_CONTENT_RE = re.compile(r"[0-9a-z\u3400-\u9fff]", re.I)

# Common traditional characters seen in complaints (HK/TW customers, Weibo).
# A short map is enough: char n-grams cover the rest.
_TRAD = (
    "這个們說為來時對會沒還發電話費號務問題買賣貨錢給過進這還讓請與"
    "態度處理應該質與東車門開關網絡聯繫絡單價錯誤幾點嗎麼樣當後經歷難"
    "現實體驗臺灣華師傅換貨氣壞馬上報總銀帳戶凍結騙盜刷帳號碼斷線郵"
    "訊號連動辦業務營廳種樣點醫院傷過敏藥頭髮蟲漏爆炸燒熱憤擔聽見"
    "覺謝謝紅黃綠藍長門間題員專線條話話寫讀書記錄調查訂訂購運輸遞貴"
    "筆記產廠機視頻網頁軟體硬體滿意願歡迎麵飯餐廳蝦魚雞鴨豬牛場區"
)
_SIMP = (
    "这个们说为来时对会没还发电话费号务问题买卖货钱给过进这还让请与"
    "态度处理应该质与东车门开关网络联系络单价错误几点吗么样当后经历难"
    "现实体验台湾华师傅换货气坏马上报总银帐户冻结骗盗刷帐号码断线邮"
    "讯号连动办业务营厅种样点医院伤过敏药头发虫漏爆炸烧热愤担听见"
    "觉谢谢红黄绿蓝长门间题员专线条话话写读书记录调查订订购运输递贵"
    "笔记产厂机视频网页软体硬体满意愿欢迎面饭餐厅虾鱼鸡鸭猪牛场区"
)
assert len(_TRAD) == len(_SIMP)
_TRAD_MAP = str.maketrans({t: s for t, s in zip(_TRAD, _SIMP) if t != s})


def to_text(raw: object) -> str:
    """Any input as a clean str: bytes decoded, lone surrogates replaced."""
    if raw is None:
        return ""
    if isinstance(raw, (bytes, bytearray, memoryview)):
        data = bytes(raw)
        for encoding in ("utf-8", "gb18030"):
            try:
                return data.decode(encoding)
            except UnicodeDecodeError:
                pass
        return data.decode("utf-8", errors="replace")
    text = raw if isinstance(raw, str) else str(raw)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates from a broken decoder upstream
        text = text.encode("utf-8", errors="replace").decode("utf-8")
    return text


def normalize(raw: object) -> str:
    """NFKC (full-width to half-width), lower case, simplified characters,
    placeholders for personal data, single spaces, at most MAX_CHARS."""
    text = to_text(raw)[:MAX_CHARS]
    text = unicodedata.normalize("NFKC", text).lower()
    text = text.translate(_TRAD_MAP)
    text = _URL_RE.sub(URL, text)
    text = _EMAIL_MASK_RE.sub(EMAIL, text)
    text = _EMAIL_RE.sub(EMAIL, text)
    text = _PHONE_RE.sub(PHONE, text)
    text = _ORDER_AFTER_KEYWORD_RE.sub(lambda m: m.group(1) + ORDER, text)
    text = _CODE_RE.sub(ORDER, text)
    text = _LONG_DIGITS_RE.sub(NUMBER, text)
    return _SPACE_RE.sub(" ", text).strip()


def has_content(normalized: str) -> bool:
    """False for empty text, emoji only, punctuation only."""
    return _CONTENT_RE.search(normalized) is not None


def display(token: str) -> str:
    """A token as an agent should read it (placeholders by name)."""
    for symbol, name in PLACEHOLDER_NAMES.items():
        token = token.replace(symbol, name)
    return token
