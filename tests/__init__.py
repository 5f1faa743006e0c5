"""The netproto test suite: runs under ``pytest`` and ``python -m twisted.trial tests``."""
