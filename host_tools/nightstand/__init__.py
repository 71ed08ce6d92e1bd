"""nightstand host tools: simulate, replay, sync, store, report and export nights."""

from nsdev import VERSION as __version__  # one version string: the firmware's (nsdev.VERSION)

__all__ = ["__version__"]
