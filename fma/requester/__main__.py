"""``python -m fma.requester ...``: the `fma requester` commands without the root CLI."""

from fma.requester.cli import app

if __name__ == "__main__":
    app(prog_name="fma requester")
