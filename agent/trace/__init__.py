"""Run traces in SQLite: migrations, the store and the recorder hook.

sqlite-utils imports pandas whenever pandas is installed (only to convert pandas values on
insert, which Verity never does). In a process that also holds a CUDA build of llama.cpp, that
import is what aborted Verity on a GPU machine whose image ships pandas and pyarrow, so
sqlite-utils is imported here, once, with pandas (and numpy, unless already imported) kept
out; a pandas the caller imported itself is left alone.
"""

from __future__ import annotations

import sys


def _import_sqlite_utils_without_pandas() -> None:
    if "pandas" in sys.modules or "sqlite_utils" in sys.modules:
        return
    # numpy too (for the same conversions): it would add a third to `verity logs`' start-up
    kept_out = [name for name in ("pandas", "numpy") if name not in sys.modules]
    for name in kept_out:
        sys.modules[name] = None  # type: ignore[assignment]  # makes `import name` fail
    try:
        import sqlite_utils  # noqa: F401
    finally:
        for name in kept_out:
            del sys.modules[name]


_import_sqlite_utils_without_pandas()
