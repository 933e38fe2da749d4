from datetime import datetime, timezone

from sqlalchemy import func, select

from connectors.base import AcceptResult, InboundMessage, Sender
from intake.inbox import Inbox
from models import InboxItem


def _msg(external_id="m-1", text="快递三天没到"):
    return InboundMessage(channel="email", external_id=external_id, sender=Sender("a@example.com"),
                          text=text, received_at=datetime.now(timezone.utc), raw=b"raw bytes")


async def test_accept_is_new_then_duplicate(sessionmaker):
    inbox = Inbox(sessionmaker)
    assert await inbox.accept(_msg()) is AcceptResult.NEW
    assert await inbox.accept(_msg()) is AcceptResult.DUPLICATE
    async with sessionmaker() as s:
        assert await s.scalar(select(func.count()).select_from(InboxItem)) == 1


async def test_accepted_message_round_trips_with_raw(sessionmaker):
    inbox = Inbox(sessionmaker)
    await inbox.accept(_msg(text="电话13812345678"))
    async with sessionmaker() as s:
        item = await s.scalar(select(InboxItem))
    assert item.raw == b"raw bytes"
    assert item.message["text"] == "电话13812345678"
    assert item.status == "pending"
    assert await inbox.outcome("email", "m-1") == ("pending", None)
    assert await inbox.outcome("email", "nope") is None


async def test_concurrent_accepts_commit_together_and_a_bad_message_fails_alone(sessionmaker):
    import asyncio
    inbox = Inbox(sessionmaker)
    good = [_msg(f"g{i % 150}") for i in range(200)]          # 50 of them are redeliveries
    bad = InboundMessage(channel="email", external_id="bad", sender=Sender("a@example.com"), text="x",
                         received_at=datetime.now(timezone.utc), raw="not bytes")
    results = await asyncio.gather(*(inbox.accept(m) for m in good[:100] + [bad] + good[100:]),
                                   return_exceptions=True)
    assert isinstance(results[100], Exception) and "encoding" in str(results[100])
    ok = results[:100] + results[101:]
    assert ok.count(AcceptResult.NEW) == 150 and ok.count(AcceptResult.DUPLICATE) == 50
    async with sessionmaker() as s:
        assert await s.scalar(select(func.count()).select_from(InboxItem)) == 150


async def test_a_caller_that_gives_up_does_not_lose_the_message(sessionmaker):
    import asyncio
    inbox = Inbox(sessionmaker)
    first = asyncio.create_task(inbox.accept(_msg("given-up")))
    await asyncio.sleep(0)              # queued for the next group commit
    first.cancel()
    try:
        await first
    except asyncio.CancelledError:
        pass
    # The source will deliver it again: it was committed all the same, once.
    assert await inbox.accept(_msg("given-up")) is AcceptResult.DUPLICATE
    async with sessionmaker() as s:
        assert await s.scalar(select(func.count()).select_from(InboxItem)) == 1


async def test_a_message_and_its_redelivery_in_one_group_are_new_then_duplicate(sessionmaker):
    import asyncio
    inbox = Inbox(sessionmaker)
    results = await asyncio.gather(*(inbox.accept(_msg("twice")) for _ in range(2)))
    assert sorted(r.value for r in results) == ["duplicate", "new"]
