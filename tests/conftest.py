import pytest

from tests.helpers import kill_leftovers


@pytest.fixture(autouse=True)
def no_run_outlives_its_test():
    yield
    kill_leftovers()
