# Copies the files of a simulated board's littlefs flash image to a host folder, or with --load
# a host folder's files into the image (created if missing; files already there are kept).
# Usage: micropython flashdump.py SIM_DIR HOST_DIR [--load]   (MICROPYPATH = vboard : .frozen)
import os
import sys

import vflash


def _mkdir(path):
    try:
        os.mkdir(path)
    except OSError:
        pass


def _copy(src, dst):
    _mkdir(dst)
    for name, kind, *_ in os.ilistdir(src):
        s = src + "/" + name
        d = dst + "/" + name
        if kind == 0x4000:
            _copy(s, d)
        else:
            with open(s, "rb") as fi, open(d, "wb") as fo:
                while True:
                    chunk = fi.read(4096)
                    if not chunk:
                        break
                    fo.write(chunk)


sim_dir, host_dir = sys.argv[1], sys.argv[2]
vflash.mount_flash(sim_dir, chdir=False)
if "--load" in sys.argv:
    _copy(host_dir, vflash.MOUNT_POINT)
else:
    _copy(vflash.MOUNT_POINT, host_dir)
vflash.unmount_flash()
