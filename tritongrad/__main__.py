"""``python -m tritongrad <command>``. Commands: ``parity`` (the parity report)."""

from __future__ import annotations

import sys

USAGE = """usage: python -m tritongrad <command> [options]

commands:
  parity    forward and gradient parity of every op against PyTorch
            (python -m tritongrad parity --help)
"""


def main(argv: list | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE, end="")
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command == "parity":
        from .testing.report import main as parity_main

        return parity_main(rest)
    print(f"python -m tritongrad: unknown command {command!r}\n\n{USAGE}", file=sys.stderr, end="")
    return 2


if __name__ == "__main__":
    sys.exit(main())
