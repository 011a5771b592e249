"""``python -m fma.testcluster``: the same commands as ``fma testcluster``."""

from fma.testcluster.cli import app

if __name__ == "__main__":
    app(prog_name="fma testcluster")
