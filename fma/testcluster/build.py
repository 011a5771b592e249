"""Build the test binaries from published Go modules, once, into the version-keyed cache.

Contract: :func:`ensure_binaries` returns a directory holding every name in
:data:`~fma.testcluster.gomodule.BINARY_NAMES`; it compiles only the missing ones, in a single
``go build`` run inside a temporary module under the cache, and installs each binary
atomically (a half-written file is never mistaken for a built one). Go must be on ``PATH``;
modules come from the Go module proxy through the ordinary ``go`` client. ``openssl``, which
``up`` needs, is installed with apt-get when missing.
"""

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from fma.testcluster import gomodule, paths, pki


class BuildError(RuntimeError):
    """A build step failed; the message is one line naming the step and its log."""


def missing_binaries(bin_dir: Path) -> list[gomodule.Binary]:
    """The binaries not yet built (absent or not executable) in ``bin_dir``."""
    return [b for b in gomodule.BINARIES if not os.access(bin_dir / b.name, os.X_OK)]


def _go_env(jobs: int) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            # Fail fast on a module needing a newer Go instead of downloading a toolchain.
            "GOTOOLCHAIN": "local",
            # Upstream builds the control plane statically; no C compiler is needed.
            "CGO_ENABLED": "0",
            "GOFLAGS": "-trimpath -buildvcs=false -mod=mod",
            # The Go runtime of the compiler and linker follows the same core budget.
            "GOMAXPROCS": str(jobs),
        }
    )
    return env


def _run(step: str, args: Sequence[str], cwd: Path, env: dict[str, str], log: Path) -> None:
    with log.open("a") as out:
        out.write(f"$ {' '.join(args)}\n")
        out.flush()
        rc = subprocess.run(args, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT).returncode
    if rc != 0:
        raise BuildError(f"{step} failed (exit {rc}); log: {log}")


def ensure_binaries(
    *,
    force: bool = False,
    jobs: int | None = None,
    report: Callable[[str], None] = lambda _msg: None,
) -> Path:
    """Make sure every test binary exists in :func:`~fma.testcluster.paths.testbin_dir`.

    ``force`` rebuilds all of them; ``jobs`` is Go's ``-p`` (default: the CPU count);
    ``report`` receives one-line progress messages. Raises :class:`BuildError` (and
    :class:`~fma.testcluster.pki.PkiError` when openssl is missing and cannot be installed).
    """
    # `up` needs openssl too; a fresh machine gets it here, with the rest of the one-time set-up.
    pki.ensure_openssl()
    bin_dir = paths.testbin_dir()
    wanted = list(gomodule.BINARIES) if force else missing_binaries(bin_dir)
    if not wanted:
        return bin_dir
    # Go's official tarball lives in /usr/local/go, which a non-login shell may lack on PATH.
    go = shutil.which("go") or shutil.which("go", path="/usr/local/go/bin")
    if go is None:
        raise BuildError("Go (>= 1.24) is needed to build the test binaries: 'go' not on PATH")
    jobs = jobs or os.cpu_count() or 2
    bin_dir.mkdir(parents=True, exist_ok=True)
    paths.build_root().mkdir(parents=True, exist_ok=True)
    log = bin_dir / "build.log"
    log.write_text("")
    env = _go_env(jobs)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="work-", dir=paths.build_root()) as tmp:
        work = Path(tmp)
        (work / "go.mod").write_text(gomodule.go_mod())
        for rel, text in gomodule.FILES.items():
            (work / rel).parent.mkdir(parents=True, exist_ok=True)
            (work / rel).write_text(text)
        report("resolving modules (go mod tidy)")
        _run("go mod tidy", [go, "mod", "tidy"], work, env, log)
        names = ", ".join(b.name for b in wanted)
        report(f"compiling {names} (go build -p {jobs}; about 6 min cold on 2 cores)")
        out = work / "out"
        out.mkdir()
        _run(
            "go build",
            [
                go,
                "build",
                "-p",
                str(jobs),
                "-ldflags",
                " ".join(gomodule.ldflags()),
                "-o",
                f"{out}/",
                *(b.package for b in wanted),
            ],
            work,
            env,
            log,
        )
        for b in wanted:
            tmp_target = bin_dir / f".{b.name}.new"
            shutil.copy2(out / b.name, tmp_target)
            tmp_target.chmod(0o755)
            tmp_target.replace(bin_dir / b.name)
    report(f"built {names} in {time.monotonic() - started:.0f} s into {bin_dir}")
    return bin_dir
