"""``python -m bridge <command>``: the same commands as ``.venv/bin/bridge`` (``make help``).

Run by a Python that lacks the bridge's packages (the system's ``python3``), it hands over to
the project's own ``.venv`` when there is one, so ``python3 -m bridge doctor`` works as the
trader typed it. Without a ``.venv`` it says which command to use instead of a traceback.
"""

import os
import sys
from pathlib import Path

#: set on the hand-over, so a broken .venv says what is wrong instead of re-running itself
_HANDED_OVER = "_BRIDGE_VENV_HANDOVER"
#: commands `make` runs under their own name (Makefile)
_MAKE_TARGETS = frozenset({"check", "doctor", "login", "banner", "signals", "notices", "jobs"})

try:
    from bridge.cli import main
except ModuleNotFoundError as missing:
    venv = Path(__file__).resolve().parent.parent / ".venv"
    python = venv / "bin" / "python"
    if (python.is_file() and Path(sys.prefix).resolve() != venv.resolve()
            and not os.environ.get(_HANDED_OVER)):
        os.environ[_HANDED_OVER] = "1"
        os.execv(python, [str(python), "-m", "bridge", *sys.argv[1:]])
    words = " ".join(sys.argv[1:]) or "--help"
    command = sys.argv[1] if len(sys.argv) > 1 else ""
    make = f"`make {command}` (it builds .venv first) or " if command in _MAKE_TARGETS else ""
    sys.stderr.write(
        f"This Python ({sys.executable}) does not have the bridge's packages ({missing}).\n"
        f"Run the bridge's commands with its own environment: {make}"
        f"`.venv/bin/bridge {words}` after `make run` or `make check` has built .venv.\n")
    sys.exit(2)

main(prog_name="python -m bridge")
