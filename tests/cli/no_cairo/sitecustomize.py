"""A machine without libcairo, for a real ``minpcode doctor``: Python imports this module at start when its
folder is on the process's PYTHONPATH (tests/cli/test_doctor.py puts it there, nothing else does).

The system's libcairo cannot be hidden from a process (the loader finds it in the system folders whatever
LD_LIBRARY_PATH says), so importing cairocffi fails here the way it does on such a machine: cairocffi
dlopens libcairo at import and raises OSError when there is none. No minpcode code is replaced.
"""

import sys
from importlib.abc import MetaPathFinder
from importlib.machinery import ModuleSpec
from typing import Any


class _NoLibcairo(MetaPathFinder):
    def find_spec(self, name: str, path: Any = None, target: Any = None) -> ModuleSpec | None:
        if name == "cairocffi" or name.startswith("cairocffi."):
            # cairocffi's own words when dlopen finds nothing (cairocffi/__init__.py, dlopen)
            raise OSError('no library called "cairo-2" was found\nno library called "cairo" was found\n'
                          'no library called "libcairo-2" was found')
        return None


sys.meta_path.insert(0, _NoLibcairo())
