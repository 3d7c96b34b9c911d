"""Maps the project's top-level folders under the ``anechat`` import namespace.

engines/ -> anechat.engines, tui/ -> anechat.tui, themes/ -> anechat.themes.
Subpackages are discovered so that new folders need no edit here; a folder of data
files without ``__init__.py`` (tui/styles) is listed as a package too, so that its
files ship as that package's data.
"""
import os
from pathlib import Path

from setuptools import setup

ROOTS = {"anechat": "anechat", "anechat.engines": "engines", "anechat.tui": "tui", "anechat.themes": "themes"}
DATA_FILES = ["*.tcss", "*.toml", "*.txt"]


def _packages() -> list[str]:
    """Every folder with an ``__init__.py`` under each root, not following links (anechat/engines
    and anechat/tui are links that let import-linter see the namespace as Python does)."""
    found = []
    for name, folder in ROOTS.items():
        for here, dirs, files in os.walk(folder):  # os.walk does not follow links by default
            if "__init__.py" in files:
                rel = Path(here).relative_to(folder)
                found.append(".".join([name, *rel.parts]) if rel.parts else name)
            dirs.sort()
    return found


setup(
    packages=_packages(),
    package_dir=ROOTS,
    package_data={"": DATA_FILES},
    include_package_data=True,
)
