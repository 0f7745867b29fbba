"""`microdiff prepare`: real micrograph collections -> a balanced, class-labelled training set.

One engine (``engine``: scan -> plan -> render -> write), what a source is read as and how a
crop of it is rendered (``kinds``: gray, colour or label maps), SEM data-bar detection (``sem_bar``)
and one small module per importer (``folder``, ``uhcs``, ``nffa``, ``fiber``), with what they
share in ``importing`` (progress, class checks, ``summary_table``). Every importer
returns a ``PrepareResult`` (the folder, per-class counts, skipped files and notes).
"""
from .engine import ClassCount, PrepareResult, PrepareSettings, Report
from .importing import summary_table
from .fiber import prepare_fiber
from .folder import prepare_folder
from .nffa import NFFA_CLASSES, NFFA_UNUSED, prepare_nffa
from .sem_bar import bar_like_rows, detect_bar
from .uhcs import PAPER_UHCS_CLASSES, read_uhcs_db, prepare_uhcs
from ...core.errors import PrepareError

__all__ = ["prepare_folder", "prepare_uhcs", "prepare_nffa", "prepare_fiber", "detect_bar", "bar_like_rows",
           "PrepareSettings", "PrepareResult", "ClassCount", "Report", "PrepareError", "summary_table",
           "read_uhcs_db", "PAPER_UHCS_CLASSES", "NFFA_CLASSES", "NFFA_UNUSED"]
