"""The simulator compiled: its busiest modules built with mypyc, for long runs.

The decisions (:mod:`fma.core`), the reconcile shell (:mod:`fma.control`) and the simulator's
busiest modules are strictly typed Python; mypyc (part of mypy) compiles them to C extensions
that run the same code without the interpreter's dispatch. ``python -m
fma.adapters.sim.compiled`` builds them into a cache directory named by a digest of their
sources, the Python version and the mypy version; :func:`enable`, called before any of them is
imported, makes the process import the built modules when a build of the current sources exists.
The sources stay the only truth: any change makes a build stale, and the interpreted modules are
used until it is rebuilt. A run is the same either way (same decisions, same trace).

Nothing enables it by default, and tests never do: the mutation tests patch module functions,
which compiled callers would not see. ``bench/sim_speed.py --compiled`` measures with it.
"""

import hashlib
import importlib
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
"""The directory that holds the ``fma`` package."""
CACHE = Path.home() / ".cache" / "fma" / "compiled"
PACKAGES = ("fma.core", "fma.control", "fma.adapters.sim")
MODULES = (
    *(
        f"fma/core/{name}.py"
        for name in (
            "actions",
            "dualpods",
            "housekeeping",
            "identity",
            "launchers",
            "memo",
            "model",
            "outcomes",
            "policy",
            "population",
            "reasons",
            "retire",
            "room",
            "sleepers",
            "target",
        )
    ),
    "fma/control/queue.py",
    "fma/control/reconcile.py",
    *(
        f"fma/adapters/sim/{name}.py"
        for name in (
            "cluster",
            "controller",
            "executor",
            "links",
            "placement",
            "scheduling",
            "topology",
            "trace",
        )
    ),
)
"""What is compiled. The simulator's state (its views' bookkeeping overrides ``__setattr__``)
and its SimPy call-later (a duck-typed event) stay interpreted."""
MARKER = "built"


def digest() -> str:
    """What a build is valid for: the compiled sources, the Python and mypy versions."""
    import mypy.version

    h = hashlib.sha256(f"{sys.version}\n{mypy.version.__version__}\n".encode())
    for module in MODULES:
        h.update(module.encode() + b"\n" + (ROOT / module).read_bytes())
    return h.hexdigest()[:16]


def build_dir() -> Path:
    return CACHE / digest()


def build(*, quiet: bool = True) -> Path:
    """Compile :data:`MODULES` (unless built already); the build's directory."""
    target = build_dir()
    if (target / MARKER).exists():
        return target
    with tempfile.TemporaryDirectory(prefix="fma-mypyc-") as tmp:
        work = Path(tmp)
        shutil.copytree(ROOT / "fma", work / "fma", ignore=shutil.ignore_patterns("__pycache__"))
        (work / "mypy.ini").write_text("[mypy]\nignore_missing_imports = True\n")
        done = subprocess.run(
            [sys.executable, "-m", "mypyc", *MODULES],
            cwd=work,
            capture_output=quiet,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            tail = (done.stdout or "")[-2000:] + (done.stderr or "")[-2000:]
            raise RuntimeError(f"mypyc failed:\n{tail}")
        staging = target.with_name(target.name + ".tmp")
        shutil.rmtree(staging, ignore_errors=True)
        for built in work.rglob("*.so"):
            if "build" in built.relative_to(work).parts[:1]:
                continue
            place = staging / built.relative_to(work)
            place.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(built, place)
        (staging / MARKER).write_text(digest() + "\n")
        shutil.rmtree(target, ignore_errors=True)
        staging.rename(target)
    return target


def enable() -> bool:
    """Import the compiled modules from now on, if a build of the current sources exists;
    whether they will be. Must run before any of them is imported."""
    target = build_dir()
    if not (target / MARKER).exists():
        return False
    imported = [m[: -len(".py")].replace("/", ".") for m in MODULES]
    if any(name in sys.modules for name in imported):
        raise RuntimeError("enable() must run before the simulator's modules are imported")
    sys.path.insert(0, str(target))  # mypyc's shared runtime module is at the top
    for package in PACKAGES:
        module = importlib.import_module(package)
        module.__path__.insert(0, str(target / package.replace(".", "/")))
    return True


def main() -> int:
    print(f"built {build(quiet=False)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
