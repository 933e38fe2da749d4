"""The `kesu` command line."""
from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from datetime import datetime, timezone

from .settings import Settings, SettingsError, load_settings


def _print_json(data) -> None:
    print(json.dumps(data, ensure_ascii=False, indent=None, default=str))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="kesu", description="customer complaint intake and handling")
    parser.add_argument("--config", help="path of kesu.toml (default: $KESU_CONFIG)")
    parser.add_argument("--log-level", default="INFO")
    sub = parser.add_subparsers(dest="command", required=True)

    sub.add_parser("serve", help="run the daemon (migrates, ensures a model, then serves)")
    sub.add_parser("migrate", help="apply database migrations")
    p = sub.add_parser("work", help="run only the intake worker (more processes share the work on PostgreSQL)")
    p.add_argument("--until-empty", action="store_true", help="exit when no item is pending")
    p = sub.add_parser("classify", help="print the classifier's suggestion for a text as JSON")
    p.add_argument("text")

    p = sub.add_parser("complaint", help="complaints").add_subparsers(dest="action", required=True)
    add = p.add_parser("add", help="register a phone complaint from the shell")
    add.add_argument("--text", required=True)
    add.add_argument("--name")
    add.add_argument("--phone")
    add.add_argument("--email")
    add.add_argument("--region")
    add.add_argument("--product")
    add.add_argument("--order-no")
    add.add_argument("--channel", default="phone", choices=["phone", "walk_in"])

    p = sub.add_parser("agent", help="agents").add_subparsers(dest="action", required=True)
    add = p.add_parser("add", help="create an agent; prints its id and a one-time API token")
    add.add_argument("--name", required=True)
    add.add_argument("--role", required=True, choices=["agent", "supervisor", "manager", "admin"])
    add.add_argument("--department")
    add.add_argument("--password", help="console password (else the agent uses the API token only)")

    p = sub.add_parser("train", help="retrain on the labelled data plus agents' reviews; promote if not worse")
    p.add_argument("--no-progress", action="store_true")
    p = sub.add_parser("evaluate", help="score a model on the held-out split or a CSV")
    p.add_argument("--model")
    p.add_argument("--data")
    p.add_argument("--json", action="store_true")
    p = sub.add_parser("model", help="model versions").add_subparsers(dest="action", required=True)
    p.add_parser("list")
    use = p.add_parser("use")
    use.add_argument("version")
    p.add_parser("ensure", help="train a default model if there is none")

    p = sub.add_parser("mail", help="e-mail tools").add_subparsers(dest="action", required=True)
    parse = p.add_parser("parse", help="show what kesu reads from raw messages")
    parse.add_argument("files", nargs="+")
    parse.add_argument("--json", action="store_true")

    p = sub.add_parser("report", help="the monthly complaint report (default: last month)")
    p.add_argument("--month", help="YYYY-MM (Beijing time); default: the previous month")
    p.add_argument("--format", default="json", choices=["json", "xlsx", "html"])
    p.add_argument("--out", help="write to this file (required for xlsx); default: standard output")
    p.add_argument("--keep", action="store_true", help="also keep it as the month's report and notify managers")
    p.add_argument("--fresh", action="store_true", help="recompute even if the month's report was kept")
    p = sub.add_parser("alerts", help="spike alerts (a category or product rising suddenly)")
    p.add_argument("--since", help="YYYY-MM-DD")
    p.add_argument("--check", action="store_true", help="run the spike check for yesterday and today first")
    p.add_argument("--day", help="with --check: check this day (YYYY-MM-DD) instead")
    p = sub.add_parser("archive", help="export complaints closed before a date to a compressed archive file")
    p.add_argument("--before", help="YYYY-MM-DD: complaints closed before this day (outside the retention period)")
    p.add_argument("--out", help="archive file to write (e.g. kesu-archive-2023.jsonl.gz)")
    p.add_argument("--inspect", metavar="FILE", help="verify an archive and print its manifest and row counts")
    p.add_argument("--decrypt", action="store_true", help="with --inspect: print every row, personal data decrypted")
    p = sub.add_parser("purge", help="anonymise complaints closed before a date (statistics are kept)")
    p.add_argument("--before", required=True, help="YYYY-MM-DD, outside the retention period")
    p.add_argument("--yes", action="store_true", help="do it; without --yes only count what would be purged")
    p = sub.add_parser("customer", help="a customer's personal data").add_subparsers(dest="action", required=True)
    for name, text in (("export", "print everything kept about a customer as JSON"),
                       ("erase", "erase a customer: anonymise their complaints, delete their contact data")):
        q = p.add_parser(name, help=text)
        who = q.add_mutually_exclusive_group(required=True)
        who.add_argument("--id", type=int)
        who.add_argument("--phone")
        who.add_argument("--email")
        if name == "export":
            q.add_argument("--out", help="write to this file instead of standard output")
        else:
            q.add_argument("--yes", action="store_true", help="confirm the erasure")

    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        settings = load_settings(args.config)
    except SettingsError as exc:
        print(f"kesu: invalid setting: {exc}", file=sys.stderr)
        return 2
    try:
        return COMMANDS[args.command](args, settings)
    except SettingsError as exc:
        print(f"kesu: invalid setting: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def cmd_migrate(args, settings: Settings) -> int:
    from models.migrate import upgrade
    upgrade(settings.database_url)
    print("database is up to date")
    return 0


def cmd_serve(args, settings: Settings) -> int:
    from classifier import ensure_default_model
    from models.migrate import upgrade

    from .daemon import Kesu
    upgrade(settings.database_url)
    ensure_default_model(settings.model_dir)

    async def run() -> None:
        kesu = Kesu(settings)
        await kesu.start()
        try:
            first = await _first_admin(kesu.runtime.sessionmaker)
            if first:
                password, token = first
                print(f"created the first admin agent 'admin' with one-time password: {password}\n"
                      f"API token (shown once): {token}", flush=True)
            print(f"kesu is running on http://{settings.http_host}:{kesu.http_port}/", flush=True)
            await asyncio.gather(*kesu._tasks)
        finally:
            await kesu.stop()

    asyncio.run(run())
    return 0


async def _first_admin(sessionmaker):
    from workflow.agents import ensure_first_admin
    async with sessionmaker() as session:
        first = await ensure_first_admin(session)
        await session.commit()
    return first


def cmd_work(args, settings: Settings) -> int:
    from .runtime import Runtime

    async def run() -> int:
        rt = await Runtime.open(settings)
        try:
            if not args.until_empty:
                await rt.worker.run_forever(settings.worker_idle_seconds)
            while await rt.worker.run_once():
                pass
            return rt.worker.processed
        finally:
            await rt.close()

    print(json.dumps({"processed": asyncio.run(run())}))
    return 0


def cmd_classify(args, settings: Settings) -> int:
    from classifier import Classifier
    clf = Classifier.load(settings.model_dir, review_threshold=settings.review_threshold)
    _print_json(clf.suggest(args.text).to_dict())
    return 0


def cmd_complaint(args, settings: Settings) -> int:
    from connectors.base import InboundMessage, Sender

    from .runtime import Runtime
    import uuid

    async def run() -> dict:
        rt = await Runtime.open(settings)
        try:
            msg = InboundMessage(
                channel=args.channel, external_id=f"cli:{uuid.uuid4().hex}",
                sender=Sender(handle=args.phone or args.email or "", name=args.name, email=args.email,
                              phone=args.phone),
                text=args.text, received_at=datetime.now(timezone.utc),
                meta={"product": args.product, "order_no": args.order_no, "region": args.region, "actor": "cli"})
            await rt.intake.accept(msg)
            number = await rt.intake.process_now(msg.channel, msg.external_id, timeout=60)
            status = await rt.intake.outcome(msg.channel, msg.external_id)
            return {"number": number, "status": status[0] if status else None}
        finally:
            await rt.close()

    result = asyncio.run(run())
    _print_json(result)
    return 0 if result["number"] else 1


def cmd_agent(args, settings: Settings) -> int:
    from models import make_engine, make_sessionmaker
    from workflow.agents import AgentError, create_agent
    from workflow.organisation import ensure_defaults

    from .runtime import open_keyring

    async def run() -> dict:
        open_keyring(settings)
        engine = make_engine(settings.database_url)
        try:
            async with make_sessionmaker(engine)() as session:
                await ensure_defaults(session)
                agent, token = await create_agent(session, args.name, args.role, args.department, args.password,
                                                  actor="cli")
                await session.commit()
                return {"id": agent.id, "name": agent.name, "role": agent.role,
                        "department": agent.department_code, "token": token}
        finally:
            await engine.dispose()

    try:
        _print_json(asyncio.run(run()))
    except AgentError as exc:
        print(f"kesu: {exc}", file=sys.stderr)
        return 2
    return 0


def cmd_train(args, settings: Settings) -> int:
    from classifier import train_and_maybe_promote

    from .training import agent_examples
    extra = asyncio.run(agent_examples(settings))
    _print_json(train_and_maybe_promote(settings.model_dir, extra, progress=not args.no_progress))
    return 0


def cmd_evaluate(args, settings: Settings) -> int:
    from classifier import evaluate_version
    result = evaluate_version(settings.model_dir, version=args.model, csv_path=args.data,
                              review_threshold=settings.review_threshold)
    if args.json:
        _print_json(result)
    else:
        for key in ("category_macro_f1", "urgency_macro_f1", "p0_recall", "p0_precision",
                    "p0_recall_with_review", "review_share", "n"):
            print(f"{key:>21}: {result.get(key)}")
    return 0


def cmd_model(args, settings: Settings) -> int:
    from classifier import ModelStore, ensure_default_model
    store = ModelStore(settings.model_dir)
    if args.action == "list":
        current = store.current()
        for v in store.versions():
            _print_json({**v, "current": v.get("version") == current})
    elif args.action == "use":
        store.use(args.version)
        print(f"now using model {args.version}")
    else:
        print(ensure_default_model(settings.model_dir))
    return 0


def cmd_mail(args, settings: Settings) -> int:
    from connectors.email.cli import main_parse
    return main_parse(args.files, args.json)



async def _with_session(settings: Settings, work):
    """Run `work(session)` in one transaction on the configured database, with the key loaded."""
    from models import make_engine, make_sessionmaker
    _load_key(settings)
    engine = make_engine(settings.database_url)
    try:
        async with make_sessionmaker(engine)() as session:
            result = await work(session)
            await session.commit()
            return result
    finally:
        await engine.dispose()


def _load_key(settings: Settings) -> None:
    # Not intake.runtime.open_keyring: that module loads the classifier, which these commands never need.
    from models.crypto import Keyring, configure, load_master_key
    configure(Keyring(load_master_key(settings.secret_key, settings.key_file)))


def _day(text: str, option: str):
    from datetime import date
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise SystemExit(f"kesu: {option} must be a date (YYYY-MM-DD), got {text!r}") from None


def cmd_report(args, settings: Settings) -> int:
    from models import utcnow
    from workflow.reports import Month, keep_report, render, report_figures
    try:
        month = Month.parse(args.month) if args.month else Month.containing(utcnow()).previous()
    except ValueError as exc:
        print(f"kesu: {exc}", file=sys.stderr)
        return 2
    if args.format == "xlsx" and not args.out:
        print("kesu: --format xlsx needs --out FILE", file=sys.stderr)
        return 2

    async def work(session):
        if args.keep:
            return (await keep_report(session, month, actor="cli")).figures
        return await report_figures(session, month, fresh=args.fresh)

    rendered = render(asyncio.run(_with_session(settings, work)), args.format)
    if args.out:
        with open(args.out, "wb") as fh:
            fh.write(rendered.body)
        print(f"wrote the {month} report ({args.format}, {len(rendered.body)} bytes) to {args.out}", file=sys.stderr)
    else:
        sys.stdout.write(rendered.body.decode())
    return 0


def cmd_alerts(args, settings: Settings) -> int:
    from models import utcnow
    from workflow.spikes import alert_dict, check_day, list_alerts, run_spike_check
    since = _day(args.since, "--since") if args.since else None
    day = _day(args.day, "--day") if args.day else None

    async def work(session):
        if args.check and day is not None:
            await check_day(session, day)
        elif args.check:
            await run_spike_check(session, utcnow())
        return [alert_dict(a) for a in await list_alerts(session, since=since)]

    for alert in asyncio.run(_with_session(settings, work)):
        _print_json(alert)
    return 0


def cmd_archive(args, settings: Settings) -> int:
    from workflow.retention import RetentionError, archive, read_archive, retention_years
    try:
        if args.inspect:
            if args.decrypt:
                _load_key(settings)
            for record in read_archive(args.inspect, decrypt=args.decrypt):
                if args.decrypt or "table" not in record:
                    _print_json(record)
            return 0
        if not args.before or not args.out:
            print("kesu: archive needs --before DATE and --out FILE (or --inspect FILE)", file=sys.stderr)
            return 2
        before = _day(args.before, "--before")
        result = asyncio.run(_with_session(settings, lambda session: archive(
            session, before, args.out, years=retention_years(settings), actor="cli")))
    except RetentionError as exc:
        print(f"kesu: {exc}", file=sys.stderr)
        return 1
    _print_json({"file": result.path, "complaints": result.complaints, "rows": result.rows, "sha256": result.sha256})
    return 0


def cmd_purge(args, settings: Settings) -> int:
    from sqlalchemy import func, select

    from models import utcnow
    from workflow.retention import RetentionError, closed_before, check_cutoff, purge, retention_years
    before = _day(args.before, "--before")
    years = retention_years(settings)

    async def work(session):
        if args.yes:
            return await purge(session, before, years=years, actor="cli")
        check_cutoff(before, utcnow(), years)
        n = await session.scalar(select(func.count()).select_from(closed_before(before).subquery()))
        return {"would_purge": int(n or 0), "hint": "archive them first (kesu archive), then rerun with --yes"}

    try:
        _print_json(asyncio.run(_with_session(settings, work)))
    except RetentionError as exc:
        print(f"kesu: {exc}", file=sys.stderr)
        return 1
    return 0


def cmd_customer(args, settings: Settings) -> int:
    from workflow.retention import RetentionError, erase_customer, export_customer, find_customer
    if args.action == "erase" and not args.yes:
        print("kesu: erasing a customer cannot be undone; add --yes to confirm", file=sys.stderr)
        return 2

    async def work(session):
        customer = await find_customer(session, customer_id=args.id, phone=args.phone, email=args.email)
        if customer is None:
            raise RetentionError("no such customer")
        if args.action == "export":
            return await export_customer(session, customer, actor="cli")
        return {"erased": customer.id, **await erase_customer(session, customer, actor="cli")}

    try:
        result = asyncio.run(_with_session(settings, work))
    except RetentionError as exc:
        print(f"kesu: {exc}", file=sys.stderr)
        return 1
    if args.action == "export" and args.out:
        import os
        fd = os.open(args.out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)   # personal data
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(result, fh, ensure_ascii=False, indent=2)
    else:
        _print_json(result)
    return 0

COMMANDS = {"serve": cmd_serve, "work": cmd_work, "migrate": cmd_migrate, "classify": cmd_classify, "complaint": cmd_complaint,
            "agent": cmd_agent, "train": cmd_train, "evaluate": cmd_evaluate, "model": cmd_model,
            "mail": cmd_mail, "report": cmd_report, "alerts": cmd_alerts, "archive": cmd_archive, "purge": cmd_purge,
            "customer": cmd_customer}

if __name__ == "__main__":
    sys.exit(main())
