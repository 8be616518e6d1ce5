"""Parsl's user-facing module paths, mirrored: scripts change only their imports."""

from __future__ import annotations

import importlib
import os

import pytest

from plait.compat import parsl

NAMES = {
    "plait.compat.parsl": ["python_app", "bash_app", "join_app", "File", "load", "clear", "dfk", "Config",
                           "AUTO_LOGNAME", "ThreadPoolExecutor", "HighThroughputExecutor", "wait_for_current_tasks",
                           "set_stream_logger", "set_file_logger", "DataFlowKernelLoader"],
    "plait.compat.parsl.app.app": ["python_app", "bash_app", "join_app"],
    "plait.compat.parsl.app.errors": ["BashExitFailure", "AppTimeout", "AppBadFormatting", "AppException",
                                      "MissingOutputs", "BadStdStreamFile", "BashAppNoReturn"],
    "plait.compat.parsl.app.futures": ["DataFuture"],
    "plait.compat.parsl.app.python": ["PythonApp", "timeout"],
    "plait.compat.parsl.dataflow.dflow": ["DataFlowKernel", "DataFlowKernelLoader"],
    "plait.compat.parsl.dataflow.errors": ["DependencyError", "JoinError"],
    "plait.compat.parsl.dataflow.futures": ["AppFuture"],
    "plait.compat.parsl.data_provider.files": ["File"],
    "plait.compat.parsl.config": ["Config"],
    "plait.compat.parsl.executors": ["ThreadPoolExecutor", "HighThroughputExecutor"],
    "plait.compat.parsl.executors.threads": ["ThreadPoolExecutor"],
    "plait.compat.parsl.providers": ["LocalProvider", "SlurmProvider", "PBSProProvider", "LSFProvider",
                                     "CondorProvider", "GridEngineProvider"],
    "plait.compat.parsl.errors": ["ConfigurationError", "NoDataFlowKernelError"],
    "plait.compat.parsl.launchers": ["SingleNodeLauncher", "SimpleLauncher", "SrunLauncher", "MpiExecLauncher"],
    "plait.compat.parsl.tests.configs.local_threads": ["config", "fresh_config"],
    "plait.compat.parsl.tests.configs.htex_local": ["fresh_config"],
}  # fmt: skip


@pytest.mark.parametrize("module", sorted(NAMES))
def test_module_has_parsls_names(module: str) -> None:
    loaded = importlib.import_module(module)
    assert [n for n in NAMES[module] if not hasattr(loaded, n)] == []


def test_file_paths_and_urls() -> None:
    local = parsl.File("data/in.txt")
    assert (local.filepath, local.filename, local.scheme) == ("data/in.txt", "in.txt", "file")
    assert os.fspath(local) == str(local) == "data/in.txt"
    remote = parsl.File("globus://endpoint/data/in.txt")
    with pytest.raises(ValueError, match="does not stage globus"):
        remote.filepath  # noqa: B018


def test_providers_map_to_plaits() -> None:
    from plait.compat.parsl.launchers import SrunLauncher

    slurm = parsl.providers.SlurmProvider(
        partition="debug", walltime="00:10:00", cmd_timeout=5, parallelism=1, launcher=SrunLauncher()
    )
    made = slurm.to_plait(None)
    assert (type(made).__name__, made.partition, made.command_timeout) == ("SlurmProvider", "debug", 5)
    assert made.launcher == "srun"
    with pytest.raises(TypeError, match=r"SlurmProvider: .*no_such"):
        parsl.providers.SlurmProvider(no_such=1).to_plait(None)
    with pytest.raises(TypeError, match="worker_init"):
        parsl.providers.LocalProvider(worker_init="module load x").to_plait(2)


def test_unknown_config_arguments_are_refused() -> None:
    with pytest.raises(parsl.errors.ConfigurationError, match="no_such"):
        parsl.Config(no_such=1)
    with pytest.raises(TypeError, match="no_such"):
        parsl.HighThroughputExecutor(no_such=1)


def test_set_stream_logger_shows_plaits_log_and_can_be_removed() -> None:
    import io
    import logging

    stream = io.StringIO()
    remove = parsl.set_stream_logger(stream=stream)
    logging.getLogger("plait.zmq").info("a line from plait")
    remove()
    logging.getLogger("plait.zmq").info("after removal")
    assert "a line from plait" in stream.getvalue() and "after removal" not in stream.getvalue()
