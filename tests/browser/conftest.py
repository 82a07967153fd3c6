"""The browser tests drive the same real service process as the served tests."""

from tests.served.conftest import served  # noqa: F401 - re-exported fixture
