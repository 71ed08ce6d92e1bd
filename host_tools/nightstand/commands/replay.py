"""`nightstand replay`: a recorded PPG through the virtual MAX30102 into the unchanged firmware."""

from __future__ import annotations

import argparse
from pathlib import Path

from nightstand.commands.base import Command
from nightstand.replay import replay
from nightstand.sim import runner


def _add_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("recording", type=Path,
                   help="CSV with time_s and ppg (or ir) [and red], or a WFDB record path")
    p.add_argument("--out", type=Path, required=True, help="output folder (created)")
    p.add_argument("--heap", default=runner.DEFAULT_HEAPSIZE, help="firmware data heap size")


def _run(args: argparse.Namespace) -> int:
    args.out.mkdir(parents=True, exist_ok=True)
    beats, epochs = replay(args.recording, args.out, heapsize=args.heap)
    n_beats = sum(1 for _ in open(beats)) - 1
    n_epochs = sum(1 for _ in open(epochs)) - 1
    print(f"{n_beats} beats -> {beats}\n{n_epochs} epochs -> {epochs}")
    return 0


COMMANDS = [
    Command("replay", "feed a recorded PPG through the firmware on the virtual board",
            _add_args, _run),
]
