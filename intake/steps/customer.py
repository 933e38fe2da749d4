from __future__ import annotations

from connectors.base import InboundMessage, MessageKind
from intake.batch import identity_keys_of
from intake.pipeline import Context
from models import Customer
from models.crypto import mask, normalize_identity

# Channels whose sender handle is itself an identity of its own kind.
_HANDLE_IS_CONTACT = {"email": "email"}
_NO_HANDLE_IDENTITY = {"phone", "walk_in"}


def identities_of(msg: InboundMessage) -> list[tuple[str, str]]:
    """(kind, value) pairs that identify the sender: channel handle, e-mail, phone."""
    found = []
    if msg.channel not in _NO_HANDLE_IDENTITY and msg.sender.handle:
        found.append((_HANDLE_IS_CONTACT.get(msg.channel, msg.channel), msg.sender.handle))
    if msg.sender.email:
        found.append(("email", msg.sender.email))
    if msg.sender.phone:
        found.append(("phone", msg.sender.phone))
    unique: dict[tuple[str, str], tuple[str, str]] = {}
    for kind, value in found:
        if normalize_identity(kind, value):
            unique.setdefault((kind, normalize_identity(kind, value)), (kind, value))
    return list(unique.values())


class LinkCustomer:
    """Same phone, email or channel handle = same customer, whatever the channel."""
    name = "link_customer"

    async def run(self, ctx: Context) -> None:
        msg, known_map = ctx.msg, ctx.batch.customers
        ctx.identities = identities_of(msg)
        keys = identity_keys_of(ctx.services.keyring, ctx.identities)
        known = [known_map[k] for k in keys if k in known_map]
        if known:
            # The longest-known customer wins when identities point at several.
            ctx.customer = min(known, key=lambda c: (c.id is None, c.id or 0))
        elif msg.kind is MessageKind.MESSAGE and keys:
            ctx.customer = Customer(name=msg.sender.name, phone=msg.sender.phone, email=msg.sender.email,
                                    region=msg.meta.get("region"))
            ctx.session.add(ctx.customer)
        if ctx.customer is None:
            ctx.note(self.name, "no customer", reason="unknown sender of a non-message" if keys else "no contact")
            return
        self._fill_missing(ctx)
        for key, (kind, value) in zip(keys, ctx.identities):
            if key not in known_map:
                ctx.batch.identities.append((ctx.customer, kind, key[1], value))
                known_map[key] = ctx.customer
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
