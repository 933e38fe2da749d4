"""The mail parser over real, hard and malformed messages, and the rules it applies."""
from __future__ import annotations

import base64
import hashlib
import io
import json
import re
from pathlib import Path

import pytest

from connectors.base import MessageKind
from connectors.email import mime
from connectors.email.cli import main_parse
from connectors.email.mime import parse
from connectors.email.msgid import make_message_id, verify

DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "mail"
ALL_FILES = sorted(p for p in DATA.rglob("*") if p.is_file())
TREC = sorted((DATA / "trec06c").glob("*.eml"))
CJK = re.compile(r"[\u4e00-\u9fff]")


def test_the_mail_corpus_is_there():
    assert len(ALL_FILES) > 300 and len(TREC) == 100


@pytest.mark.parametrize("path", ALL_FILES, ids=lambda p: str(p.relative_to(DATA)))
def test_every_corpus_message_is_read_or_quarantined_with_a_reason(path):
    raw = path.read_bytes()
    pm = parse(raw, attachment_limit=1024 * 1024)
    msg = pm.to_inbound(raw)
    assert msg.raw == raw                      # the raw message is always kept
    assert msg.external_id
    json.dumps(pm.as_json(), ensure_ascii=False)
    if pm.parse_error:
        assert msg.meta["parse_error"] == pm.parse_error and len(pm.parse_error) > 5
    else:
        assert "@" in pm.sender_address and msg.sender.email == pm.sender_address
        assert pm.kind in (MessageKind.MESSAGE, MessageKind.AUTO_REPLY, MessageKind.BOUNCE)
        assert msg.reply_to["address"]
    for a in pm.attachments:
        assert a.name and a.content_type and a.size >= 0 and len(a.sha256) == 64


@pytest.mark.parametrize("path", TREC, ids=lambda p: p.name)
def test_trec06c_chinese_comes_out_readable(path):
    pm = parse(path.read_bytes())
    assert pm.parse_error is None
    assert CJK.search(pm.text), pm.text[:200]
    assert "\ufffd" not in pm.text and "\ufffd" not in pm.subject
    assert "=?" not in pm.subject                     # every encoded word decoded
    assert any(d.used == "gb18030" for d in pm.charsets)


def test_a_subject_whose_encoded_word_was_broken_across_lines_is_still_decoded():
    pm = parse((DATA / "trec06c" / "2491.eml").read_bytes())
    assert pm.subject.startswith("● BE:Oracle Consultant") and "上海市" in pm.subject
    assert pm.text.startswith("【 以下文字转载自")     # the body is not the rest of the headers


def test_raw_8bit_gb18030_headers_are_decoded():
    pm = parse((DATA / "flanker" / "pr122_gb2312" / "charset-gb2312.eml").read_bytes())
    assert pm.sender_name == "腾讯企业邮箱"
    assert pm.subject == "提示：您的企业成员暂时无法登录邮件客户端"
    assert pm.html_only and "尊敬的管理员" in pm.text and "<" not in pm.text


def test_an_enclosure_nested_a_thousand_deep_is_not_expanded(monkeypatch):
    calls = []
    original = mime._Walker.walk
    monkeypatch.setattr(mime._Walker, "walk", lambda self, part, depth: (calls.append(1), original(self, part, depth)))
    pm = parse((DATA / "flanker" / "enclosed-endless.eml").read_bytes())
    assert pm.parse_error is None and pm.text == "Hello"
    assert [a.content_type for a in pm.attachments] == ["message/rfc822"]
    assert len(calls) < 10        # a naive parse walks 3 043 parts


def _mail(headers: str, body: bytes) -> bytes:
    return headers.strip().replace("\n", "\r\n").encode() + b"\r\n\r\n" + body


def test_gb2312_label_is_read_as_gb18030():
    text = "朱镕基与喆字都不在GB2312里"        # 镕 and 喆 are GBK/GB18030 only
    raw = _mail("From: a@example.cn\nSubject: x\nContent-Type: text/plain; charset=gb2312", text.encode("gb18030"))
    pm = parse(raw)
    assert pm.text == text
    assert pm.charsets[-1].as_dict() == {"where": "body text/plain", "declared": "gb2312", "used": "gb18030",
                                         "how": "superset"}


@pytest.mark.parametrize("label", ["charset=", 'charset=""', "charset=X-UNKNOWN", "charset=bogus-42", ""])
def test_missing_empty_or_unknown_charsets_are_detected(label):
    text = "您好，我在贵店购买的电冰箱送货时外壳有明显划痕，要求退换货。"
    for encoded in (text.encode("gb18030"), text.encode("utf-8")):
        ctype = f"Content-Type: text/plain; {label}" if label else "Content-Type: text/plain"
        pm = parse(_mail(f"From: a@example.cn\nSubject: s\n{ctype}", encoded))
        assert pm.text == text
        assert pm.charsets[-1].how == "detected"


def test_a_wrong_declared_charset_falls_back_to_detection():
    text = "快递丢件三天没人处理"
    pm = parse(_mail("From: a@example.cn\nContent-Type: text/plain; charset=utf-8", text.encode("gbk")))
    assert pm.text == text and pm.charsets[-1].used == "gb18030"


def test_x_unknown_fixture_is_readable():
    pm = parse((DATA / "ruby_mail" / "plain_emails" / "raw_email10.eml").read_bytes())
    assert pm.parse_error is None and pm.text and "\ufffd" not in pm.text


def test_encoded_words_split_inside_a_character_are_joined_before_decoding():
    data = "退款申请".encode("gb18030")
    first, second = base64.b64encode(data[:3]).decode(), base64.b64encode(data[3:]).decode()
    raw = _mail(f"From: =?utf-8?B?{base64.b64encode('张三'.encode()).decode()}?= <z@example.cn>\n"
                f"Subject: =?gb2312?B?{first}?=\n =?gb2312?B?{second}?= [20261122-CS-0001]", b"hi")
    pm = parse(raw)
    assert pm.subject == "退款申请 [20261122-CS-0001]"
    assert pm.sender_name == "张三"
    assert pm.thread_refs == ["20261122-CS-0001"]


def test_html_only_mail_becomes_clean_text_and_keeps_the_history_in_full_text():
    html = ("<html><head><style>p{color:red}</style></head><body><div>您好，<br>订单 123 的退款还没到账。</div>"
            "<div class='gmail_signature'>李四 | 某某公司</div>"
            "<div class='gmail_quote'>在 2026年11月20日 写道：<blockquote>上一封邮件的内容</blockquote></div>"
            "<script>alert(1)</script></body></html>")
    raw = _mail("From: l@example.cn\nSubject: re\nContent-Type: text/html; charset=utf-8", html.encode())
    pm = parse(raw)
    assert pm.html_only
    assert pm.text == "您好，\n订单 123 的退款还没到账。"
    assert "上一封邮件的内容" in pm.full_text and "alert" not in pm.full_text and "color" not in pm.full_text
    msg = pm.to_inbound(raw)
    assert msg.raw == raw and "上一封邮件的内容" in msg.meta["full_text"]


@pytest.mark.parametrize("history", [
    "------------------ 原始邮件 ------------------\n发件人: 客服\n",
    "在 2026年11月22日 10:00，客服中心 <cs@example.com> 写道：\n> 您的投诉已受理\n",
    "On Sun, Nov 22, 2026 at 10:00 AM Service <cs@example.com> wrote:\n> ok\n",
    "-----Original Message-----\nFrom: cs@example.com\n",
    "发件人: 客服中心 <cs@example.com>\n发送时间: 2026年11月22日 10:00\n收件人: 我\n主题: 受理\n",
    "",
])
def test_quoted_history_and_signature_are_trimmed_from_plain_text(history):
    body = f"洗衣机又坏了，请尽快派人上门。\n\n--\n王五\n电话 138\n\n{history}\n发自我的iPhone"
    pm = parse(_mail("From: w@example.cn\nContent-Type: text/plain; charset=utf-8", body.encode()))
    assert pm.text == "洗衣机又坏了，请尽快派人上门。"
    assert pm.trimmed and "王五" in pm.full_text


def test_a_message_that_is_all_quote_keeps_its_text():
    body = "> 原来的内容\n> 第二行"
    pm = parse(_mail("From: w@example.cn\nContent-Type: text/plain; charset=utf-8", body.encode()))
    assert pm.text == body and not pm.trimmed


def test_attachments_keep_name_type_size_and_sha256_and_respect_the_limit():
    small, big = b"%PDF-1.4 small", bytes(range(256)) * 40
    name = "=?gb2312?B?" + base64.b64encode("发票.pdf".encode("gb2312")).decode() + "?="
    raw = _mail(
        "From: a@example.cn\nSubject: s\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=XX",
        ("--XX\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n见附件\r\n"
         f"--XX\r\nContent-Type: application/pdf; name=\"{name}\"\r\nContent-Transfer-Encoding: base64\r\n"
         f"Content-Disposition: attachment; filename=\"{name}\"\r\n\r\n{base64.b64encode(small).decode()}\r\n"
         "--XX\r\nContent-Type: image/png\r\nContent-Disposition: attachment; filename*=utf-8''%E7%85%A7%E7%89%87.png\r\n"
         f"Content-Transfer-Encoding: base64\r\n\r\n{base64.b64encode(big).decode()}\r\n--XX--\r\n").encode())
    pm = parse(raw, attachment_limit=1000)
    pdf, png = pm.attachments
    assert (pdf.name, pdf.content_type, pdf.size, pdf.sha256, pdf.data) == (
        "发票.pdf", "application/pdf", len(small), hashlib.sha256(small).hexdigest(), small)
    assert (png.name, png.size, png.sha256, png.data) == ("照片.png", len(big), hashlib.sha256(big).hexdigest(), None)
    assert "1000" in png.note
    assert pm.to_inbound(raw).meta["attachments_over_limit"] == ["照片.png"]
    assert pm.text == "见附件"


@pytest.mark.parametrize("header", [
    "Auto-Submitted: auto-replied", "Auto-Submitted: auto-generated", "X-Autoreply: yes", "X-Autorespond: on",
    "Precedence: bulk", "Precedence: junk", "Precedence: list", "Precedence: auto_reply",
    "X-Auto-Response-Suppress: All", "List-Id: <news.example.com>", "List-Unsubscribe: <mailto:u@example.com>",
    "Return-Path: <>", "Subject: 自动回复: 您的投诉已受理", "Subject: Automatic reply: hello",
])
def test_auto_replies_are_recognised(header):
    pm = parse(_mail(f"From: someone@example.cn\n{header}", b"I am away"))
    assert pm.kind is MessageKind.AUTO_REPLY and pm.kind_reasons


@pytest.mark.parametrize("sender", ["MAILER-DAEMON@mx.example.com", "postmaster@example.com"])
def test_daemon_senders_are_auto_replies(sender):
    assert parse(_mail(f"From: {sender}\nSubject: hi", b"notice")).kind is MessageKind.AUTO_REPLY


def test_a_person_writing_is_a_message():
    pm = parse(_mail("From: someone@example.cn\nAuto-Submitted: no\nPrecedence: normal\nSubject: 投诉", b"hello"))
    assert pm.kind is MessageKind.MESSAGE and pm.kind_reasons == []


def test_delivery_status_reports_are_bounces_and_delays_are_not():
    assert parse((DATA / "flanker" / "bounce" / "zed.eml").read_bytes()).kind is MessageKind.BOUNCE
    delayed = parse((DATA / "flanker" / "bounce" / "no-mx.eml").read_bytes())
    assert delayed.kind is MessageKind.AUTO_REPLY and "not a failure" in delayed.kind_reasons[0]
    receipt = parse((DATA / "flanker" / "disposition-notification.eml").read_bytes())
    assert receipt.kind is MessageKind.AUTO_REPLY


def _bounce_of(original_id: str) -> bytes:
    return _mail(
        "From: MAILER-DAEMON@mx.example.net\nTo: cs@kesu.example\nSubject: Undelivered Mail Returned to Sender\n"
        "Auto-Submitted: auto-replied\nMIME-Version: 1.0\n"
        "Content-Type: multipart/report; report-type=delivery-status; boundary=B",
        ("--B\r\nContent-Type: text/plain\r\n\r\nThe mail system could not deliver your message.\r\n"
         "--B\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.net\r\n\r\n"
         "Final-Recipient: rfc822; gone@example.cn\r\nAction: failed\r\nStatus: 5.1.1\r\n"
         "Diagnostic-Code: smtp; 550 5.1.1 user unknown\r\n"
         "--B\r\nContent-Type: message/rfc822\r\n\r\n"
         f"From: cs@kesu.example\r\nTo: gone@example.cn\r\nMessage-ID: {original_id}\r\nSubject: [x]\r\n\r\nbody\r\n"
         "--B--\r\n").encode())


def test_a_bounce_of_our_message_names_its_complaint():
    ours = make_message_id("20261122-CS-0007", "kesu.example")
    pm = parse(_bounce_of(ours))
    assert pm.kind is MessageKind.BOUNCE
    assert pm.thread_refs == ["20261122-CS-0007"]
    assert pm.bounce["recipients"] == ["gone@example.cn"] and pm.bounce["status"] == ["5.1.1"]
    assert "550 5.1.1" in pm.bounce["diagnostic"][0]


def test_a_bounce_with_a_forged_id_names_nothing():
    forged = make_message_id("20261122-CS-0007", "kesu.example").replace("20261122-CS-0007", "20261122-CS-0008")
    pm = parse(_bounce_of(forged))
    assert pm.kind is MessageKind.BOUNCE and pm.thread_refs == []


def test_our_signed_reference_comes_before_the_subject_number():
    ours = make_message_id("20261122-CS-0001", "kesu.example")
    raw = _mail(f"From: c@example.cn\nSubject: Re: [20261122-CS-0002] 受理\nIn-Reply-To: {ours}\n"
                f"References: <a@x> {ours}", b"still broken")
    pm = parse(raw)
    assert pm.thread_refs == ["20261122-CS-0001", "20261122-CS-0002"]
    assert "signature verified" in pm.thread_via[0]


def test_a_forged_reference_is_not_trusted():
    ours = make_message_id("20261122-CS-0001", "kesu.example")
    forged = ours.replace("20261122-CS-0001", "20261122-CS-0099")
    pm = parse(_mail(f"From: c@example.cn\nSubject: 你好\nIn-Reply-To: {forged}", b"x"))
    assert pm.thread_refs == [] and "does not verify" in pm.thread_via[0]
    assert verify(forged) == (False, None) and verify(ours) == (True, "20261122-CS-0001")


def test_full_width_brackets_in_the_subject_also_name_the_complaint():
    pm = parse(_mail("From: c@example.cn\nSubject: 回复：【20261122-CS-0003】", b"x"))
    assert pm.thread_refs == ["20261122-CS-0003"]


def test_our_own_message_coming_back_is_recognised():
    ours = make_message_id("20261122-CS-0001", "kesu.example")
    assert parse(_mail(f"From: cs@kesu.example\nMessage-ID: {ours}", b"x")).ours
    assert parse(_mail("From: CS@Kesu.Example\nMessage-ID: <a@b>", b"x"), own_addresses=frozenset({"cs@kesu.example"})).ours
    assert not parse(_mail("From: c@example.cn\nMessage-ID: <a@b>", b"x")).ours


def test_external_id_is_the_message_id_or_a_digest_of_the_raw():
    with_id = parse(_mail("From: c@example.cn\nMessage-ID:  <abc@example.cn> ", b"x"))
    assert with_id.external_id == "<abc@example.cn>"
    raw = _mail("From: c@example.cn", b"no id")
    assert parse(raw).external_id == "sha256:" + hashlib.sha256(raw).hexdigest()


def test_the_reply_path_carries_threading_data():
    raw = _mail("From: 张三 <z@example.cn>\nReply-To: zs@example.cn\nMessage-ID: <m2@example.cn>\n"
                "References: <m0@example.cn> <m1@example.cn>\nSubject: 投诉", b"x")
    msg = parse(raw).to_inbound(raw)
    assert msg.reply_to == {"address": "zs@example.cn", "name": "张三", "message_id": "<m2@example.cn>",
                            "references": ["<m0@example.cn>", "<m1@example.cn>", "<m2@example.cn>"],
                            "subject": "投诉"}
    assert msg.sender.handle == "z@example.cn" and msg.channel == "email"


@pytest.mark.parametrize("raw, reason", [
    (b"", "empty"), (b"\r\n\r\n  \r\n", "empty"),
    (b"just some text without any header\r\nmore\r\n", "headers"),
    (b"Subject: no sender at all\r\n\r\nbody", "sender"),
])
def test_what_cannot_be_read_is_quarantined_with_the_reason(raw, reason):
    pm = parse(raw)
    assert reason in pm.parse_error
    assert pm.to_inbound(raw).meta["parse_error"] == pm.parse_error


def test_cli_prints_one_json_object_per_file(tmp_path):
    bad = tmp_path / "bad.eml"
    bad.write_bytes(b"")
    good = DATA / "trec06c" / "2491.eml"
    out = io.StringIO()
    status = main_parse([str(good), str(bad), str(tmp_path / "missing.eml")], True, out=out)
    lines = [json.loads(x) for x in out.getvalue().splitlines()]
    assert status == 2 and [x["file"] for x in lines] == [str(good), str(bad), str(tmp_path / "missing.eml")]
    assert lines[0]["error"] is None and lines[0]["sender"]["address"] == "kong@ccert.edu.cn"
    assert "上海市" in lines[0]["subject"] and lines[0]["charsets"] and lines[0]["kind"] == "auto_reply"
    assert lines[1]["error"] == "empty message"
    assert "cannot read" in lines[2]["error"]
    human = io.StringIO()
    assert main_parse([str(good)], False, out=human) == 0 and "上海市" in human.getvalue()
