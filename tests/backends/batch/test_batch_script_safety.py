"""What a job script may hold: no line a user's option can inject, no key the executor makes."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

import plait as pl
from plait.backends.providers import (
    CondorProvider,
    GridEngineProvider,
    JobState,
    LSFProvider,
    PBSProProvider,
    SlurmProvider,
)
from plait.backends.providers._scheduler import BatchProvider
from plait.backends.zmq._curve import Keys

INJECTED = "x\ntouch /tmp/pwned"

# Every single-line text option of every scheduler.
FIELDS = [
    (SlurmProvider, "partition"),
    (SlurmProvider, "account"),
    (SlurmProvider, "walltime"),
    (SlurmProvider, "job_dir"),
    (PBSProProvider, "queue"),
    (PBSProProvider, "account"),
    (LSFProvider, "queue"),
    (LSFProvider, "account"),
    (CondorProvider, "account"),
    (GridEngineProvider, "queue"),
    (GridEngineProvider, "pe"),
]
PROVIDERS = [SlurmProvider, PBSProProvider, LSFProvider, CondorProvider, GridEngineProvider]


@pytest.mark.parametrize(("provider", "field"), FIELDS, ids=lambda v: getattr(v, "__name__", v))
@pytest.mark.parametrize("text", [INJECTED, "x\rtouch /tmp/pwned", "01:00:00\n", "x\x00y"])
def test_a_control_character_in_an_option_is_refused_naming_the_field(
    provider: type[BatchProvider], field: str, text: str
) -> None:
    with pytest.raises(ValueError, match=rf"^{provider.__name__}\b.*\b{field}\b") as refused:
        provider(check_commands=False, **{field: text})
    assert "one line" in str(refused.value) or field == "walltime"  # a walltime has its own format to fail  # type: ignore[arg-type]


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("options", [[INJECTED], ["--mem=1G", "x\r\nrm -rf ~"], INJECTED])
def test_a_newline_in_a_scheduler_option_is_refused(provider: type[BatchProvider], options: Sequence[str]) -> None:
    with pytest.raises(ValueError, match=rf"{provider.__name__}: scheduler_options=.* must be one line"):
        provider(check_commands=False, scheduler_options=options)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_worker_init_is_the_users_own_shell_and_may_span_lines(provider: type[BatchProvider]) -> None:
    init = "module load python\ncat <<EOF\nhello\nEOF"
    script = provider(check_commands=False, worker_init=init).job_script(["true"], "job")
    assert init in script


def test_a_provider_given_to_zmq_executor_as_its_first_argument_is_refused_saying_where_it_goes() -> None:
    # BatchExecutor(provider) takes it first: ZMQExecutor(provider) put it in the label.
    message = r"first argument is its label, not a SlurmProvider: .*ZMQExecutor\(provider=\.\.\.\)"
    with pytest.raises(TypeError, match=message):
        pl.ZMQExecutor(SlurmProvider(check_commands=False))  # type: ignore[arg-type]


@pytest.mark.parametrize("executor", [pl.ZMQExecutor, pl.BatchExecutor])
def test_an_executor_label_names_jobs_so_it_must_be_one_line(executor: type[object]) -> None:
    provider = SlurmProvider(check_commands=False)
    with pytest.raises(ValueError, match=r"label=.* must be one line"):
        executor(provider=provider, label=INJECTED)  # type: ignore[call-arg]
    with pytest.raises(ValueError, match=r"job_name=.* must be one line"):
        provider.job_script(["true"], INJECTED)


class RecordingSlurm(SlurmProvider):
    """A Slurm that keeps the scripts it is asked to submit and runs none of them."""

    scripts: list[str]

    def submit(self, command: Sequence[str], job_name: str, env: dict[str, str] | None = None) -> str:
        self.scripts.append(self.job_script(command, job_name, env))
        return str(len(self.scripts))

    def status(self, job_ids: Sequence[str]) -> dict[str, JobState]:
        return dict.fromkeys(job_ids, JobState.PENDING)

    def cancel(self, job_ids: Sequence[str]) -> None:
        pass


@pytest.fixture
def umask_022() -> Iterator[None]:
    old = os.umask(0o022)
    yield
    os.umask(old)


@pytest.mark.usefixtures("umask_022")
def test_a_pool_job_script_names_the_key_file_and_holds_no_key(tmp_path: Path) -> None:
    provider = RecordingSlurm(job_dir=tmp_path, check_commands=False)
    provider.scripts = []
    executor = pl.ZMQExecutor(provider=provider)
    with pl.Runtime([executor]):
        (script,) = provider.scripts
        keys, key_file = executor.keys, executor.key_file
        assert keys is not None and key_file is not None
        assert key_file.parent == tmp_path, "the key file is where the compute nodes read the job's files"
        assert f"--key-file {key_file}" in script
        for key in (keys.client_secret, keys.client_public, keys.server_secret, keys.server_public):
            assert key.decode() not in script
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert not key_file.exists()


@pytest.mark.usefixtures("umask_022")
def test_the_key_file_is_created_owner_only_whatever_the_umask(tmp_path: Path) -> None:
    key_file = Keys.generate().write_client_file(tmp_path / "new")
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert Keys.generate().write_client_file(tmp_path / "new") != key_file, "a new file each time, never reused"
