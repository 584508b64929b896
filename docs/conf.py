"""Sphinx configuration of the quart-session documentation (built by ./scripts/docs)."""

from __future__ import annotations

import importlib.util
import os
import re
from pathlib import Path
from typing import Any

from docutils.parsers.rst import Directive
from sphinx.application import Sphinx
from sphinx.util import logging

from quart_session import __version__
from quart_session.config import DEFAULTS

DOCS = Path(__file__).resolve().parent
STORES = DOCS.parent / "src" / "quart_session" / "stores"
BENCHMARK_RESULTS = DOCS.parent / "benchmarks" / "RESULTS.md"

project = "quart-session"
author = "the quart-session contributors"
copyright = "the quart-session contributors"
release = version = __version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.viewcode",
    "myst_parser",
]
source_suffix = {".rst": "restructuredtext"}  # Markdown only where included on purpose
exclude_patterns = ["_build"]
html_theme = "furo"
html_static_path = ["_static"]
html_title = f"quart-session {release}"

autodoc_member_order = "bysource"
autodoc_typehints = "description"
# A store's methods would repeat the contract's docstrings: show them once, in base.
autodoc_inherit_docstrings = False
autodoc_default_options = {"show-inheritance": True}
# Store drivers are optional extras: a module whose driver is not installed is
# documented against a mock, so the docs build without every extra.
DRIVERS = ["redis", "glide", "aiomcache", "sqlalchemy", "pymongo", "aioboto3", "botocore"]
autodoc_mock_imports = [name for name in DRIVERS if importlib.util.find_spec(name) is None]

logger = logging.getLogger(__name__)


class StoreModules(Directive):
    """API reference of every store module there is (``stores/*.py``), so a new
    store shows up without editing the docs."""

    def run(self) -> list[Any]:
        names = sorted(
            path.stem for path in STORES.glob("*.py") if path.stem not in ("__init__", "base")
        )
        lines = []
        for name in names:
            title = f"``quart_session.stores.{name}``"
            lines += [
                title,
                "~" * len(title),
                "",
                f".. automodule:: quart_session.stores.{name}",
                "   :members:",
                "",
            ]
        self.state_machine.insert_input(lines, str(STORES))
        return []


class BenchmarkResults(Directive):
    """``benchmarks/RESULTS.md`` when ``./scripts/bench`` has written it."""

    def run(self) -> list[Any]:
        if BENCHMARK_RESULTS.exists():
            self.state.document.settings.record_dependencies.add(str(BENCHMARK_RESULTS))
            # Relative to the including page: an absolute include path is
            # taken from the docs folder.
            relative = os.path.relpath(BENCHMARK_RESULTS, DOCS)
            lines = [f".. include:: {relative}", "   :parser: myst_parser.sphinx_"]
        else:
            lines = [
                ".. note::",
                "",
                "   No results yet: ``./scripts/bench`` measures them and writes",
                "   ``benchmarks/RESULTS.md``, which this page then shows.",
            ]
        self.state_machine.insert_input(lines, str(BENCHMARK_RESULTS))
        return []


def check_every_config_key_is_documented(app: Sphinx) -> None:
    """Warn (an error under ``-W``) when a SESSION_* key has no entry."""
    text = (DOCS / "configuration.rst").read_text()
    documented = set(re.findall(r"^\.\. confval:: (\w+)", text, re.MULTILINE))
    for key in sorted(DEFAULTS.keys() - documented):
        logger.warning("configuration.rst does not document %s", key)


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_directive("store-modules", StoreModules)
    app.add_directive("benchmark-results", BenchmarkResults)
    app.add_object_type("confval", "confval", "pair: %s; configuration value")
    app.connect("builder-inited", check_every_config_key_is_documented)
    return {"parallel_read_safe": True}

# benchmarks/RESULTS.md is a stand-alone Markdown file whose headings jump
# from its title to level 3 tables; that is fine where it is included.
suppress_warnings = ["myst.header"]
