"""What a subcommand is: a name, a help line, its arguments and the function that runs it.

A leaf module: command modules import `Command` from here, never from the parser (`cli.py`)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Command:
    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int | None]
