"""``python -m fma`` is the ``fma`` command."""

from fma.cli import main

if __name__ == "__main__":
    main()
