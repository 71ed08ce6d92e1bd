"""nightstand host tools: simulate, replay, sync, store, report and export nights."""

__version__ = "0.1.0"
