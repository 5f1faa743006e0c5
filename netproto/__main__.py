"""
``python -m netproto`` and the ``netproto`` console script: the command line
of :mod:`netproto.cli`, with Ctrl-C handled from the first statement on.
"""

import os
import sys


def main() -> None:
    """
    Run the ``netproto`` command line (:func:`netproto.cli.main`) and exit.

    Until the command takes the signal over (and again once it is done),
    Ctrl-C exits at once with status 130 and one line: a ``KeyboardInterrupt``
    raised while the command's modules import would print a traceback, or
    be swallowed by the import machinery and lost.
    """
    # The C module: 'signal' itself would import enum first, a window of its own.
    import _signal  # type: ignore[import-not-found]  # (no stub: the C half of signal)

    _signal.signal(_signal.SIGINT, _interrupted)
    from netproto.cli import main as run

    run(own_process=True)


def _interrupted(signum: int, frame: object) -> None:
    """SIGINT outside the command: flush what was printed, one line, exit 130."""
    try:
        sys.stdout.flush()
    except BaseException:  # interrupted mid-write: nothing more to save
        pass
    os.write(2, b"netproto: interrupted\n")
    os._exit(130)


if __name__ == "__main__":
    main()
