"""The `nightstand` command: one entry point, subcommands from a table, one error path."""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys

from nightstand.commands import Command, all_commands
from nightstand.errors import UserError


def _commands() -> list[Command]:
    return all_commands()


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, then the hint, exit 2
        self.exit(2, f"nightstand: error: {message} (see `{self.prog} --help`)\n")


def build_parser(commands: list[Command]) -> argparse.ArgumentParser:
    from nightstand import __version__

    parser = _Parser(prog="nightstand", description=__doc__)
    parser.add_argument("--version", action="version", version=f"nightstand {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for cmd in commands:
        p = sub.add_parser(cmd.name, help=cmd.help, description=cmd.help)
        cmd.add_arguments(p)
        p.set_defaults(_run=cmd.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser(_commands())
    args = parser.parse_args(argv)
    try:
        return int(args._run(args) or 0)
    except UserError as e:
        print(f"nightstand: {e}", file=sys.stderr)
        return 1
    except sqlite3.Error as e:  # met while a command read or wrote the store
        from nightstand.store import explain_db_error

        print(f"nightstand: {explain_db_error(getattr(args, 'db', None), e)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("nightstand: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # a bug, not the user's input: still one line, the trace on request
        if os.environ.get("NIGHTSTAND_DEBUG"):
            raise
        where = "".join(str(e).splitlines()[:1])[:300]
        print(f"nightstand: internal error ({type(e).__name__}: {where}): please report it; "
              "NIGHTSTAND_DEBUG=1 shows the traceback", file=sys.stderr)
        return 70


if __name__ == "__main__":
    sys.exit(main())
