"""The command line: ``main`` and ``build_parser`` (in ``main``); one module per verb group
(``data``, ``train``, ``generate``, ``evaluate``, ``demo``), the flag types in ``common`` and the
settings-to-flags table in ``flags``."""
from .main import build_parser, main

__all__ = ["main", "build_parser"]
