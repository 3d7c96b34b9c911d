"""Maps the project's top-level folders under the ``anechat`` import namespace.

engines/ -> anechat.engines, tui/ -> anechat.tui, themes/ -> anechat.themes.
Subpackages are discovered so that new folders need no edit here; a folder of data
files without ``__init__.py`` (tui/styles) is listed as a package too, so that its
files ship as that package's data.
"""
from pathlib import Path

from setuptools import setup

ROOTS = {"anechat": "anechat", "anechat.engines": "engines", "anechat.tui": "tui", "anechat.themes": "themes"}
DATA_FILES = ["*.tcss", "*.toml"]


def _packages() -> list[str]:
    found = []
    for name, folder in ROOTS.items():
        base = Path(folder)
        for sub in sorted([base, *(p for p in base.rglob("*") if p.is_dir())]):
            rel = sub.relative_to(base)
            if "__pycache__" in rel.parts or any(part.startswith(".") for part in rel.parts):
                continue
            if (sub / "__init__.py").is_file() or any(sub.glob(pattern) for pattern in DATA_FILES):
                found.append(".".join([name, *rel.parts]) if rel.parts else name)
    return found


setup(
    packages=_packages(),
    package_dir=ROOTS,
    package_data={"": DATA_FILES},
    include_package_data=True,
)
