"""What every command writes: escaping and one-line errors."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from netproto.cli._output import printable


class PrintableTests(SynchronousTestCase):
    """printable() lets nothing reach the terminal that could control it."""

    def test_examples(self) -> None:
        """Escape, newline, NUL, DEL, C1 and zero-width characters are escaped; text is kept."""
        self.assertEqual(printable("plain text ü"), "plain text ü")
        self.assertEqual(printable("\x1b[2J\n\x00\x7f"), "\\x1b[2J\\x0a\\x00\\x7f")
        self.assertEqual(printable("\x9b\u200b\U000e0001"), "\\x9b\\u200b\\U000e0001")
        self.assertEqual(printable(b"ok\xff\x1b"), "ok\\xff\\x1b")

    @given(st.text() | st.binary())
    def test_never_unprintable(self, text: str | bytes) -> None:
        """Whatever the input, the output is printable and holds no line break."""
        out = printable(text)
        self.assertTrue(out.isprintable(), repr(out))
        self.assertNotIn("\n", out)

    @given(st.text(alphabet=st.characters(codec=None), max_size=60))
    def test_same_as_one_character_at_a_time(self, text: str) -> None:
        """The fast path (control characters translated in C) escapes exactly as the plain loop."""

        def one_at_a_time(c: str) -> str:
            if c.isprintable():
                return c
            code = ord(c)
            if code < 0x100:
                return f"\\x{code:02x}"
            return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"

        self.assertEqual(printable(text), "".join(one_at_a_time(c) for c in text))


class ErrorRecordTests(SynchronousTestCase):
    """With --json a failure is one JSON object on standard output, besides the line on stderr."""

    def test_record(self) -> None:
        """error_record puts the context first and kind/message under 'error'."""
        from netproto.cli._output import ERROR_KINDS, CommandError, error_record

        self.assertEqual(
            error_record("timeout", "no answer", host="::1", port=7),
            {"host": "::1", "port": 7, "error": {"kind": "timeout", "message": "no answer"}},
        )
        self.assertEqual(CommandError("x").kind, "failed")
        self.assertEqual(CommandError("x", 2).kind, "usage")
        self.assertIn("refused", ERROR_KINDS)
        self.assertRaises(ValueError, CommandError, "x", kind="nonsense")

    def test_command_failure_in_json(self) -> None:
        """A failing command with --json writes its error object on stdout and exits 1."""
        import json
        import socket

        from tests._helpers import run_cli

        with socket.socket() as closed:
            closed.bind(("127.0.0.1", 0))
            port = closed.getsockname()[1]
        result = run_cli("daytime", "--json", f"127.0.0.1:{port}")
        self.assertEqual(result.returncode, 1)
        self.assertEqual(len(result.stderr.splitlines()), 1)
        record = json.loads(result.stdout)
        self.assertIn("refused", record["error"]["message"])
        self.assertEqual(set(record["error"]), {"kind", "message"})
