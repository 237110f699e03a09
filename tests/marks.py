"""The marks of tests that start another process or server (declared in pytest.ini).

`make test-fast` deselects them, so a fixture that starts such a thing calls require_mark:
a test that uses it without the mark fails at once instead of slowing down the fast run.
"""

from __future__ import annotations

import pytest


def require_mark(request: pytest.FixtureRequest, mark: str) -> None:
    """Fail the requesting test unless it carries `mark` (from itself, its class, module or params)."""
    if request.node.get_closest_marker(mark) is None:
        pytest.fail(f"{request.node.nodeid} uses {request.fixturename}: mark it @pytest.mark.{mark}", pytrace=False)
