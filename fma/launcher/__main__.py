"""``python -m fma.launcher ...``: the `fma launcher` commands without the root CLI."""

from fma.launcher.cli import app

if __name__ == "__main__":
    app(prog_name="fma launcher")
