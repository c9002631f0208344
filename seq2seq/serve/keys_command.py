"""``seq2seq keys add|list|remove``: the command line of the API key database (:mod:`seq2seq.serve.keys`).

Importing this module is cheap (no FastAPI, no torch): the CLI builds its parser from it.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

from seq2seq.serve.keys import KeyStore
from seq2seq.serve.settings import ServeSettings


def add_keys_parser(commands: argparse._SubParsersAction, count: Callable[[str], int]) -> None:
    """The ``keys`` command and its actions; ``count`` parses a limit (a whole number ≥ 1)."""
    keys = commands.add_parser("keys", help="manage the API keys of `seq2seq serve --api-keys`")
    actions = keys.add_subparsers(dest="action", required=True, metavar="add|list|remove")
    add = actions.add_parser("add", help="create a key and print it (the only time it is shown)")
    add.add_argument("name", help="who uses the key (what list and remove call it)")
    add.add_argument("--req-limit", type=count, help="requests per minute for this key (default: the "
                     "server's --req-limit)")
    add.add_argument("--char-limit", type=count, help="characters per request for this key (default: the "
                     "server's --char-limit)")
    actions.add_parser("list", help="names, limits, creation and last use (never the keys)")
    remove = actions.add_parser("remove", help="revoke a key")
    remove.add_argument("name", help="the key's name")
    for action in actions.choices.values():
        action.add_argument("--api-keys-db", default=ServeSettings.api_keys_db, metavar="PATH",
                            help=f"the key database (default {ServeSettings.api_keys_db})")


def run_keys(args: argparse.Namespace) -> None:
    """Add (printing the new key, the only time it is shown), list or remove keys."""
    store = KeyStore(args.api_keys_db, create=args.action == "add")
    try:
        if args.action == "add":
            print(store.add(args.name, req_limit=args.req_limit, char_limit=args.char_limit))
        elif args.action == "remove":
            store.remove(args.name)
            print(f"removed the key {args.name!r} from {args.api_keys_db}")
        else:
            listed = store.list()
            print(f"{len(listed)} key(s) in {args.api_keys_db}")
            for key in listed:
                limits = [f"{key.req_limit} requests/minute" if key.req_limit else "server's request limit",
                          f"{key.char_limit} characters/request" if key.char_limit else "server's character limit"]
                print(f"{key.name}\t{', '.join(limits)}\tcreated {key.created}\tlast used {key.last_used or 'never'}")
    finally:
        store.close()
