"""
The distributions: an sdist, a wheel built from that sdist, and an editable
install, each put into a fresh virtual environment and run from there.

These build and install for real (``python -m build --no-isolation``, pip with
``--no-index``), so they work offline; they take a few seconds each. The fresh
environment gets netproto from the distribution alone; its dependencies
(Twisted, zope.interface) come from the environment running the tests through
a path file, so nothing is downloaded.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import zipfile
from pathlib import Path

import pytest
from twisted.trial.unittest import SynchronousTestCase

import netproto

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent

_TOP = ("setup.cfg", "pyproject.toml", "MANIFEST.in", "README.md", "LICENSE")
"""The files at the top of the source tree that go into the sdist."""

_TREES = ("netproto", "twisted", "tests", "docs", "benchmarks", "contrib")
"""The directories MANIFEST.in and the package list take from the source tree."""

_LEFT_OUT = shutil.ignore_patterns(
    "__pycache__", "*.py[cod]", "dropin.cache", "_build", "_trial_temp*", ".hypothesis"
)


def _run(*args: str | Path, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env["PIP_NO_INDEX"] = "1"
    return subprocess.run(
        [str(a) for a in args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _build_skip_reason() -> str | None:
    for module in ("build", "setuptools", "wheel", "pip"):
        if importlib.util.find_spec(module) is None:
            return f"{module} is not installed (pip install -e '.[test]')"
    if not (ROOT / "setup.cfg").exists():
        return "not run from a source tree"
    return None


class DistributionTests(SynchronousTestCase):
    """What a packager builds from the source tree installs and serves ``twistd netproto``."""

    def setUp(self) -> None:
        reason = _build_skip_reason()
        if reason is not None:
            self.skipTest(reason)
        self.work = Path(self.mktemp()).resolve()
        self.work.mkdir(parents=True)
        self.source = self.work / "source"
        # A copy of the source tree, as a fresh clone has it: building never
        # writes into the checkout, and nothing untracked gets in.
        self.source.mkdir()
        for name in _TOP:
            shutil.copy2(ROOT / name, self.source / name)
        for name in _TREES:
            shutil.copytree(ROOT / name, self.source / name, ignore=_LEFT_OUT)

    def _check(self, result: subprocess.CompletedProcess[str]) -> str:
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        return result.stdout

    def _fresh_venv(self, name: str) -> Path:
        """A new venv without pip, seeing the test environment's packages after its own."""
        venv = self.work / name
        self._check(_run(sys.executable, "-m", "venv", "--without-pip", venv, cwd=self.work))
        python = venv / "bin" / "python"
        purelib = _run(
            python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))", cwd=self.work
        )
        site = Path(self._check(purelib).strip())
        # Dependencies only: the test environment's own netproto (an editable
        # install adds the checkout through a .pth file there) is not imported,
        # because .pth files of a directory added this way are not processed.
        (site / "_netproto_test_deps.pth").write_text(sysconfig.get_path("purelib") + "\n")
        return venv

    def _install(self, venv: Path, wheel: Path) -> None:
        self._check(
            _run(
                sys.executable,
                "-m",
                "pip",
                "--python",
                venv / "bin" / "python",
                "install",
                "--no-deps",
                "--no-index",
                "-q",
                wheel,
                cwd=self.work,
            )
        )

    def _assert_serves(self, venv: Path, *, inside: Path) -> None:
        """Its ``twistd --help`` lists netproto, found under *inside*; ``netproto --version``."""
        python = venv / "bin" / "python"
        # What the twistd console script runs (Twisted came by path, not by pip).
        twistd = _run(
            python,
            "-c",
            "import sys; from twisted.scripts.twistd import run; sys.argv[0] = 'twistd'; run()",
            "--help",
            cwd=self.work,
        )
        self.assertRegex(self._check(twistd), r"\n\s+netproto\s+The inetd small servers")
        where = _run(
            python,
            "-c",
            "import netproto, twisted.plugins.netproto_plugin as p; "
            "print(netproto.__file__); print(p.__file__)",
            cwd=self.work,
        )
        for line in self._check(where).splitlines():
            self.assertTrue(Path(line).resolve().is_relative_to(inside.resolve()), line)
        version = _run(venv / "bin" / "netproto", "--version", cwd=self.work)
        self.assertEqual(self._check(version).strip(), f"netproto {netproto.__version__}")

    def test_wheel_from_sdist(self) -> None:
        """
        ``python -m build`` makes an sdist carrying the LICENSE and the plugin,
        then a wheel from that sdist; installed in a fresh venv, it serves
        ``twistd netproto`` and reports the metadata's version.
        """
        dist = self.work / "dist"
        self._check(
            _run(sys.executable, "-m", "build", "--no-isolation", "-o", dist, ".", cwd=self.source)
        )
        (sdist,) = dist.glob("netproto-*.tar.gz")
        (wheel,) = dist.glob("netproto-*.whl")
        version = netproto.__version__
        self.assertEqual(sdist.name, f"netproto-{version}.tar.gz")
        with tarfile.open(sdist) as archive:
            names = {name.partition("/")[2] for name in archive.getnames()}
        for required in (
            "LICENSE",
            "twisted/plugins/netproto_plugin.py",
            "netproto/py.typed",
            "contrib/systemd/netproto.service",
        ):
            self.assertIn(required, names)
        self.assertNotIn("twisted/__init__.py", names)
        with zipfile.ZipFile(wheel) as archive:
            members = set(archive.namelist())
            metadata = archive.read(f"netproto-{version}.dist-info/METADATA").decode()
        self.assertIn("twisted/plugins/netproto_plugin.py", members)
        self.assertNotIn("twisted/plugins/__init__.py", members)
        self.assertNotIn("twisted/__init__.py", members)
        self.assertIn(f"\nVersion: {version}\n", metadata)
        self.assertIn("Classifier: Typing :: Typed", metadata)
        self.assertIn("Classifier: Framework :: Twisted", metadata)
        venv = self._fresh_venv("wheel-venv")
        self._install(venv, wheel)
        self._assert_serves(venv, inside=venv)

    def test_plain_editable(self) -> None:
        """
        The editable wheel a plain ``pip install -e .`` builds (no
        ``editable_mode=compat``) adds the checkout as a path, not an import
        hook, so twistd's plugin scan finds ``twisted/plugins`` there.
        """
        dist = self.work / "dist"
        dist.mkdir()
        build = _run(
            sys.executable,
            "-c",
            "import sys; from setuptools import build_meta; "
            "print(build_meta.build_editable(sys.argv[1]))",
            dist,
            cwd=self.source,
        )
        wheel = dist / self._check(build).strip().splitlines()[-1]
        with zipfile.ZipFile(wheel) as archive:
            (pth,) = (n for n in archive.namelist() if n.endswith(".pth"))
            lines = archive.read(pth).decode().split()
        self.assertEqual([Path(line).resolve() for line in lines], [self.source.resolve()])
        venv = self._fresh_venv("editable-venv")
        self._install(venv, wheel)
        self._assert_serves(venv, inside=self.source)
