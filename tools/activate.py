"""Make ``. .venv/bin/activate`` point plain MLflow at the project's store.

``mlflow models serve``, ``mlflow.search_runs`` and ``mlflow.pyfunc.load_model`` read
``MLFLOW_TRACKING_URI`` and, without it, open MLflow's own default, a new ``./mlflow.db`` in
whatever folder they run in: "Run ... not found", and a stray database. ``make install`` runs
this on the venv's activate script: activating exports the project's store (an absolute path,
so any folder works) and ``deactivate`` restores what was set before. Running it again replaces
its blocks, so a re-install or a moved store never stacks them.

    python -m tools.activate .venv/bin/activate /abs/path/mlruns/mlflow.db
"""

from __future__ import annotations

import os
import re
import shlex
import sys
from pathlib import Path

BEGIN = "# >>> mnist-pipeline: the project's MLflow store"
END = "# <<< mnist-pipeline"
DEACTIVATE = "deactivate () {\n"

# inside deactivate, which activate also calls first (``nondestructive``): a second activation
# restores the user's value before saving it again
RESTORE = """\
    if [ -n "${_PIPELINE_MLFLOW_URI:-}" ] ; then
        if [ -n "${_OLD_MLFLOW_TRACKING_URI+_}" ] ; then
            MLFLOW_TRACKING_URI="$_OLD_MLFLOW_TRACKING_URI"
            export MLFLOW_TRACKING_URI
            unset _OLD_MLFLOW_TRACKING_URI
        else
            unset MLFLOW_TRACKING_URI
        fi
        unset _PIPELINE_MLFLOW_URI
    fi
"""

EXPORT = """\
if [ -n "${{MLFLOW_TRACKING_URI+_}}" ] ; then
    _OLD_MLFLOW_TRACKING_URI="$MLFLOW_TRACKING_URI"
fi
_PIPELINE_MLFLOW_URI=1
MLFLOW_TRACKING_URI={uri}
export MLFLOW_TRACKING_URI
"""


def block(body: str) -> str:
    return f"{BEGIN}\n{body}{END}\n"


def patch(script: str, database: Path) -> str:
    """``script`` (a venv's bin/activate) with our blocks, any earlier ones removed."""
    script = re.sub(rf"{re.escape(BEGIN)}\n.*?{re.escape(END)}\n", "", script, flags=re.S)
    if DEACTIVATE not in script:
        raise SystemExit(f"error: no `{DEACTIVATE.strip()}` in the activate script")
    script = script.replace(DEACTIVATE, DEACTIVATE + block(RESTORE), 1)
    uri = shlex.quote(f"sqlite:///{database.resolve()}")
    return script + block(EXPORT.format(uri=uri))


def main(argv: list[str]) -> None:
    activate, database = Path(argv[0]), Path(argv[1])
    tmp = activate.with_name(activate.name + ".tmp")  # never a half-written activate
    tmp.write_text(patch(activate.read_text(), database))
    os.replace(tmp, activate)


if __name__ == "__main__":
    main(sys.argv[1:])
