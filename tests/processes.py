"""Child processes the tests start (a hub node, a browser): stopped by their own PID."""

from __future__ import annotations

import subprocess


def stop(process: subprocess.Popen, grace: float = 10.0) -> None:
    """SIGTERM, and SIGKILL if it has not exited within `grace` seconds."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
