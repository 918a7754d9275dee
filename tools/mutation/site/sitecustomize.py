"""Imported at start-up by every Python process that a test starts during ``make mutate``.

``tools/mutation/pytest_plugin.py`` puts this folder on PYTHONPATH. mutmut 3 only sees what
happens inside its own pytest process, but the tests also start ``python -m pipeline.train``,
``python -m sweeps`` and ``python -m sweeps.report``, which spawn workers. In those processes
this module:

1. in mutmut's stats phase, writes the mutated functions the process reached to
   ``$MUTMUT_HITS_DIR`` at exit, so the plugin credits them to the running test (mutmut alone
   would find no test for a function only a subprocess reaches);
2. while a mutant is tested, makes it active in a mutated module that runs as ``__main__``
   (``python -m sweeps.report``) or ``__mp_main__`` (the spawned workers that re-import it):
   mutmut's trampoline compares the mutant's module with the function's ``__module__``, which
   is then ``__main__``, not ``sweeps.report``;
3. dies with its parent (Linux), so a mutant's pytest ended at its time limit leaves no
   training or report running on.
"""

from __future__ import annotations

import os
import sys
import time

ALIASES = ("__main__", "__mp_main__")
NOT_A_MUTANT = ("", "stats", "fail", "list_all_tests", "mutant_generation")


def _real_name(alias: str) -> str | None:
    """The module a ``__main__``/``__mp_main__`` was run from (``python -m X`` gives X)."""
    spec = getattr(sys.modules.get(alias), "__spec__", None)
    return getattr(spec, "name", None)


def _dump_hits(folder: str) -> None:
    state = sys.modules.get("mutmut.state")
    if state is None:  # this process imported no mutated module
        return
    names = set()
    for name in state.state()._stats:
        module, _, function = name.rpartition(".")
        if module in ALIASES and _real_name(module):
            name = f"{_real_name(module)}.{function}"
        names.add(name)
    if names:
        path = os.path.join(folder, f"{os.getpid()}-{time.time_ns()}")
        with open(path + ".tmp", "w") as f:
            f.write("\n".join(sorted(names)))
        os.replace(path + ".tmp", path + ".hits")


def _activate_in_main_modules() -> None:
    from mutmut.mutation import trampoline

    original = trampoline.get_mutant_under_test

    def get_mutant_under_test() -> str:
        name = original()
        module, _, mutant = name.rpartition(".")
        for alias in ALIASES:
            if module and _real_name(alias) == module:
                return f"{alias}.{mutant}"
        return name

    trampoline.get_mutant_under_test = get_mutant_under_test


def _die_with_parent() -> None:
    import ctypes
    import signal

    parent = os.getppid()
    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)
    if os.getppid() != parent:  # the parent died before prctl
        os._exit(1)


def _install() -> None:
    if sys.platform == "linux":
        _die_with_parent()
    mode = os.environ.get("MUTANT_UNDER_TEST", "")
    if mode == "stats" and os.environ.get("MUTMUT_HITS_DIR"):
        import atexit

        atexit.register(_dump_hits, os.environ["MUTMUT_HITS_DIR"])
    elif mode not in NOT_A_MUTANT:
        _activate_in_main_modules()


try:
    _install()
except Exception as err:  # never break the test's own subprocess
    print(f"tools/mutation/site/sitecustomize.py: {type(err).__name__}: {err}", file=sys.stderr)
