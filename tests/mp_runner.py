# Runs the test_* functions of the given test files under MicroPython (no pytest there).
# Usage: micropython tests/mp_runner.py tests/firmware/test_x.py [...]
# Prints one line per test; exits 1 if any failed.
import sys


def _run_file(path):
    slash = path.rfind("/")
    folder, name = (path[:slash], path[slash + 1:]) if slash >= 0 else (".", path)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    mod = __import__(name[:-3])
    failed = 0
    names = sorted(n for n in dir(mod) if n.startswith("test_"))
    for n in names:
        fn = getattr(mod, n)
        try:
            fn()
            print("ok", n)
        except Exception as e:  # report and go on to the next test
            failed += 1
            print("FAIL", n, repr(e))
            sys.print_exception(e, sys.stdout)
    return len(names), failed


def main(paths):
    """Run the files; -> exit status. Also called on a board by the HIL suite (tests/hil/)."""
    total = failed = 0
    for p in paths:
        t, f = _run_file(p)
        total += t
        failed += f
    print("%d passed, %d failed" % (total - failed, failed))
    return 1 if failed or not total else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
