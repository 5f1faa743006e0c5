"""``python -m netproto``: the same as the ``netproto`` command."""

from netproto.cli import main

if __name__ == "__main__":
    main()
