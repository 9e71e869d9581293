"""Many processes on JAX's distributed runtime.

``jax.distributed.initialize`` connects the processes of a run through a coordinator
(process 0 at ``HOST:PORT``); on SLURM (``srun``) and Open MPI it finds the process count,
the process id and the coordinator itself.  Each process then solves its share of the
grid on its local devices and writes its own store; at the end the rows travel to
process 0 through the runtime (:func:`gather_bytes`, an all-gather over the processes), so
the processes need no shared filesystem.

``jax.distributed.initialize`` aborts the whole process (a C++ fatal error, not a Python
exception) when the coordinator cannot be reached or not every process joins within its
timeout.  :func:`initialize` therefore checks first that something listens at the
coordinator's address (processes other than 0) and runs a watchdog: if the runtime is not
up within ``timeout`` seconds it prints ONE clear line on stderr and ends the process with
exit code 2, before JAX's own, later deadline.
"""
from __future__ import annotations

import os
import socket
import sys
import threading
import time
from typing import Any, NamedTuple, Sequence

import numpy as np

__all__ = ["Cluster", "resolve_cluster", "initialize", "gather_bytes", "barrier",
           "parse_coordinator", "CoordinatorError"]

#: exit code of a process whose coordinator could not be reached in time
EXIT_UNREACHABLE = 2


class CoordinatorError(RuntimeError):
    """The coordinator could not be reached (raised before JAX is touched)."""


class Cluster(NamedTuple):
    """Where this process stands: ``num_processes``, ``process_id``, ``coordinator``
    (``None`` for one process or auto-detection), and ``auto`` (let JAX detect)."""
    num_processes: int
    process_id: int
    coordinator: str | None
    auto: bool


def parse_coordinator(text: Any) -> tuple[str, int]:
    """``"HOST:PORT"`` -> ``(host, port)`` (IPv6 as ``[::1]:1234``).

    Raises
    ------
    ValueError
        Not ``HOST:PORT`` with a port in 1..65535.
    """
    s = str(text).strip()
    host, sep, port = s.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"--coordinator: expected HOST:PORT (e.g. 10.0.0.1:12345), got {text!r}")
    return host, int(port)


def resolve_cluster(num_processes: Any = None, process_id: Any = None,
                    coordinator: Any = None) -> Cluster:
    """Check the three options together; with none given, detect a SLURM job step of
    several tasks (``SLURM_NTASKS`` > 1 with ``SLURM_PROCID``) or an Open MPI launch
    (``OMPI_COMM_WORLD_SIZE`` > 1) and leave the rest to JAX's cluster detection.

    Raises
    ------
    ValueError
        Options given partly, or inconsistent (the message names them).
    """
    given = [x is not None for x in (num_processes, process_id, coordinator)]
    if not any(given):
        nt = os.environ.get("SLURM_NTASKS") or os.environ.get("SLURM_NPROCS")
        if nt and nt.isdigit() and int(nt) > 1 and os.environ.get("SLURM_PROCID", "").isdigit():
            return Cluster(int(nt), int(os.environ["SLURM_PROCID"]), None, True)
        ws = os.environ.get("OMPI_COMM_WORLD_SIZE", "")
        if ws.isdigit() and int(ws) > 1 and os.environ.get("OMPI_COMM_WORLD_RANK", "").isdigit():
            return Cluster(int(ws), int(os.environ["OMPI_COMM_WORLD_RANK"]), None, True)
        return Cluster(1, 0, None, False)
    for name, val in (("--num-processes", num_processes), ("--process-id", process_id)):
        if val is not None and (isinstance(val, bool) or not isinstance(val, int)):
            raise ValueError(f"{name}: expected an integer, got {val!r}")
    if num_processes is not None and num_processes < 1:
        raise ValueError(f"--num-processes: must be >= 1, got {num_processes}")
    if num_processes == 1 and process_id in (None, 0) and coordinator is None:
        return Cluster(1, 0, None, False)
    if not all(given):
        missing = [n for n, g in zip(("--num-processes", "--process-id", "--coordinator"),
                                     given) if not g]
        raise ValueError(f"{', '.join(missing)}: a multi-process run needs --num-processes, "
                         "--process-id and --coordinator together")
    if not 0 <= process_id < num_processes:
        raise ValueError(f"--process-id: must be in 0..{num_processes - 1} for "
                         f"--num-processes {num_processes}, got {process_id}")
    parse_coordinator(coordinator)
    return Cluster(int(num_processes), int(process_id), str(coordinator), False)


def _wait_for_listener(host: str, port: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=1.0):
                return True
        except OSError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.2)


def initialize(cluster: Cluster, *, timeout: float = 60.0,
               local_device_ids: Sequence[int] | None = None) -> None:
    """Start JAX's distributed runtime for ``cluster`` (nothing for one process).

    Must run before this process computes anything with JAX.

    Parameters
    ----------
    cluster : Cluster
    timeout : float
        Seconds to wait for the coordinator and for every process to join.
    local_device_ids : list of int, optional
        Restrict this process to these local devices (e.g. one GPU per process).

    Raises
    ------
    CoordinatorError
        Nothing listens at the coordinator's address within ``timeout`` (processes other
        than 0), raised before JAX is touched.  If processes are missing at the
        rendezvous, the watchdog ends the process instead (see the module docstring).
    """
    if cluster.num_processes == 1 and not cluster.auto:
        return
    import jax
    if not cluster.auto and cluster.process_id != 0:
        host, port = parse_coordinator(cluster.coordinator)
        if not _wait_for_listener(host, port, timeout):
            raise CoordinatorError(
                f"--coordinator {cluster.coordinator}: no coordinator reachable within "
                f"{timeout:g} s (is process 0 running, and is HOST:PORT its address?)")
    where = cluster.coordinator or "(auto-detected)"

    def fire() -> None:
        sys.stderr.write(f"error: --coordinator {where}: not all {cluster.num_processes} "
                         f"processes joined within {timeout:g} s; giving up (start every "
                         "process with the same --num-processes and --coordinator)\n")
        sys.stderr.flush()
        os._exit(EXIT_UNREACHABLE)

    dog = threading.Timer(timeout, fire)
    dog.daemon = True
    dog.start()
    try:
        if cluster.auto:
            jax.distributed.initialize(initialization_timeout=int(timeout) + 30,
                                       local_device_ids=local_device_ids)
        else:
            jax.distributed.initialize(cluster.coordinator, cluster.num_processes,
                                       cluster.process_id, local_device_ids=local_device_ids,
                                       initialization_timeout=int(timeout) + 30)
    finally:
        dog.cancel()


def barrier(name: str) -> None:
    """Wait until every process reaches this point (no-op for one process)."""
    import jax
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils
        multihost_utils.sync_global_devices(name)


def gather_bytes(payload: bytes) -> list[bytes]:
    """Every process's ``payload``, in process order (an all-gather over the runtime)."""
    import jax
    if jax.process_count() == 1:
        return [payload]
    from jax.experimental import multihost_utils
    n = np.array([len(payload)], np.int64)
    sizes = np.asarray(multihost_utils.process_allgather(n)).reshape(-1)
    width = max(int(sizes.max()), 1)
    buf = np.zeros(width, np.uint8)
    buf[:len(payload)] = np.frombuffer(payload, np.uint8)
    allb = np.asarray(multihost_utils.process_allgather(buf)).reshape(len(sizes), width)
    return [allb[i, :int(sizes[i])].tobytes() for i in range(len(sizes))]
