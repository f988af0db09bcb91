"""Build step only: bundle the database side into the wheel (everything else: pyproject.toml).

sql/, functions/, cron/, scripts/migrate.sh and scripts/cron.sh (its pg_cron step) are copied at build time into
nikita_shim/_sql/ of the built package, so that `nikita-shim migrate` runs the very files of
this checkout with the very migrator (nothing is duplicated in git). MANIFEST.in puts them in
the sdist too.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
BUNDLED = ("sql", "functions", "cron", "scripts/migrate.sh", "scripts/cron.sh")


class BuildPyWithSql(build_py):
    def run(self) -> None:
        super().run()
        dest = Path(self.build_lib) / "nikita_shim" / "_sql"
        shutil.rmtree(dest, ignore_errors=True)
        for part in BUNDLED:
            src = ROOT / part
            if not src.exists():
                raise SystemExit(f"setup.py: {part} is missing; build from a full checkout")
            target = dest / part
            target.parent.mkdir(parents=True, exist_ok=True)
            if src.is_dir():
                shutil.copytree(src, target)
            else:
                shutil.copy2(src, target)  # keeps migrate.sh executable


setup(cmdclass={"build_py": BuildPyWithSql})
