"""Shared arrays: spawn children see the owner's memory, only the owner unlinks, crashes are cleaned."""
import multiprocessing as mp
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from common.replay.shm import SHM_DIR, SharedArrays, cleanup_stale_segments

pytestmark = pytest.mark.timeout(60)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SPECS = [("counts", (4,), np.int64), ("frames", (3, 5, 5), np.uint8)]


def segment_exists(name: str) -> bool:
    return os.path.exists(os.path.join(SHM_DIR, name))


def child_writes(handle, value) -> None:
    arrays = SharedArrays.attach(handle)
    arrays["counts"][:] = value
    arrays["frames"][1] = value
    arrays.close()


def test_spawned_child_writes_owner_reads_and_only_owner_unlinks():
    arrays = SharedArrays.create(SPECS, fill={"counts": -1, "frames": 0xA5})
    name = arrays.handle.segment_name
    assert name.startswith(f"asyncrl_{os.getpid()}_")
    assert arrays["counts"].tolist() == [-1] * 4 and np.all(arrays["frames"] == 0xA5)
    proc = mp.get_context("spawn").Process(target=child_writes, args=(arrays.handle, 7))
    proc.start()
    proc.join(30)
    assert proc.exitcode == 0
    assert arrays["counts"].tolist() == [7] * 4
    assert np.all(arrays["frames"][1] == 7) and np.all(arrays["frames"][0] == 0xA5)
    assert segment_exists(name)  # the child's close did not unlink
    arrays.close()
    assert not segment_exists(name)


ATTACH_SCRIPT = """
import pickle, sys
from common.replay.shm import SharedArrays
arrays = SharedArrays.attach(pickle.loads(bytes.fromhex(sys.argv[1])))
arrays["counts"][0] = 42
arrays.close()
"""


def test_unrelated_process_attach_neither_unlinks_nor_warns():
    # A process outside the owner's tree has its own resource_tracker; were the attach registered, that
    # tracker would unlink the owner's segment at exit and print a "leaked shared_memory" warning.
    import pickle

    arrays = SharedArrays.create(SPECS)
    name = arrays.handle.segment_name
    result = subprocess.run(
        [sys.executable, "-c", ATTACH_SCRIPT, pickle.dumps(arrays.handle).hex()],
        cwd=REPO, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "leaked" not in result.stderr and "Traceback" not in result.stderr, result.stderr
    assert segment_exists(name)
    assert arrays["counts"][0] == 42
    arrays.close()
    assert not segment_exists(name)


OWNER_SCRIPT = """
import sys, time
import numpy as np
from common.replay.shm import SharedArrays
arrays = SharedArrays.create([("x", (1000,), np.float64)])
print(arrays.handle.segment_name, flush=True)
time.sleep(60)
"""


def test_killed_owner_segment_removed_by_cleanup():
    owner = subprocess.Popen([sys.executable, "-c", OWNER_SCRIPT], cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        name = owner.stdout.readline().strip()
        assert name.startswith(f"asyncrl_{owner.pid}_")
        assert segment_exists(name)
    finally:
        owner.send_signal(signal.SIGKILL)
        owner.wait(30)
        owner.stdout.close()
    time.sleep(0.1)
    assert segment_exists(name)  # a SIGKILLed owner leaves it behind ...
    assert name in cleanup_stale_segments()  # ... and the next start removes it
    assert not segment_exists(name)


def test_cleanup_keeps_live_owners_segments():
    arrays = SharedArrays.create(SPECS)
    assert arrays.handle.segment_name not in cleanup_stale_segments()
    assert segment_exists(arrays.handle.segment_name)
    arrays.close()
