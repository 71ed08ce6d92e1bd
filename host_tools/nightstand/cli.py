"""The `nightstand` command: one entry point, subcommands from a table, one error path."""

from __future__ import annotations

import argparse
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
    except KeyboardInterrupt:
        print("nightstand: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
