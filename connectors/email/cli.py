"""`kesu mail parse FILE... [--json]`: show what kesu reads from raw messages, without a database.

One JSON object per line and file: sender, subject, text, charset decisions, attachments,
the auto-reply/bounce verdict, thread references, or the error it would be quarantined for.
Exit status: 0 when every file would be registered or recorded, 1 when one would be
quarantined, 2 when a file cannot be read.
"""
from __future__ import annotations

import json
import sys
from typing import TextIO

from .mime import parse

DEFAULT_LIMIT = 10 * 1024 * 1024


def main_parse(files: list[str], as_json: bool, out: TextIO | None = None,
               attachment_limit: int = DEFAULT_LIMIT) -> int:
    out = out or sys.stdout
    status = 0
    for name in files:
        try:
            with open(name, "rb") as fh:
                raw = fh.read()
        except OSError as exc:
            record = {"file": name, "error": f"cannot read the file: {exc.strerror or exc}"}
            status = 2
        else:
            pm = parse(raw, attachment_limit=attachment_limit)
            record = {"file": name, **pm.as_json()}
            if pm.parse_error:
                status = max(status, 1)
        if as_json:
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
        else:
            out.write(_human(record) + "\n")
    out.flush()
    return status


def _human(r: dict) -> str:
    if "sender" not in r:
        return f"{r['file']}: ERROR {r['error']}"
    lines = [f"== {r['file']}"]
    if r.get("error"):
        lines.append(f"   would be QUARANTINED: {r['error']}")
    sender = r["sender"]
    lines.append(f"   from:     {sender.get('name') or ''} <{sender.get('address') or '?'}>")
    lines.append(f"   subject:  {r['subject']}")
    lines.append(f"   kind:     {r['kind']}" + (f" ({'; '.join(r['kind_reasons'])})" if r["kind_reasons"] else ""))
    if r["thread_refs"]:
        lines.append(f"   threads:  {', '.join(r['thread_refs'])}")
    for d in r["charsets"]:
        lines.append(f"   charset:  {d['where']}: declared {d['declared'] or '-'} -> {d['used']} ({d['how']})")
    for a in r["attachments"]:
        lines.append(f"   attached: {a['name']} {a['type']} {a['size']} bytes" + (f" ({a['note']})" if a["note"] else ""))
    text = r["text"] if len(r["text"]) <= 400 else r["text"][:400] + "..."
    lines.append("   text:     " + text.replace("\n", "\n             "))
    return "\n".join(lines)
