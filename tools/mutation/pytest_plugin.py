"""pytest plugin for ``make mutate`` (mutmut 3), loaded through ``[tool.mutmut]``.

- Each mutant runs only the tests of its entry in ``[[tool.mutation.groups]]`` (pyproject.toml)
  among those mutmut found reaching its function; with none left, pytest exits 5 and mutmut
  reports the mutant as "no tests".
- A mutant gets TIMEOUT_FACTOR times what its tests took in mutmut's clean run (setup
  included; that run happens in the process the mutants are forked from), and at least
  TIMEOUT_MIN seconds, then ends as mutmut's "timeout". mutmut's own limit is 15 times the
  stats-phase duration of every test that reaches the function: half an hour for a core
  function that the sweep and report tests also reach, while a mutant can make a loop quadratic.
- Subprocesses count: ``site/sitecustomize.py`` is put on PYTHONPATH for every process a test
  starts; in mutmut's stats phase the functions those processes reached are credited to the
  running test here, before mutmut's own teardown hook reads them.
"""

from __future__ import annotations

import fnmatch
import os
import shutil
import signal
import tempfile
import tomllib
from pathlib import Path

import pytest

SITE = str(Path(__file__).resolve().parent / "site")
NOT_A_MUTANT = ("", "stats", "fail", "list_all_tests", "mutant_generation")
TIMEOUT_FACTOR = float(os.environ.get("MUTATION_TIMEOUT_FACTOR", "3"))
TIMEOUT_MIN = float(os.environ.get("MUTATION_TIMEOUT_MIN", "30"))
CLEAN_SECONDS: dict[str, float] = {}  # node id -> setup + call + teardown in the clean run
MUTMUT_TIMEOUT_EXIT = 36  # mutmut reports this exit code as "timeout"


def groups(root: Path) -> list[dict]:
    with open(root / "pyproject.toml", "rb") as f:
        return tomllib.load(f)["tool"]["mutation"]["groups"]


def group_of(mutant: str, all_groups: list[dict]) -> dict | None:
    """The first entry one of whose globs matches the mutant's name."""
    for group in all_groups:
        if any(fnmatch.fnmatchcase(mutant, pattern) for pattern in group["mutants"]):
            return group
    return None


def pytest_configure(config: pytest.Config) -> None:
    paths = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    if SITE not in paths:
        os.environ["PYTHONPATH"] = os.pathsep.join([SITE, *paths])
    if os.environ.get("MUTANT_UNDER_TEST") == "stats":
        os.environ["MUTMUT_HITS_DIR"] = tempfile.mkdtemp(prefix="mutmut-hits-")


def pytest_unconfigure(config: pytest.Config) -> None:
    folder = os.environ.pop("MUTMUT_HITS_DIR", None)
    if folder:
        shutil.rmtree(folder, ignore_errors=True)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if os.environ.get("MUTANT_UNDER_TEST") == "":
        CLEAN_SECONDS[report.nodeid] = CLEAN_SECONDS.get(report.nodeid, 0.0) + report.duration


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_teardown(item: pytest.Item) -> None:
    folder = os.environ.get("MUTMUT_HITS_DIR")
    if not folder or os.environ.get("MUTANT_UNDER_TEST") != "stats":
        return
    from mutmut.state import state

    for path in sorted(Path(folder).glob("*.hits")):
        state()._stats.update(path.read_text().split())
        path.unlink()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """A mutant keeps the tests of its entry; mutmut's clean run (no mutant) those of the group
    that ``tools/mutation/run.py`` is running ($MUTATION_GROUP)."""
    mutant = os.environ.get("MUTANT_UNDER_TEST", "")
    group = os.environ.get("MUTATION_GROUP")
    if mutant == "" and group:
        entries = [e for e in groups(config.rootpath) if e["name"] == group]
        prefixes = tuple(t for e in entries for t in e["tests"])
    elif mutant not in NOT_A_MUTANT:
        entry = group_of(mutant, groups(config.rootpath))
        prefixes = tuple(entry["tests"]) if entry else ()
    else:
        return
    keep = [item for item in items if item.nodeid.startswith(prefixes)]
    dropped = [item for item in items if not item.nodeid.startswith(prefixes)]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep
    if mutant and keep:
        from mutmut.state import state

        stats = state().duration_by_test
        seconds = sum(CLEAN_SECONDS.get(i.nodeid) or stats.get(i.nodeid, 0.0) for i in keep)
        signal.signal(signal.SIGALRM, lambda *_: os._exit(MUTMUT_TIMEOUT_EXIT))
        signal.setitimer(signal.ITIMER_REAL, max(TIMEOUT_MIN, TIMEOUT_FACTOR * seconds))
