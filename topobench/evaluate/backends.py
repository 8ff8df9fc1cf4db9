"""Backends: where the per-case task (:func:`~topobench.evaluate.case.evaluate_pair`) runs.

- :func:`serial`: in this process, one case after another;
- :func:`process_pool`: a pool of worker processes (forkserver) with a bounded number of cases
  in flight; the workers end with this process, even when it is killed;
- :func:`dask`: a Dask cluster (an address, or ``"local"``).

Each yields a :class:`~topobench.evaluate.case.CaseResult` per task as the cases finish (in any
order) and never raises for a bad case.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

from topobench.errors import TopobenchError
from topobench.evaluate.case import CaseResult, CaseTask, _reason, evaluate_pair

__all__ = ["available_cores", "closing", "dask", "process_pool", "serial"]


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity where the OS reports it)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def serial(tasks: Iterator[CaseTask]) -> Iterator[CaseResult]:
    for task in tasks:
        yield evaluate_pair(task)


def _exit_with_parent(death: Any) -> None:
    """Pool worker initializer: end this worker as soon as the main process ends.

    ``death`` is the read end of a pipe whose only write end the main process holds; the
    kernel closes it when that process dies (even by SIGKILL), the read end then reports
    end-of-file and the watcher thread ends the worker. (Without it, workers blocked on their
    task queue, and the forkserver whose pipe they hold, outlive a killed run.)
    """
    import threading

    def watch() -> None:
        try:
            death.poll(None)
        except (OSError, EOFError, ValueError):
            pass
        os._exit(1)

    threading.Thread(target=watch, name="topobench-parent-watch", daemon=True).start()


def process_pool(tasks: Iterator[CaseTask], workers: int) -> Iterator[CaseResult]:
    """Evaluate in ``workers`` processes with at most ``2 * workers`` cases in flight."""
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
    from concurrent.futures.process import BrokenProcessPool

    # forkserver: safe beside the threads of a progress display; the server imports the
    # metrics once, so that each worker starts as a cheap fork of it.
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["topobench.evaluate"])
    death_r, death_w = context.Pipe(duplex=False)  # workers end when this process does

    def pool() -> Any:
        return ProcessPoolExecutor(
            max_workers=workers,
            mp_context=context,
            initializer=_exit_with_parent,
            initargs=(death_r,),
        )

    ahead = 2 * workers
    pending: dict[Any, CaseTask] = {}
    executor = pool()
    try:
        exhausted = False
        while True:
            while not exhausted and len(pending) < ahead:
                task = next(tasks, None)
                if task is None:
                    exhausted = True
                    break
                pending[executor.submit(evaluate_pair, task)] = task
            if not pending:
                break
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            broken = False
            for future in done:
                task = pending.pop(future)
                try:
                    yield future.result()
                except BrokenProcessPool:
                    broken = True
                    yield CaseResult(task.pair.case, error="worker process died (out of memory?)")
            if broken:  # every case in flight is lost with the pool: report them, start afresh
                for task in pending.values():
                    yield CaseResult(task.pair.case, error="worker process died (out of memory?)")
                pending.clear()
                executor.shutdown(wait=False, cancel_futures=True)
                executor = pool()
    finally:
        executor.shutdown(wait=True, cancel_futures=True)
        death_w.close()
        death_r.close()


def dask(
    tasks: Iterator[CaseTask], address: str, workers: int, timeout: float
) -> Iterator[CaseResult]:
    """Evaluate on a Dask cluster (``"local"``: start a LocalCluster of ``workers`` processes)."""
    try:
        from distributed import Client, LocalCluster, as_completed
    except ImportError:
        raise TopobenchError(
            "running on Dask needs the optional dependency: pip install 'topobench[dask]'"
        ) from None
    cluster = None
    if address == "local":
        cluster = LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None
        )
        client = Client(cluster)
    else:
        try:
            client = Client(address, timeout=timeout)
        except Exception as exc:  # OSError, TimeoutError, ValueError for a bad address...
            raise TopobenchError(
                f"cannot connect to the Dask scheduler at {address}: {exc}"
            ) from exc
    try:
        ahead = 2 * max(sum(client.nthreads().values()), 1)
        futures = as_completed()
        cases: dict[str, str] = {}

        def submit() -> bool:
            task = next(tasks, None)
            if task is None:
                return False
            future = client.submit(evaluate_pair, task, pure=False)
            cases[future.key] = task.pair.case
            futures.add(future)
            return True

        for _ in range(ahead):
            if not submit():
                break
        for future in futures:
            case = cases.pop(future.key)
            try:
                yield future.result()
            except Exception as exc:  # a worker lost, or a task cancelled
                yield CaseResult(case, error=f"Dask task failed: {_reason(exc)}")
            future.release()
            submit()
    finally:
        client.close()
        if cluster is not None:
            cluster.close()



def closing(results: Iterator[CaseResult]) -> Iterator[CaseResult]:
    """``results``, closed (its pool or cluster shut down) however the loop over it ends."""
    try:
        yield from results
    finally:
        close = getattr(results, "close", None)
        if close is not None:
            close()
