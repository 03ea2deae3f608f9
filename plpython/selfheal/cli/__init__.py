"""The `selfheal` command: setup, doctor, indexes, report, export, emergency and scan.

Client side only; the server never imports this package.
"""

from .commands import main

__all__ = ["main"]
