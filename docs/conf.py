"""Sphinx configuration for the netproto documentation."""

import netproto

project = "netproto"
author = "the netproto developers"
copyright = "2026, the netproto developers"
version = release = netproto.__version__

extensions = ["sphinx.ext.autodoc", "sphinx.ext.intersphinx"]
autodoc_member_order = "bysource"
autodoc_typehints = "description"
intersphinx_mapping: dict[str, tuple[str, None]] = {}
exclude_patterns = ["_build"]
html_theme = "alabaster"
