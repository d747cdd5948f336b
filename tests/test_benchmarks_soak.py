"""The soak study's pure parts, and the child names it reads from the supervisor's children."""
import time

from benchmarks.soak import descendants, process_name, slope_per_minute, totals
from common.supervisor import Supervisor
from tests.helpers import wait_for


def test_slope_per_minute_is_the_least_squares_slope():
    # v = 3 + 2 t exactly, then a point 1 above the line at the middle: the fit's slope stays 2.
    assert slope_per_minute([(0.0, 3.0), (1.0, 5.0), (2.0, 7.0)]) == 2.0
    assert slope_per_minute([(0.0, 3.0), (1.0, 6.0), (2.0, 7.0)]) == 2.0
    assert slope_per_minute([(1.0, 5.0)]) != slope_per_minute([(1.0, 5.0)])  # nan: one point has no slope


def test_totals_sum_every_process_of_a_sample():
    rows = [{"minutes": 0.5, "anon_mib": 100.0, "shm_mib": 7.0}, {"minutes": 0.5, "anon_mib": 50.0, "shm_mib": 7.0},
            {"minutes": 1.0, "anon_mib": 120.0, "shm_mib": 9.0}]
    assert totals(rows) == [(0.5, 150.0, 7.0), (1.0, 120.0, 9.0)]


def _sleep(seconds, should_stop):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not should_stop():
        time.sleep(0.05)


def test_the_supervisor_names_its_children_where_outside_tools_can_read_them():
    import os

    supervisor = Supervisor(log=lambda _: None)
    try:
        supervisor.start("actor-7", _sleep, (30.0,))
        pid = supervisor.children[0].process.pid
        assert pid in descendants(os.getpid())
        # until the child has exec'd Python, /proc/<pid>/environ still shows the parent's first environment
        assert wait_for(lambda: process_name(pid) == "actor-7", 5), process_name(pid)
        assert "ASYNCRL_CHILD" not in os.environ  # only the child's environment has it
    finally:
        supervisor.shutdown()
