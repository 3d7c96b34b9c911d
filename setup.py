"""Maps the project's top-level folders under the ``anechat`` import namespace.

engines/ -> anechat.engines, tui/ -> anechat.tui, themes/ -> anechat.themes.
Subpackages are discovered so that new folders need no edit here.
"""
from pathlib import Path

from setuptools import setup

ROOTS = {"anechat": "anechat", "anechat.engines": "engines", "anechat.tui": "tui", "anechat.themes": "themes"}


def _packages() -> list[str]:
    found = []
    for name, folder in ROOTS.items():
        base = Path(folder)
        for init in sorted(base.rglob("__init__.py")):
            rel = init.parent.relative_to(base)
            found.append(".".join([name, *rel.parts]) if rel.parts else name)
    return found


setup(
    packages=_packages(),
    package_dir=ROOTS,
    package_data={"anechat.themes": ["*.tcss", "*.toml"], "anechat.tui": ["*.tcss", "**/*.tcss"]},
    include_package_data=True,
)
