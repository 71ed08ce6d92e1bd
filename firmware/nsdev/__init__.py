# nightstand device firmware: pure core (nsdev.core), drivers handed a bus (nsdev.drivers), board.
import sys

VERSION = "0.1.0"

if sys.implementation.name != "micropython":
    # CPython (host tools, tests): a stand-in so firmware modules can `import micropython` and
    # use @micropython.native/viper and const() unchanged. Installed unconditionally: another
    # package's `micropython` module (e.g. Adafruit Blinka's) must not change firmware behaviour.
    # Viper code must only use constructs that also run as plain Python.
    class _MicroPythonShim:
        @staticmethod
        def const(value):
            return value

        @staticmethod
        def native(func):
            return func

        viper = native

        @staticmethod
        def heap_lock():
            return 0

        @staticmethod
        def heap_unlock():
            return 0

    sys.modules["micropython"] = _MicroPythonShim()
