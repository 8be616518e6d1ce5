"""Batch providers without a cluster: rendered scripts, parsers on recorded output, and the
command lines they run (against stand-in commands that answer with recorded output)."""

from __future__ import annotations

from pathlib import Path

import pytest

from plait.backends.providers import (
    CondorProvider,
    GridEngineProvider,
    JobState,
    LSFProvider,
    PBSProProvider,
    SchedulerError,
    SlurmProvider,
)
from plait.backends.providers._condor import parse_condor
from plait.backends.providers._gridengine import parse_qacct, parse_qstat
from plait.backends.providers._lsf import parse_bjobs
from plait.backends.providers._pbspro import parse_pbs_json
from plait.backends.providers._slurm import parse_squeue
from tests.backends.batch.support import RECORDED, FakeScheduler

COMMAND = ["/opt/env/bin/python", "-m", "plait.worker", "--url", "tcp://login01:5555"]
COMMON = {"job_dir": "/shared/jobs", "walltime": "02:30:00", "check_commands": False, "account": "proj42"}
ENV = {"PLAIT_TOKEN": "a b"}
INIT = "module load python/3.11\nsource /opt/env/bin/activate"
BODY = """
export PLAIT_TOKEN='a b'
module load python/3.11
source /opt/env/bin/activate
"""


def test_slurm_script_multi_node_with_srun() -> None:
    provider = SlurmProvider(
        partition="compute",
        nodes_per_block=2,
        cores_per_node=8,
        launcher="srun",
        scheduler_options=["--mem=0", "#SBATCH --exclusive"],
        worker_init=INIT,
        **COMMON,
    )
    assert provider.job_script(COMMAND, "plait-block-1", ENV) == (
        "#!/bin/bash\n"
        "#SBATCH --job-name=plait-block-1\n"
        "#SBATCH --output=/shared/jobs/plait-block-1.out\n"
        "#SBATCH --error=/shared/jobs/plait-block-1.err\n"
        "#SBATCH --nodes=2\n"
        "#SBATCH --ntasks-per-node=1\n"
        "#SBATCH --cpus-per-task=8\n"
        "#SBATCH --time=02:30:00\n"
        "#SBATCH --partition=compute\n"
        "#SBATCH --account=proj42\n"
        "#SBATCH --mem=0\n"
        "#SBATCH --exclusive\n"
        f"{BODY}"
        "srun --nodes=2 --ntasks-per-node=1 /opt/env/bin/python -m plait.worker --url tcp://login01:5555\n"
    )
    assert provider.workers_per_block == 8, "the launcher starts a pool of 8 workers on each of the 2 nodes"


def test_slurm_walltime_of_days() -> None:
    script = SlurmProvider(walltime="2-00:00:05", check_commands=False).job_script(["true"], "j")
    assert "#SBATCH --time=2-00:00:05\n" in script


def test_pbspro_script() -> None:
    provider = PBSProProvider(
        queue="workq",
        nodes_per_block=3,
        cores_per_node=4,
        launcher="mpiexec",
        scheduler_options="-l place=excl",
        worker_init=INIT,
        **COMMON,
    )
    assert provider.job_script(COMMAND, "plait-block-2", ENV) == (
        "#!/bin/bash\n"
        "#PBS -N plait-block-2\n"
        "#PBS -o /shared/jobs/plait-block-2.out\n"
        "#PBS -e /shared/jobs/plait-block-2.err\n"
        "#PBS -l select=3:ncpus=4\n"
        "#PBS -l place=scatter\n"
        "#PBS -l walltime=02:30:00\n"
        "#PBS -q workq\n"
        "#PBS -A proj42\n"
        "#PBS -l place=excl\n"
        f"{BODY}"
        "mpiexec -n 3 -ppn 1 /opt/env/bin/python -m plait.worker --url tcp://login01:5555\n"
    )


def test_lsf_script() -> None:
    provider = LSFProvider(
        queue="normal",
        nodes_per_block=2,
        cores_per_node=4,
        launcher="mpiexec",
        walltime="00:30:30",
        scheduler_options=["-R 'rusage[mem=4000]'"],
        job_dir="/shared/jobs",
        check_commands=False,
    )
    assert provider.job_script(COMMAND, "plait-block-3") == (
        "#!/bin/bash\n"
        "#BSUB -J plait-block-3\n"
        "#BSUB -o /shared/jobs/plait-block-3.out\n"
        "#BSUB -e /shared/jobs/plait-block-3.err\n"
        "#BSUB -n 8\n"
        '#BSUB -R "span[ptile=4]"\n'
        "#BSUB -W 31\n"
        "#BSUB -q normal\n"
        "#BSUB -R 'rusage[mem=4000]'\n"
        "\n"
        "mpiexec -n 2 -ppn 1 /opt/env/bin/python -m plait.worker --url tcp://login01:5555\n"
    )


def test_gridengine_script() -> None:
    provider = GridEngineProvider(queue="all.q", cores_per_node=4, pe="mpi", **COMMON)
    assert provider.job_script(COMMAND, "plait-block-4") == (
        "#!/bin/bash\n"
        "#$ -N plait-block-4\n"
        "#$ -o /shared/jobs/plait-block-4.out\n"
        "#$ -e /shared/jobs/plait-block-4.err\n"
        "#$ -S /bin/bash\n"
        "#$ -cwd\n"
        "#$ -l h_rt=02:30:00\n"
        "#$ -pe mpi 4\n"
        "#$ -q all.q\n"
        "#$ -P proj42\n"
        "\n"
        "/opt/env/bin/python -m plait.worker --url tcp://login01:5555\n"
    )


def test_condor_script_and_submit_description() -> None:
    provider = CondorProvider(
        cores_per_node=2,
        scheduler_options=["requirements = (OpSysMajorVer == 9)", "request_memory = 2 GB"],
        worker_init="source /opt/env/bin/activate",
        **COMMON,
    )
    assert provider.job_script(COMMAND, "plait-block-5") == (
        "#!/bin/bash\n\nsource /opt/env/bin/activate\n/opt/env/bin/python -m plait.worker --url tcp://login01:5555\n"
    )
    assert provider.submit_description("plait-block-5") == (
        "universe = vanilla\n"
        "executable = /shared/jobs/plait-block-5.sh\n"
        "batch_name = plait-block-5\n"
        "output = /shared/jobs/plait-block-5.out\n"
        "error = /shared/jobs/plait-block-5.err\n"
        "log = /shared/jobs/plait-block-5.log\n"
        "request_cpus = 2\n"
        "periodic_remove = (JobStatus == 2) && ((time() - EnteredCurrentStatus) > 9000)\n"
        "accounting_group = proj42\n"
        "requirements = (OpSysMajorVer == 9)\n"
        "request_memory = 2 GB\n"
        "queue 1\n"
    )


# -- parsers against recorded output ---------------------------------------------------------


def test_parse_squeue_recorded() -> None:
    assert parse_squeue((RECORDED / "slurm_squeue.txt").read_text()) == {
        "16": JobState.RUNNING,
        "17": JobState.HELD,
        "18": JobState.FAILED,
        "19": JobState.COMPLETED,
        "20": JobState.CANCELLED,
    }
    assert parse_squeue((RECORDED / "slurm_squeue_timeout.txt").read_text()) == {"21": JobState.TIMEOUT}


def test_parse_pbspro_recorded() -> None:
    assert parse_pbs_json((RECORDED / "pbspro_qstat.json").read_text()) == {
        "1201.pbs01": JobState.RUNNING,
        "1202.pbs01": JobState.PENDING,
        "1203.pbs01": JobState.HELD,
        "1198.pbs01": JobState.COMPLETED,
        "1199.pbs01": JobState.FAILED,
        "1200.pbs01": JobState.CANCELLED,
        "1197.pbs01": JobState.TIMEOUT,
    }


def test_parse_bjobs_recorded() -> None:
    assert parse_bjobs((RECORDED / "lsf_bjobs.txt").read_text()) == {
        "4711": JobState.RUNNING,
        "4712": JobState.PENDING,
        "4713": JobState.HELD,
        "4714": JobState.COMPLETED,
        "4715": JobState.FAILED,
        "4716": JobState.CANCELLED,
        "4717": JobState.TIMEOUT,
    }


def test_parse_condor_recorded() -> None:
    assert parse_condor((RECORDED / "condor_q.txt").read_text()) == {
        "3301.0": JobState.RUNNING,
        "3302.0": JobState.PENDING,
        "3303.0": JobState.HELD,
        "3304.0": JobState.CANCELLED,
    }
    assert parse_condor((RECORDED / "condor_history.txt").read_text()) == {
        "3299.0": JobState.COMPLETED,
        "3300.0": JobState.FAILED,
    }


def test_parse_gridengine_recorded() -> None:
    assert parse_qstat((RECORDED / "sge_qstat.txt").read_text()) == {
        "5": JobState.RUNNING,
        "6": JobState.PENDING,
        "7": JobState.HELD,
        "8": JobState.FAILED,
    }
    assert parse_qacct((RECORDED / "sge_qacct.txt").read_text()) == {
        "9": JobState.COMPLETED,
        "10": JobState.FAILED,
        "11": JobState.CANCELLED,
    }


# -- the commands a provider runs --------------------------------------------------------------


def test_pbspro_submit_status_cancel_commands(fake: FakeScheduler, tmp_path: Path) -> None:
    fake.install("qsub", "qstat", "qdel")
    provider = PBSProProvider(queue="workq", job_dir=tmp_path / "jobs")
    fake.answer("qsub", stdout="1204.pbs01\n")
    assert provider.submit(["echo", "hi"], "plait-block-9") == "1204.pbs01"
    script = tmp_path / "jobs" / "plait-block-9.sh"
    assert script.read_text() == provider.job_script(["echo", "hi"], "plait-block-9")
    # One call for every job; a job PBS has forgotten is named on stderr and is UNKNOWN.
    fake.answer(
        "qstat",
        stdout=(RECORDED / "pbspro_qstat.json").read_text(),
        stderr=(RECORDED / "pbspro_qstat_unknown_stderr.txt").read_text(),
        rc=153,
    )
    states = provider.status(["1201.pbs01", "1198.pbs01", "1190.pbs01"])
    assert states == {"1201.pbs01": JobState.RUNNING, "1198.pbs01": JobState.COMPLETED, "1190.pbs01": JobState.UNKNOWN}
    provider.cancel(["1201.pbs01", "1202.pbs01"])
    assert [call["argv"] for call in fake.calls()] == [
        ["qsub", str(script)],
        ["qstat", "-x", "-f", "-F", "json", "1201.pbs01", "1198.pbs01", "1190.pbs01"],
        ["qdel", "1201.pbs01", "1202.pbs01"],
    ]


def test_lsf_submits_the_script_on_stdin(fake: FakeScheduler, tmp_path: Path) -> None:
    fake.install("bsub", "bjobs", "bkill")
    fake.answer("bsub", stdout=(RECORDED / "lsf_bsub.txt").read_text())
    provider = LSFProvider(job_dir=tmp_path)
    assert provider.submit(["echo", "hi"], "plait-task-1") == "4718"
    (call,) = fake.calls()
    assert call["argv"] == ["bsub"]
    assert call["stdin"] == provider.job_script(["echo", "hi"], "plait-task-1")


def test_condor_history_confirms_jobs_gone_from_the_queue(fake: FakeScheduler, tmp_path: Path) -> None:
    fake.install("condor_submit", "condor_q", "condor_rm", "condor_history")
    fake.answer("condor_submit", stdout=(RECORDED / "condor_submit.txt").read_text())
    provider = CondorProvider(job_dir=tmp_path)
    assert provider.submit(["echo", "hi"], "plait-task-2") == "3305.0"
    assert (tmp_path / "plait-task-2.sub").read_text() == provider.submit_description("plait-task-2")
    fake.answer("condor_q", stdout=(RECORDED / "condor_q.txt").read_text())
    fake.answer("condor_history", stdout=(RECORDED / "condor_history.txt").read_text())
    assert provider.status(["3301.0", "3299.0", "3300.0", "3298.0"]) == {
        "3301.0": JobState.RUNNING,
        "3299.0": JobState.COMPLETED,
        "3300.0": JobState.FAILED,
        "3298.0": JobState.UNKNOWN,
    }
    history = ["condor_history", "3299.0", "3300.0", "3298.0", "-af:j", "JobStatus", "ExitCode"]
    assert fake.calls()[-1]["argv"] == history


def test_gridengine_confirms_with_qacct(fake: FakeScheduler, tmp_path: Path) -> None:
    fake.install("qsub", "qstat", "qdel", "qacct")
    fake.answer("qstat", stdout=(RECORDED / "sge_qstat.txt").read_text())
    fake.answer("qacct", stdout=(RECORDED / "sge_qacct.txt").read_text())
    provider = GridEngineProvider(job_dir=tmp_path)
    assert provider.status(["5", "9"]) == {"5": JobState.RUNNING, "9": JobState.COMPLETED}


def test_a_refused_submit_names_the_scheduler_message(fake: FakeScheduler, tmp_path: Path) -> None:
    fake.install("sbatch", "squeue", "scancel")
    fake.answer("sbatch", stderr=(RECORDED / "slurm_sbatch_partition_stderr.txt").read_text(), rc=1)
    with pytest.raises(SchedulerError, match=r"partition='nope'.*invalid partition specified: nope"):
        SlurmProvider(partition="nope", job_dir=tmp_path).submit(["true"], "plait-task-3")


def test_a_scheduler_command_that_hangs_times_out(fake: FakeScheduler, tmp_path: Path) -> None:
    fake.install("sbatch", "squeue", "scancel")
    fake.answer("squeue", sleep=30)
    provider = SlurmProvider(job_dir=tmp_path, command_timeout=0.5)
    with pytest.raises(SchedulerError, match=r"`squeue .*` did not answer within 0.5 s"):
        provider.status(["1"])


# -- bad input ---------------------------------------------------------------------------------


def test_missing_scheduler_command_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(SchedulerError, match="'sbatch' is not on PATH"):
        SlurmProvider()
    with pytest.raises(SchedulerError, match="'bsub' is not on PATH"):
        LSFProvider()


@pytest.mark.parametrize("walltime", ["1h", "90", "01:60:00", "1:2", ""])
def test_bad_walltime_is_named(walltime: str) -> None:
    with pytest.raises(ValueError, match=rf"PBSProProvider\(walltime='{walltime}'\).*\[D-\]HH:MM:SS"):
        PBSProProvider(walltime=walltime, check_commands=False)


def test_unknown_option_is_named() -> None:
    with pytest.raises(TypeError, match="partiton"):
        SlurmProvider(partiton="debug", check_commands=False)  # type: ignore[call-arg]


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"launcher": "ssh"}, "launcher='ssh'"),
        ({"nodes_per_block": 2}, "nodes_per_block=2"),
        ({"cores_per_node": 0}, "cores_per_node=0"),
        ({"min_blocks": 3, "max_blocks": 2}, "min_blocks=3"),
    ],
)
def test_bad_block_options_are_named(options: dict[str, object], named: str) -> None:
    with pytest.raises(ValueError, match=named):
        SlurmProvider(check_commands=False, **options)  # type: ignore[arg-type]


def test_condor_refuses_multi_node_blocks() -> None:
    with pytest.raises(ValueError, match=r"CondorProvider\(nodes_per_block=2\)"):
        CondorProvider(nodes_per_block=2, launcher="srun", check_commands=False)
