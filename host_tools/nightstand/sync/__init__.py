"""Host side of the sync protocol: transports, the protocol client and the desktop store."""
