from __future__ import annotations

from sqlalchemy import select, tuple_

from connectors.base import MessageKind
from intake.pipeline import Context
from models import Customer, CustomerIdentity
from models.crypto import mask, normalize_identity

# Channels whose sender handle is itself an identity of its own kind.
_HANDLE_IS_CONTACT = {"email": "email"}
_NO_HANDLE_IDENTITY = {"phone", "walk_in"}


def identities_of(ctx: Context) -> list[tuple[str, str]]:
    msg, found = ctx.msg, []
    kind = _HANDLE_IS_CONTACT.get(msg.channel, msg.channel)
    if msg.channel not in _NO_HANDLE_IDENTITY and msg.sender.handle:
        found.append((kind, msg.sender.handle))
    if msg.sender.email:
        found.append(("email", msg.sender.email))
    if msg.sender.phone:
        found.append(("phone", msg.sender.phone))
    unique: dict[tuple[str, str], tuple[str, str]] = {}
    for k, v in found:
        if normalize_identity(k, v):
            unique.setdefault((k, normalize_identity(k, v)), (k, v))
    return list(unique.values())


class LinkCustomer:
    """Same phone, email or channel handle = same customer, whatever the channel."""
    name = "link_customer"

    async def run(self, ctx: Context) -> None:
        ring, session, msg = ctx.services.keyring, ctx.session, ctx.msg
        ctx.identities = identities_of(ctx)
        hashed = {(k, ring.blind_index(k, v)): (k, v) for k, v in ctx.identities}
        known = (await session.execute(
            select(CustomerIdentity.kind, CustomerIdentity.value_hash, CustomerIdentity.customer_id)
            .where(tuple_(CustomerIdentity.kind, CustomerIdentity.value_hash).in_(list(hashed)))
            .order_by(CustomerIdentity.customer_id))).all() if hashed else []
        if known:
            ctx.customer = await session.get(Customer, known[0].customer_id)
        elif msg.kind is MessageKind.MESSAGE and hashed:
            ctx.customer = Customer(name=msg.sender.name, phone=msg.sender.phone, email=msg.sender.email,
                                    region=msg.meta.get("region"))
            session.add(ctx.customer)
            await session.flush()
        if ctx.customer is None:
            ctx.note(self.name, "no customer", reason="unknown sender of a non-message" if hashed else "no contact")
            return
        self._fill_missing(ctx)
        have = {(r.kind, r.value_hash) for r in known if r.customer_id == ctx.customer.id}
        for key, (kind, value) in hashed.items():
            if key not in have and all(r.kind != key[0] or r.value_hash != key[1] for r in known):
                session.add(CustomerIdentity(customer_id=ctx.customer.id, kind=kind, value_hash=key[1], value=value))
        ctx.note(self.name, "linked" if known else "new customer", customer_id=ctx.customer.id,
                 identities=[f"{k}:{mask(v)}" for k, v in ctx.identities])

    @staticmethod
    def _fill_missing(ctx: Context) -> None:
        c, s = ctx.customer, ctx.msg.sender
        if s.name and not c.name:
            c.name = s.name
        if s.phone and not c.phone:
            c.phone = s.phone
        if s.email and not c.email:
            c.email = s.email
        if ctx.msg.meta.get("region") and not c.region:
            c.region = ctx.msg.meta["region"]
