"""``faceguard config list|get|set``: the settings for scripts and installers.

Every key, default, validator and help text comes from the one declaration in
:mod:`faceguard.settings`; ``set`` validates as the settings dialog does, saves atomically and
writes the change to the audit log. A running kiosk reads the settings when it starts.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from faceguard.console import EXIT_OK
from faceguard.core.context import AppContext
from faceguard.settings import OPTIONS, SettingsError, option


def cmd_config(ctx: AppContext, args: argparse.Namespace) -> int:
    settings = ctx.settings
    if args.action == "list":
        for item in OPTIONS:
            value = getattr(settings, item.name)
            if args.json:
                print(json.dumps({"key": item.key,
                                  "value": item.shown(value) if item.secret else value,
                                  "default": item.default, "help": item.help,
                                  "secret": item.secret}))
            else:
                changed = "" if value == item.default else \
                    f"  (default {item.shown(item.default)})"
                print(f"{item.key} = {item.shown(value)}{changed}\n    {item.help}")
    elif args.action == "get":
        item = option(args.key)
        value = getattr(settings, item.name)
        print(value if item.secret and args.show_secret else item.shown(value))
    else:
        item = option(args.key)
        value = item.parse(args.value)
        try:
            new = settings.replace(**{item.name: value})
        except SettingsError as error:
            raise SettingsError(f"{error} Nothing was changed.") from None
        changes = ctx.apply_settings(new, actor="cli")
        print(f"{item.key} = {item.shown(value)}" + ("" if changes else " (unchanged)"))
    return EXIT_OK


def register(commands: Any) -> None:
    """Add ``config`` to the main parser's subcommands."""
    p = commands.add_parser("config", help="list, read or change settings (dotted keys)")
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    a = actions.add_parser("list", help="every setting with its value and what it does")
    a.add_argument("--json", action="store_true", help="one JSON object per setting")
    a = actions.add_parser("get", help="print one setting's value")
    a.add_argument("key", metavar="KEY", help="e.g. kiosk.name, recognition.threshold")
    a.add_argument("--show-secret", action="store_true",
                   help="print a secret's value (door.webhook.secret, door.mqtt.password)")
    a = actions.add_parser("set", help="change one setting (validated, saved, audited)")
    a.add_argument("key", metavar="KEY")
    a.add_argument("value", metavar="VALUE", help="'none' resets recognition.threshold to "
                   "the model's calibration")
    p.set_defaults(func=cmd_config)
