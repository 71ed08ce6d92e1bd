# A task queue for MicroPython's asyncio keyed on the virtual clock.
# The port's C `_asyncio.TaskQueue` stamps "run now" tasks with the host's real clock, which would
# mix two clocks; `install()` swaps in this queue and task type, which follow the documented
# semantics of asyncio's TaskQueue/Task (a time-ordered queue, stable for equal times).
import asyncio
import asyncio.core as _core
from time import ticks_diff, ticks_ms

import world
from micropython import const

_MASK = const(0x3FFFFFFF)  # the ticks period, 2**30, as in `time` (and the ESP32)
_HALF = const(0x20000000)


def _task_name(task):
    """The task's coroutine name ("<generator object 'name' at ...>"), or "?"."""
    parts = str(task.coro).split("'")
    return parts[1] if len(parts) > 2 else "?"


class TaskQueue:
    def __init__(self):
        self._q = []

    def peek(self):
        q = self._q
        return q[0] if q else None

    def push(self, task, key=None):
        task.data = None
        if key is None:
            key = ticks_ms()
        task.ph_key = key
        q = self._q
        i = len(q)
        # Insert after every task due at or before this one (stable FIFO among equal times):
        # ticks_diff(q[i - 1].ph_key, key) > 0, inline (this runs at every asyncio wake-up).
        while i and ((q[i - 1].ph_key - key + _HALF) & _MASK) - _HALF > 0:
            i -= 1
        q.insert(i, task)

    def pop(self):
        task = self._q.pop(0)
        # Lateness: how long after its due time a task gets the CPU (other tasks' computation,
        # a flash write or a console write stalling the loop). Honest time makes this real.
        late = ticks_diff(ticks_ms(), task.ph_key)
        if late > world.lateness_max_ms:
            world.lateness_max_ms = late
            world.lateness_max_at_us = world.now_us()
            # its name only: a reference would keep a reset firmware's code alive
            world.lateness_max_task = _task_name(task)
        if late > 100:
            world.late_over_100ms += 1
            name = _task_name(task)  # rare: only for wake-ups over 100 ms late
            if late > world.late_by_task_ms.get(name, 0):
                world.late_by_task_ms[name] = late
        return task

    def remove(self, task):
        self._q.remove(task)


class Task:
    def __init__(self, coro, globals=None):
        self.coro = coro
        self.data = None  # the queue or task it waits on, or the exception to throw in
        self.state = True  # True: running; a TaskQueue: awaited; None/False: finished
        self.ph_key = 0

    def __iter__(self):
        if not self.state:
            self.state = False
        elif self.state is True:
            self.state = TaskQueue()
        elif type(self.state) is not TaskQueue:
            raise RuntimeError("can't wait")
        return self

    def __next__(self):
        if not self.state:
            raise self.data
        self.state.push(_core.cur_task)
        _core.cur_task.data = self

    def done(self):
        return not self.state

    def cancel(self):
        if not self.state:
            return False
        if self is _core.cur_task:
            raise RuntimeError("can't cancel self")
        while isinstance(self.data, Task):
            self = self.data
        if hasattr(self.data, "remove"):
            self.data.remove(self)
            _core._task_queue.push(self)
        elif ticks_diff(self.ph_key, ticks_ms()) > 0:
            _core._task_queue.remove(self)
            _core._task_queue.push(self)
        self.data = _core.CancelledError
        return True


def install():
    """Make asyncio use the virtual clock's queue. Call before any task is created."""
    _core.TaskQueue = TaskQueue
    _core.Task = Task
    asyncio.Task = Task
    _core.new_event_loop()
