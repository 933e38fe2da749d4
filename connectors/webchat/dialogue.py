"""The intake chatbot: a small state machine over a JSON-able state dict.

It collects what the registration form needs (what happened, product or service, order number,
when, what the customer wants, a phone or e-mail), taking whatever the customer already said
instead of asking again; shows a summary, and registers on confirmation. It also checks a
complaint's status (after the contact registered with it is given), adds information or a
photo to a complaint, hands the chat to a human, and records a 1-5 rating.

Everything that touches the rest of kesu goes through a `Backend`, so the dialogue is tested
without a database. Every text here is what the customer reads: Chinese, short and polite.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Protocol

from . import extract as ex

MAX_MISSES = 2            # an unclear answer is asked again at most twice, then a human is offered

SLOTS = ("description", "product", "order_no", "when", "wants", "contact")
LABELS = {"description": "问题描述", "product": "产品/服务", "order_no": "订单号", "when": "发生时间",
          "wants": "您的诉求", "contact": "联系方式"}
QUESTIONS = {
    "description": "请简单描述一下您遇到的问题。",
    "product": "请问涉及的是哪个产品或服务？",
    "order_no": "请提供订单号；如果没有，请回复“没有”。",
    "when": "请问问题大约是什么时候发生的？（例如：昨天下午、11月20日）",
    "wants": "您希望我们怎么处理？例如退款、换货、道歉、维修。",
    "contact": "请留下您的手机号或邮箱，方便我们联系您。",
}
OPTIONS = {"order_no": ["没有"], "when": ["不记得了"], "wants": ["退款", "换货", "道歉", "维修"]}
RETRY = {
    "description": "抱歉，我没太明白。请用一两句话说说发生了什么，例如“快递三天了还没到”。",
    "product": "请告诉我产品或服务的名称，例如“空调”“宽带套餐”；不确定可以回复“不确定”。",
    "order_no": "订单号一般是一串字母或数字，请再发一次；没有的话请回复“没有”。",
    "when": "请告诉我大约的时间，例如“昨天”“上周五”“11月20日”；记不清可以回复“不记得了”。",
    "wants": "请告诉我您的诉求，例如退款、换货、道歉或维修。",
    "contact": "手机号或邮箱的格式好像不对，请再输入一次（例如 13812345678 或 name@example.com）。",
}
MENU = ["我要投诉", "查询进度", "补充材料", "转人工"]
WELCOME = "您好，这里是在线投诉服务。请直接描述您遇到的问题，我会帮您登记；也可以输入投诉编号查询进度。"
EDIT_CHOICES = ["问题描述", "产品/服务", "订单号", "发生时间", "您的诉求", "联系方式"]
RATING_OPTIONS = ["1", "2", "3", "4", "5", "跳过"]
ASK_RATING = "如方便，请为本次服务打分（1-5分，5分为非常满意）。"
HUMAN_HANDOFF = "已为您转接人工客服，请稍候，客服会在这里回复您。"

_HUMAN = re.compile(r"转人工|人工客服|人工服务|找人工|要人工|接人工|真人客服|找真人|转接客服|"
                    r"^(?:人工|真人|客服)[吧呢。!！\s]*$")
_STATUS = re.compile(r"查询|查一下|查下|进度|状态|处理得?怎么样|处理到哪|结果|到哪一步")
_ADD = re.compile(r"补充|追加|再说一下|上传|照片|图片|材料|附件")
_RATE = re.compile(r"评价|打分|评分")
_START = re.compile(r"^(?:我要?投诉|投诉|我想投诉|我要反映问题|我要反馈|登记投诉|反映问题)[。!！\s]*$")
_CONFIRM = re.compile(r"^(?:确认|确定|是的?|对的?|没错|正确|没问题|好的?|可以|提交|ok|yes|y)[的了啊呀。!！\s]*$", re.I)
_MODIFY = re.compile(r"修改|更改|改一下|不对|有误|错了|^改")
_CANCEL = re.compile(r"^(?:取消|算了|不用了|不投诉了|放弃)[。!！\s]*$")
_YES = re.compile(r"^(?:是|好|好的|要|需要|可以|转人工|转|嗯|行|ok|yes)[的吧啊呀。!！\s]*$", re.I)
_NO = re.compile(r"^(?:不|不用|不需要|否|继续|算了|no)[了用吧啊呀。!！\s]*$", re.I)
_SKIP = re.compile(r"^(?:跳过|不用|不了|不评|算了|以后再说)[了吧。!！\s]*$")
_SCORE = re.compile(r"^(?:([1-5])|([一二三四五]))\s*(?:分|星)?[。!！\s]*$")
_CN_DIGIT = {"一": 1, "二": 2, "三": 3, "四": 4, "五": 5}

STATUS_LABELS = {
    "registered": "已登记，等待分派", "assigned": "已分派给专员", "in_progress": "处理中",
    "awaiting_customer": "等待您补充信息", "resolved": "已处理完毕，等待您确认", "confirmed": "已确认解决",
    "surveyed": "已评价", "closed": "已结案", "disputed": "您有异议，正在复核", "escalated": "已升级处理",
    "reopened": "已重新受理", "merged": "已与其他投诉合并", "withdrawn": "已撤回",
}


@dataclass(frozen=True)
class Say:
    """One bot message, with optional quick-reply buttons."""
    text: str
    options: tuple[str, ...] = ()


@dataclass(frozen=True)
class Registered:
    number: str
    urgency: str           # P0 | P1 | P2
    promise: str           # "4小时"
    due: str               # local time, "2026-11-23 14:00"


@dataclass(frozen=True)
class Photo:
    name: str
    content_type: str
    data: bytes


class Backend(Protocol):
    """What the dialogue needs from kesu; the web chat channel implements it per session."""

    async def register(self, slots: dict[str, Any]) -> Registered | None:
        """Register the complaint; None when the number is not known yet (it will follow)."""

    async def verify(self, number: str, contact: str) -> bool:
        """Is `contact` (phone or e-mail) registered with that complaint's customer?"""

    async def status(self, number: str) -> tuple[str, str | None] | None:
        """(status, response due as local time) of a complaint, None if unknown."""

    async def add_info(self, number: str, text: str, photo: Photo | None) -> bool: ...

    async def rate(self, number: str, score: int) -> bool: ...

    async def request_human(self) -> None: ...


def new_state() -> dict[str, Any]:
    return {"mode": "idle", "slots": {}, "asking": None, "misses": 0, "numbers": [], "verified": [], "told": [],
            "purpose": None, "target": None, "resume": None, "pending": None}


def welcome() -> list[Say]:
    return [Say(WELCOME, tuple(MENU))]


@dataclass
class Dialogue:
    backend: Backend
    state: dict[str, Any] = field(default_factory=new_state)
    said: list[Say] = field(default_factory=list)
    raw: str = ""

    # -- entry points ---------------------------------------------------------------------------
    async def hear(self, text: str) -> list[Say]:
        """The customer wrote `text`; returns what the bot answers (possibly nothing)."""
        self.said = []
        self.raw = re.sub(r"\s+", " ", text or "").strip()[:2000]   # kept as written
        text = ex.clean(text)
        st = self.state
        mode = st["mode"]
        if mode == "human":
            return []                      # an agent has the conversation
        if _HUMAN.search(text) and mode not in ("offer_human",):
            await self._to_human()
            return self.said
        handler = getattr(self, f"_in_{mode}", self._in_idle)
        await handler(text)
        return self.said

    async def photo(self, photo: Photo) -> list[Say]:
        """The customer sent a picture."""
        self.said = []
        st = self.state
        if st["mode"] == "human":
            return []
        if st["mode"] == "add_info" and st["target"]:
            await self._add(st["target"], "", photo)
        elif st["numbers"]:
            await self._add(st["numbers"][-1], "", photo)
        else:
            self._say("照片需要补充到已登记的投诉里：请先完成登记，或告诉我投诉编号后再发送。")
        return self.said

    def agent_released(self) -> list[Say]:
        """An agent handed the chat back to the bot."""
        self.said = []
        st = self.state
        st.update(mode="idle", misses=0, resume=None)
        if st["numbers"]:
            st.update(mode="rate", target=st["numbers"][-1])
            self._say("人工服务已结束，感谢您的耐心。" + ASK_RATING, RATING_OPTIONS)
        else:
            self._say("人工服务已结束，感谢您的耐心。还有其他可以帮您的吗？", MENU)
        return self.said

    # -- helpers ------------------------------------------------------------------------------------
    def _say(self, text: str, options=()) -> None:
        self.said.append(Say(text, tuple(options)))

    def _miss(self, retry_text: str, options=()) -> None:
        """An unclear answer: ask again, at most twice; then offer a human."""
        st = self.state
        st["misses"] += 1
        if st["misses"] > MAX_MISSES:
            st.update(resume=st["mode"], mode="offer_human", misses=0)
            self._say("抱歉，我没能理解您的意思。需要为您转接人工客服吗？", ("转人工", "继续"))
        else:
            self._say(retry_text, options)

    async def _to_human(self) -> None:
        await self.backend.request_human()
        self.state.update(mode="human", misses=0)
        self._say(HUMAN_HANDOFF)

    def _trusted(self, number: str) -> bool:
        return number in self.state["numbers"] or number in self.state["verified"]

    # -- idle: what does the customer want? ----------------------------------------------------------
    async def _in_idle(self, text: str) -> None:
        st = self.state
        numbers = ex.complaint_numbers(text)
        if numbers and (_ADD.search(text) and not _STATUS.search(text)):
            st["misses"] = 0
            await self._with_number("add_info", numbers[0])
            rest = ex.COMPLAINT_NUMBER.sub("", self.raw)
            rest = re.sub(r"^[\s，,。:：]*(?:补充|追加)(?:一下|信息|材料|说明)?[\s，,。:：]*", "", rest).strip()
            if len(rest) >= 4 and not _ADD.fullmatch(rest):
                if st["mode"] == "add_info":
                    self.said.clear()
                    await self._add(st["target"], rest, None)
                else:
                    st["draft"] = rest          # added once the contact is verified
            return
        if numbers and _RATE.search(text):
            await self._with_number("rate", numbers[0])
            return
        if numbers:
            st["misses"] = 0
            await self._with_number("status", numbers[0])
            return
        if _ADD.search(text) and len(text) <= 12:
            await self._ask_number("add_info")
            return
        if _STATUS.search(text) and len(text) <= 12:
            await self._ask_number("status")
            return
        if _RATE.search(text) and len(text) <= 12:
            if st["numbers"]:
                st.update(mode="rate", target=st["numbers"][-1], misses=0)
                self._say(ASK_RATING, RATING_OPTIONS)
            else:
                await self._ask_number("rate")
            return
        if _START.match(text):
            st.update(mode="collect", slots={}, asking="description", misses=0)
            self._say("好的，我来帮您登记。" + QUESTIONS["description"])
            return
        if ex.is_unclear(text) or len(text) < 5:
            if ex.is_greeting(text) and st["misses"] == 0:
                st["misses"] = 1
                self._say("您好！请问有什么可以帮您？可以直接描述遇到的问题。", MENU)
                return
            self._miss("请直接描述您遇到的问题，或选择下面的服务。", MENU)
            return
        st.update(mode="collect", slots={"description": self.raw}, asking=None, misses=0)
        self._fill(text)
        await self._next_question(prefix="收到，很抱歉给您带来不便。")

    # -- collecting the complaint ---------------------------------------------------------------------
    def _fill(self, text: str) -> None:
        """Take every slot this message gives that is still empty."""
        slots = self.state["slots"]
        found = ex.extract(text)
        contact = found.get("phone") or found.get("email")
        if contact and not slots.get("contact"):
            slots["contact"] = contact
        for key in ("product", "order_no", "when", "wants"):
            if found.get(key) and slots.get(key) is None:
                slots[key] = found[key]

    async def _next_question(self, prefix: str = "") -> None:
        st, slots = self.state, self.state["slots"]
        missing = next((s for s in SLOTS if slots.get(s) is None), None)
        if missing is None:
            st.update(mode="confirm", asking=None, misses=0)
            self._say(prefix + self.summary(), ("确认", "修改", "取消"))
            return
        if st.get("asking") != missing:
            st["misses"] = 0
        st["asking"] = missing
        self._say(prefix + QUESTIONS[missing], OPTIONS.get(missing, ()))

    async def _in_collect(self, text: str) -> None:
        st, slots = self.state, self.state["slots"]
        if _CANCEL.match(text):
            st.update(mode="idle", slots={}, asking=None, misses=0)
            self._say("好的，已取消登记。还有其他可以帮您的吗？", MENU)
            return
        asking = st["asking"] or "description"
        value = self._answer(asking, text)
        if value is not None:
            slots[asking] = value
        before = dict(slots)
        self._fill(text)
        if value is None and slots == before:
            self._miss(RETRY[asking], OPTIONS.get(asking, ()))
            return
        await self._next_question()

    def _answer(self, slot: str, text: str) -> str | None:
        """The value `text` gives for the slot just asked; "" = the customer has none; None = unclear."""
        if slot == "description":
            return None if ex.is_unclear(text) or len(text) < 4 else self.raw
        if slot == "contact":
            found = ex.phones(text) or ex.emails(text)
            return found[0] if found else None
        if slot == "order_no":
            if ex.is_none(text):
                return ""
            return ex.order_number(text, asked=True)
        if slot == "when":
            if ex.is_none(text):
                return ""
            return ex.when(text)
        if slot == "wants":
            found = ex.wants(text)
            if found:
                return found
            return self.raw[:100] if re.match(r"^(?:希望|要求|想要|想|要|请|麻烦)", text) and len(text) >= 3 else None
        if slot == "product":
            if re.fullmatch(r"(?:不确定|不知道|其他|其它|说不清)[。!！\s]*", text):
                return ""
            if ex.is_unclear(text) or _CONFIRM.match(text) or _MODIFY.search(text):
                return None
            short = re.sub(r"^(?:我?(?:买|购买|订|用|办)的是|是|就是)", "", text).strip("。!！ ")
            return short[:64] if 2 <= len(short) <= 30 else ex.product(text)
        return None

    def summary(self) -> str:
        s = self.state["slots"]
        lines = ["请确认以下信息：",
                 f"问题描述：{_short(s.get('description') or '')}",
                 f"产品/服务：{s.get('product') or '未填写'}",
                 f"订单号：{s.get('order_no') or '无'}",
                 f"发生时间：{s.get('when') or '不记得'}",
                 f"您的诉求：{s.get('wants') or '未填写'}",
                 f"联系方式：{s.get('contact')}",
                 "信息无误请点“确认”，需要修改请点“修改”。"]
        return "\n".join(lines)

    async def _in_confirm(self, text: str) -> None:
        st = self.state
        if _CONFIRM.match(text):
            await self._register()
            return
        if _CANCEL.match(text):
            st.update(mode="idle", slots={}, misses=0)
            self._say("好的，已取消登记。还有其他可以帮您的吗？", MENU)
            return
        field_ = _field_named(text)
        if field_:
            await self._edit(field_)
            return
        found = ex.extract(text)
        if found:   # "手机号写错了，是139..." : take the new value and show the summary again
            slots = st["slots"]
            if found.get("phone") or found.get("email"):
                slots["contact"] = found.get("phone") or found.get("email")
            for key in ("product", "order_no", "when", "wants"):
                slots[key] = found.get(key, slots.get(key))
            self._say(self.summary(), ("确认", "修改", "取消"))
            return
        if _MODIFY.search(text):
            st.update(mode="edit", misses=0)
            self._say("请问要修改哪一项？", EDIT_CHOICES)
            return
        self._miss("请回复“确认”提交，或回复“修改”更改信息。", ("确认", "修改", "取消"))

    async def _in_edit(self, text: str) -> None:
        field_ = _field_named(text)
        if field_ is None:
            self._miss("请选择要修改的项目。", EDIT_CHOICES)
            return
        await self._edit(field_)

    async def _edit(self, slot: str) -> None:
        st = self.state
        st["slots"][slot] = None
        st.update(mode="collect", asking=slot, misses=0)
        self._say("好的。" + QUESTIONS[slot], OPTIONS.get(slot, ()))

    async def _register(self) -> None:
        st = self.state
        done = await self.backend.register(dict(st["slots"]))
        contact = st["slots"].get("contact")
        st.update(slots={}, asking=None, misses=0)
        if done is None:
            st["mode"] = "idle"
            self._say("您的投诉已提交，正在登记中，投诉编号生成后会在这里告诉您。")
            return
        st["numbers"].append(done.number)
        st["told"].append(done.number)
        st["contact"] = contact
        text = (f"已为您登记投诉，编号：{done.number}。\n我们将在{done.promise}内（{done.due} 前）与您联系，"
                "请保留编号以便查询。")
        if done.urgency == "P0":
            text += "\n您反映的情况紧急，已通知主管优先处理。"
        self._say(text)
        st.update(mode="rate", target=done.number)
        self._say(ASK_RATING, RATING_OPTIONS)

    # -- status, additions, ratings: first the number, then (if not ours) the contact -----------------
    async def _ask_number(self, purpose: str) -> None:
        st = self.state
        st.update(mode="need_number", purpose=purpose, misses=0)
        options = tuple(st["numbers"][-3:])
        self._say("请提供投诉编号（例如 20261123-LG-0001）。", options)

    async def _in_need_number(self, text: str) -> None:
        numbers = ex.complaint_numbers(text)
        if not numbers:
            if _CANCEL.match(text):
                self.state.update(mode="idle", misses=0)
                self._say("好的。还有其他可以帮您的吗？", MENU)
                return
            self._miss("没有找到投诉编号，编号格式如 20261123-LG-0001，请再发一次。")
            return
        await self._with_number(self.state["purpose"], numbers[0])

    async def _with_number(self, purpose: str, number: str) -> None:
        st = self.state
        st.update(purpose=purpose, target=number, misses=0)
        if self._trusted(number):
            await self._proceed()
            return
        st["mode"] = "need_contact"
        self._say("为保护您的隐私，请提供登记该投诉时留下的手机号或邮箱。")

    async def _in_need_contact(self, text: str) -> None:
        st = self.state
        found = ex.phones(text) or ex.emails(text)
        if not found:
            if _CANCEL.match(text):
                st.update(mode="idle", misses=0)
                self._say("好的。还有其他可以帮您的吗？", MENU)
                return
            self._miss(RETRY["contact"])
            return
        if not await self.backend.verify(st["target"], found[0]):
            self._miss("投诉编号与联系方式不匹配，请检查后再输入一次联系方式。")
            return
        st["verified"].append(st["target"])
        st["contact"] = found[0]
        await self._proceed()

    async def _proceed(self) -> None:
        st = self.state
        number, purpose = st["target"], st["purpose"]
        st["misses"] = 0
        if purpose == "status":
            found = await self.backend.status(number)
            st["mode"] = "idle"
            if found is None:
                self._say(f"没有查到投诉 {number}，请核对编号。", MENU)
                return
            status, due = found
            text = f"投诉 {number} 当前状态：{STATUS_LABELS.get(status, status)}。"
            if due and status in ("registered", "assigned"):
                text += f"我们将在 {due} 前与您联系。"
            self._say(text + "还有其他可以帮您的吗？", MENU)
        elif purpose == "add_info" and st.get("draft"):
            draft, st["draft"] = st["draft"], None
            await self._add(number, draft, None)
        elif purpose == "add_info":
            st["mode"] = "add_info"
            self._say(f"请发送要补充到投诉 {number} 的文字说明或照片。")
        elif purpose == "rate":
            st["mode"] = "rate"
            self._say(ASK_RATING, RATING_OPTIONS)

    async def _in_add_info(self, text: str) -> None:
        st = self.state
        if _CANCEL.match(text):
            st.update(mode="idle", misses=0)
            self._say("好的。还有其他可以帮您的吗？", MENU)
            return
        if ex.is_unclear(text):
            self._miss(f"请发送要补充到投诉 {st['target']} 的文字说明或照片。")
            return
        await self._add(st["target"], self.raw, None)

    async def _add(self, number: str, text: str, photo: Photo | None) -> None:
        st = self.state
        ok = await self.backend.add_info(number, text, photo)
        st.update(mode="idle", misses=0)
        if ok:
            what = "照片" if photo else "补充信息"
            self._say(f"已将您的{what}添加到投诉 {number}，处理人员会看到。还需要补充其他内容吗？",
                      ("继续补充", "没有了"))
            st.update(mode="after_add", target=number)
        else:
            self._say("抱歉，补充没有成功，请稍后再试，或转人工处理。", ("转人工",))

    async def _in_after_add(self, text: str) -> None:
        st = self.state
        if re.match(r"^(?:继续|还有|是|要)", text):
            st.update(mode="add_info", misses=0)
            self._say(f"请发送要补充到投诉 {st['target']} 的文字说明或照片。")
        elif re.match(r"^(?:没有|没了|不用|不需要|没有了|好的|谢谢)", text):
            st.update(mode="idle", misses=0)
            self._say("好的，感谢您的补充。", MENU)
        else:
            st.update(mode="idle")
            await self._in_idle(text)

    async def _in_rate(self, text: str) -> None:
        st = self.state
        m = _SCORE.match(text)
        if m:
            score = int(m.group(1)) if m.group(1) else _CN_DIGIT[m.group(2)]
            ok = await self.backend.rate(st["target"], score)
            st.update(mode="idle", misses=0)
            self._say("感谢您的评价！还有其他可以帮您的吗？" if ok else "抱歉，评价没有保存成功，请稍后再试。", MENU)
            return
        if _SKIP.match(text):
            st.update(mode="idle", misses=0)
            self._say("好的。还有其他可以帮您的吗？", MENU)
            return
        if re.fullmatch(r"\d+\s*分?", text):
            self._miss("请打1到5分。", RATING_OPTIONS)
            return
        st.update(mode="idle")        # the customer moved on: treat it as a new request
        await self._in_idle(text)

    async def _in_offer_human(self, text: str) -> None:
        st = self.state
        if _YES.match(text) or _HUMAN.search(text):
            await self._to_human()
            return
        resume = st.get("resume") or "idle"
        st.update(mode=resume, resume=None, misses=0)
        if _NO.match(text) or ex.is_unclear(text):
            if resume == "collect":
                self._say("好的，我们继续。" + QUESTIONS[st["asking"] or "description"], OPTIONS.get(st["asking"], ()))
            elif resume == "confirm":
                self._say(self.summary(), ("确认", "修改", "取消"))
            else:
                st["mode"] = "idle"
                self._say("好的。请问有什么可以帮您？", MENU)
            return
        await getattr(self, f"_in_{resume}", self._in_idle)(text)


def _field_named(text: str) -> str | None:
    t = text.strip()
    for slot, words in (("description", ("问题描述", "描述", "问题")), ("product", ("产品", "服务", "商品")),
                        ("order_no", ("订单",)), ("when", ("时间", "日期", "什么时候")),
                        ("wants", ("诉求", "要求", "处理方式")), ("contact", ("联系方式", "手机", "电话", "邮箱"))):
        if any(w in t for w in words) and len(t) <= 12:
            return slot
    return None


def _short(text: str, limit: int = 120) -> str:
    return text if len(text) <= limit else text[:limit] + "…"
