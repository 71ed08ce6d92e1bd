# Benchmarks only (CPython and MicroPython): a stand-in for proto.FrameAuth that adds and checks
# nothing, so frames after AUTH are sent as in protocol version 1 (CRC only). It measures what
# the per-frame MAC costs; never used by the firmware.


class NullAuth:
    def __init__(self, send_key, recv_key):
        pass

    def seal(self, buf, ftype, seq, n):
        return n

    def open(self, ftype, seq, payload):
        return payload
