"""`nightstand replay`: a recorded PPG through the virtual MAX30102 into the unchanged firmware."""

from __future__ import annotations

import argparse
from pathlib import Path

from nightstand.commands.base import Command
from nightstand.errors import UserError
from nightstand.sim import runner


def _add_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("recording", type=Path,
                   help="CSV with time_s and ppg (or ir) [and red], or a WFDB record path; "
                   "with --beats: a CSV of beat times (time_s[,beat_type])")
    p.add_argument("--beats", action="store_true",
                   help="the file is a beat list (ECG R peaks or PPG beats): run the firmware's "
                   "beat-only path and sleep staging; writes epochs.csv and events.csv")
    p.add_argument("--out", type=Path, required=True, help="output folder (created)")
    p.add_argument("--heap", default=runner.DEFAULT_HEAPSIZE, help="firmware data heap size")


def _run(args: argparse.Namespace) -> int:
    if args.out.exists() and not args.out.is_dir():
        raise UserError(f"--out {args.out} is a file: give a folder (it is created)")
    try:  # the recording is read and checked before --out is created
        if args.beats:
            from nightstand.sleep.replay import replay_beats, summary_lines

            print("\n".join(summary_lines(replay_beats(args.recording, args.out))))
            return 0
        from nightstand.replay import replay

        beats, epochs = replay(args.recording, args.out, heapsize=args.heap)
    except OSError as e:
        raise UserError(f"cannot write {e.filename or args.out}: {e.strerror}: choose another "
                        "--out") from None
    n_beats = sum(1 for _ in open(beats)) - 1
    n_epochs = sum(1 for _ in open(epochs)) - 1
    n_events = sum(1 for _ in open(args.out / "events.csv")) - 1
    print(f"{n_beats} beats -> {beats}\n{n_epochs} epochs -> {epochs}\n"
          f"{n_events} arousal events -> {args.out / 'events.csv'}")
    return 0


COMMANDS = [
    Command("replay", "feed a recorded PPG through the firmware on the virtual board",
            _add_args, _run),
]
