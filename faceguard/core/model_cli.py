"""`faceguard reembed`: bring a library enrolled with an older model up to the current one.

Every template keeps the aligned face crop it was made from, so a new embedding model only
needs those crops embedded again. The kiosk does this by itself when it opens a library
(:meth:`faceguard.core.context.AppContext.sync_templates`); this command does it now, with a
progress bar. Batches are committed one by one: stopping it (Ctrl+C, a power cut, kill -9)
loses nothing, and running it again resumes with the templates still to do.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from faceguard.console import Progress
from faceguard.core.context import AppContext


def cmd_reembed(ctx: AppContext, args: argparse.Namespace) -> int:
    """Re-embed every template made by another model; report what was done."""
    model_id = ctx.engine.model_id
    before = ctx.library.model_ids()
    todo = sum(count for model, count in before.items() if model != model_id)
    bar = None if args.json or todo == 0 else Progress(todo, "re-embedding templates")
    updated = ctx.sync_templates(progress=bar)
    after = ctx.library.model_ids()
    left = sum(count for model, count in after.items() if model != model_id)
    if args.json:
        print(json.dumps({"model_id": model_id, "updated": updated, "left": left,
                          "before": before, "after": after}, indent=1))
    elif todo == 0:
        print(f"every template is already made by {model_id}")
    else:
        print(f"re-embedded {updated} of {todo} templates with {model_id}"
              + (f"; {left} could not be (damaged crops, see the warning)" if left else ""))
    return 0


def register(commands: Any) -> None:
    """Add ``reembed`` to the faceguard command line."""
    p = commands.add_parser("reembed", help="re-embed templates made by an older model from "
                            "their stored crops (resumable)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_reembed)
