# Entry point on the board (and on the simulated board): maintenance mode when the host asked for
# it or the button is held at boot (no app, no watchdog, the REPL on the console), else the app.
from nsdev import VERSION
from nsdev.board import Board

_board = Board()
_why = _board.maintenance_reason()
if _why:
    _board.lamp_off()
    print("nightstand %s: MAINTENANCE MODE (%s): app and watchdog not started, REPL on this "
          "console; leave with: import nsdev.board; nsdev.board.leave_maintenance()"
          % (VERSION, _why))
else:
    from nsdev import app

    app.main(_board)
del _board, _why
