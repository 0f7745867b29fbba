import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("MICRODIFF_SHARED", ROOT.parent / "shared"))


def shared_path(*parts) -> Path:
    p = SHARED.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"{p} not found: the shared reference data sits beside the project checkout "
                    "(../shared) in the development setup; set MICRODIFF_SHARED to point elsewhere")
    return p


def pytest_configure(config):
    """Under pytest-xdist (``make test`` runs one worker per core) each worker keeps to one thread,
    so the workers do not oversubscribe the cores."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        import torch
        torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _threads():
    import torch
    torch.manual_seed(0)
    yield
