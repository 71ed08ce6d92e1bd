# Virtual NOR flash for the simulated board: a littlefs block device backed by an image file,
# with power-cut injection after the N-th block write or erase. MicroPython (unix port) only.
import os
import time

import vfs

BLOCK_SIZE = 4096
# An erased block, allocated once with the board: an erase on the device allocates nothing on
# the firmware's heap, so the model must not either (a 4 KiB allocation per erase failed on a
# fragmented heap right after a power cut and sent the firmware into a reset loop).
_ERASED = b"\xff" * BLOCK_SIZE
IMAGE_NAME = "flash.img"
MOUNT_POINT = "/flash"
_mounted = {}  # mount point -> VFlash


class PowerCut(BaseException):
    """The power failed. BaseException so that firmware `except Exception` does not swallow it."""


_OFF = PowerCut("flash is off")

# Flash timing (honest time, docs/simulation.md): the interpreter blocks while the SPI NOR
# flash programs or erases. Winbond W25Q32 family (the ESP32-WROOM-32's 4 MB flash class), AC
# characteristics: page program tPP 0.7 ms typical / 3 ms max per 256-byte page, 4 KB sector
# erase tSE 45 ms typical / 400 ms max. Data goes out at 40 MHz on one line (0.2 us/byte).
PAGE_BYTES = 256
TIMINGS = {
    "typical": (700, 45000),  # (us per page program, us per 4 KB sector erase)
    "worst": (3000, 400000),
}
timing = None  # None: flash operations are free; else a key of TIMINGS
flash_busy_us = 0  # total virtual time the flash blocked the interpreter
flash_max_op_us = 0


def _busy(us):
    global flash_busy_us, flash_max_op_us
    flash_busy_us += us
    if us > flash_max_op_us:
        flash_max_op_us = us
    time.stall_us(us)


class VFlash:
    """Block device for vfs.VfsLfs2 (extended interface: readblocks/writeblocks with offset,
    ioctl 4 = block count, 5 = block size, 6 = erase). Every write or erase counts as one
    operation; with cut_after_writes = N the (N+1)-th operation raises PowerCut and the device
    stays dead (all later writes are lost) until it is opened again. torn=True writes a prefix of
    the interrupted write (NOR programs byte by byte), or erases a prefix of the interrupted
    erase's sector, before cutting."""

    def __init__(self, path, size_bytes=2 * 1024 * 1024, cut_after_writes=None, torn=False,
                 seed=1):
        if size_bytes % BLOCK_SIZE:
            raise ValueError("flash size must be a multiple of %d" % BLOCK_SIZE)
        self.path = path
        self.blocks = size_bytes // BLOCK_SIZE
        self.cut_after_writes = cut_after_writes
        self.torn = torn
        self.writes = 0  # operations (writes + erases) since this object was created
        self.erases = 0
        self.bytes_written = 0
        self.dead = False
        self._rng = seed or 1
        fresh = True
        try:
            fresh = os.stat(path)[6] != size_bytes
        except OSError:
            pass
        if fresh:
            with open(path, "wb") as f:
                blank = b"\xff" * BLOCK_SIZE
                for _ in range(self.blocks):
                    f.write(blank)
        self.fresh = fresh
        self.formatted = False  # set by mount_flash when it had to format
        self._f = open(path, "r+b")

    def close(self):
        if self._f is not None:
            self._f.close()
            self._f = None

    def _count(self):
        if self.dead:
            raise _OFF  # preallocated: this can run in a GC finaliser, where the heap is locked
        if self.cut_after_writes is not None and self.writes >= self.cut_after_writes:
            self.dead = True
            return False
        self.writes += 1
        return True

    def _rand(self, n):
        # xorshift32: reproducible torn-write lengths without `random`
        x = self._rng
        x ^= (x << 13) & 0xFFFFFFFF
        x ^= x >> 17
        x ^= (x << 5) & 0xFFFFFFFF
        self._rng = x
        return x % n

    def readblocks(self, block, buf, offset=0):
        if self._f is None:  # unmounted: a file object of the old mount being finalised
            raise _OFF  # fail fast (littlefs would otherwise retry on garbage for a long time)
        t0 = time.real_ticks_us()
        self._f.seek(block * BLOCK_SIZE + offset)
        self._f.readinto(buf)
        time.skip(time.real_ticks_diff(time.real_ticks_us(), t0))  # the host's file I/O

    def writeblocks(self, block, buf, offset=None):
        if self._f is None:
            return
        if offset is None:  # simple interface: erase then write whole blocks
            offset = 0
            for i in range((len(buf) + BLOCK_SIZE - 1) // BLOCK_SIZE):
                self.ioctl(6, block + i)
        if timing is not None:
            first = offset // PAGE_BYTES
            last = (offset + len(buf) - 1) // PAGE_BYTES
            _busy((last - first + 1) * TIMINGS[timing][0] + len(buf) // 5)
        if not self._count():
            if self.torn and len(buf) > 1:
                cut = self._rand(len(buf))
                self._f.seek(block * BLOCK_SIZE + offset)
                self._f.write(memoryview(buf)[:cut])
            raise PowerCut("power cut during write %d" % self.writes)
        t0 = time.real_ticks_us()
        self._f.seek(block * BLOCK_SIZE + offset)
        self._f.write(buf)
        time.skip(time.real_ticks_diff(time.real_ticks_us(), t0))
        self.bytes_written += len(buf)

    def ioctl(self, op, arg):
        if op == 4:
            return self.blocks
        if op == 5:
            return BLOCK_SIZE
        if op == 6:
            if self._f is None:
                return 0
            if timing is not None:
                _busy(TIMINGS[timing][1])
            if not self._count():
                if self.torn:
                    # An interrupted sector erase: a random part of the sector is erased, the
                    # rest still holds the old data (MODEL: NOR erases are not atomic).
                    self._f.seek(arg * BLOCK_SIZE)
                    self._f.write(memoryview(_ERASED)[:self._rand(BLOCK_SIZE)])
                raise PowerCut("power cut during erase %d" % self.writes)
            self.erases += 1
            t0 = time.real_ticks_us()
            self._f.seek(arg * BLOCK_SIZE)
            self._f.write(_ERASED)
            time.skip(time.real_ticks_diff(time.real_ticks_us(), t0))
            return 0
        return 0  # 1 init, 2 deinit, 3 sync: nothing to do (the host's page cache is durable)


def _abs(path):
    if path.startswith("/"):
        return path
    cwd = os.getcwd()
    return cwd + "/" + path if path != "." else cwd


def mount_flash(sim_dir, size_bytes=2 * 1024 * 1024, cut_after_writes=None, torn=False,
                mount_point=MOUNT_POINT, chdir=True, seed=1):
    """Mount SIM_DIR/flash.img (created and formatted if missing) as littlefs at mount_point and
    chdir into it. A previous mount at the same point is dropped first (a "reboot").
    -> the VFlash (its .writes, .dead; PowerCut propagates from firmware file operations)."""
    sim_dir = _abs(sim_dir)
    unmount_flash(mount_point, chdir_to=sim_dir)
    dev = VFlash(sim_dir + "/" + IMAGE_NAME, size_bytes, None, torn, seed)
    dev.formatted = dev.fresh
    if dev.fresh:
        vfs.VfsLfs2.mkfs(dev)
    try:
        vfs.mount(vfs.VfsLfs2(dev), mount_point)
    except OSError:  # unreadable image: format it (a real board would do the same)
        dev.formatted = True
        vfs.VfsLfs2.mkfs(dev)
        vfs.mount(vfs.VfsLfs2(dev), mount_point)
    _mounted[mount_point] = dev
    dev.cut_after_writes = cut_after_writes
    dev.writes = 0
    if chdir:
        os.chdir(mount_point)
    return dev


def unmount_flash(mount_point=MOUNT_POINT, chdir_to=None):
    """Drop the mount (after a PowerCut the filesystem object is abandoned, as on a reboot)."""
    if chdir_to is not None:
        try:
            os.chdir(chdir_to)
        except OSError:
            pass
    try:
        vfs.umount(mount_point)
    except OSError:
        pass
    dev = _mounted.pop(mount_point, None)
    if dev is not None:
        # Files the old firmware left open are finalised later by the GC; on the closed device
        # their reads raise PowerCut at once (MicroPython prints it from the finaliser).
        dev.close()
