"""The command table: every `nightstand` subcommand, in `--help` order.

Each module here exposes `COMMANDS` (a list of `Command`), parses arguments and calls library
functions; none imports the parser (`nightstand.cli`). Add a command: docs/recipes/."""

from __future__ import annotations

from nightstand.commands.base import Command


def all_commands() -> list[Command]:
    # Imported on call: `from nightstand.commands.base import Command` stays light.
    from nightstand.commands import board, plan, replay, report, sim, sync

    return [*sim.COMMANDS, *replay.COMMANDS, *sync.COMMANDS, *report.COMMANDS, *plan.COMMANDS,
            *board.COMMANDS]
