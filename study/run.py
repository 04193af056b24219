"""The timestep x bit-width study (`make study GRID=smoke|cpu|full`), one Ray task per trial.

    python -m study.run --grid cpu                       # embedded local Ray, this machine
    RAY_ADDRESS=10.0.0.5:6379 python -m study.run --grid full   # the same trials on a cluster

Each trial trains, tests and profiles one network exactly as `make qat` does (run folder
<runs-dir>/<name>/, checkpoints stay there and an interrupted trial resumes from last.pt);
its small results come back to this process, which adds the cost rows and commits them as
reports/study/runs/<name>/ (study/results.py). Trials already there are skipped, so a study
continues on any machine from what is committed. A failing trial is reported and the others
go on; a trial whose worker process dies (killed, out of memory, its node lost) runs again
from its last.pt, up to WORKER_RETRIES times. With nothing configured a Ray head starts on
this machine for the study's duration (`ray start --head --block` on 127.0.0.1: every Ray
process listens on loopback only; `ray.init` without an address would rewrite 127.0.0.1 to
the machine's network address). Ray's usage statistics are always off.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext, redirect_stderr, redirect_stdout
from datetime import UTC, datetime
from pathlib import Path

from tqdm import tqdm

from common.errors import CheckFailed, UserError, run_cli
from common.runs import LAST, METRICS, PROFILE_JSON
from quant_training.data import resolve_data_dir
from study.grid import TrialConfig, load_grid
from study.results import RUN_FILES, STUDY_DIR, is_finished, trial_dir, write_trial

ROOT = Path(__file__).resolve().parents[1]
LOOPBACK = "127.0.0.1"
NO_USAGE_STATS = {"RAY_USAGE_STATS_ENABLED": "0"}  # nothing leaves the machine
# A head on this machine, reached as 127.0.0.1 (../shared/TOOLCHAIN.md, Ray): without
# RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0, read when ray is imported, Ray resolves 127.0.0.1 to
# the machine's network address; a local head needs no token authentication.
LOCAL_HEAD_ENV = {**NO_USAGE_STATS, "RAY_AUTH_MODE": "disabled",
                  "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
HEAD_START_S = 120  # how long a local head may take to accept connections
WAIT_S = 1.0  # the driver's longest wait for a trial between checks for Ctrl-C
WORKER_RETRIES = 2  # Ray's max_retries: reruns after a worker dies, never after an exception
GPU_SHARE = 0.25  # default GPU fraction per trial: up to 4 trainings side by side on one GPU
CODE_EXCLUDES = [".git", ".venv", "runs", "logs", "reports", "data"]  # not shipped to a cluster
LOGS = "logs"  # <runs-dir>/logs/<name>.log: each trial's training output


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m study.run", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--grid", default="cpu", help="smoke | cpu | full, or a grid .toml file")
    p.add_argument("--study-dir", default=str(STUDY_DIR), help="committed results")
    p.add_argument("--runs-dir", default="runs/study", help="run folders (checkpoints)")
    p.add_argument("--data-dir", default=None,
                   help="dataset root (default $QSNN_DATA_DIR or data/)")
    p.add_argument("--cpus-per-trial", type=float, default=1.0)
    p.add_argument("--gpus-per-trial", type=float, default=None,
                   help=f"GPU fraction per trial (default {GPU_SHARE} where Ray sees a GPU, "
                        f"else 0)")
    p.add_argument("--address", default=os.environ.get("RAY_ADDRESS"),
                   help="Ray cluster head host:port (default $RAY_ADDRESS; unset = local Ray)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if not args.cpus_per_trial > 0 or (args.gpus_per_trial or 0) < 0:
        raise UserError(f"cpus_per_trial={args.cpus_per_trial} must be > 0 and "
                        f"gpus_per_trial={args.gpus_per_trial} >= 0")
    grid = load_grid(args.grid)
    pending = [t for t in grid.trials if not _committed(args.study_dir, t)]
    print(f"grid {grid.name}: {len(grid.trials)} trials, {len(grid.trials) - len(pending)} "
          f"already in {args.study_dir}, {len(pending)} to run", file=sys.stderr)
    if not pending:
        return
    data_dir = resolve_data_dir(args.data_dir).resolve()
    runs_dir = Path(args.runs_dir).resolve()
    if args.address:
        _check_reachable(args.address)
    with nullcontext(args.address) if args.address else local_head(runs_dir) as address:
        _connect(address, remote=bool(args.address))
        try:
            failed = _run(pending, grid.name, args, data_dir, runs_dir)
        finally:
            _disconnect()
    if failed:
        raise CheckFailed(f"{len(failed)} of {len(pending)} trials failed: {', '.join(failed)} "
                          f"(logs: {runs_dir / LOGS}/<name>.log)")


def _committed(study_dir: str, trial: TrialConfig) -> bool:
    """True when the trial's results are committed with this configuration."""
    if not is_finished(study_dir, trial.name):
        return False
    saved = json.loads((trial_dir(study_dir, trial.name) / "trial.json").read_text())
    diffs = trial.differences(saved["spec"], saved["train_config"])
    if diffs:
        raise UserError(f"{trial_dir(study_dir, trial.name)} was trained with other options "
                        f"({'; '.join(diffs)}); delete that folder to retrain it")
    return True


@contextmanager
def local_head(log_dir: Path, num_cpus: int | None = None) -> Iterator[str]:
    """A Ray head on this machine, listening on 127.0.0.1 only, for the duration of the block;
    yields its address. Its workers import the project from ROOT."""
    port = free_port()
    log_dir.mkdir(parents=True, exist_ok=True)
    command = [str(Path(sys.executable).with_name("ray")), "start", "--head", "--block",
               "--port", str(port), "--node-ip-address", LOOPBACK, "--include-dashboard",
               "false", "--disable-usage-stats",
               *(["--num-cpus", str(num_cpus)] if num_cpus else [])]
    env = {**os.environ, **LOCAL_HEAD_ENV, "PYTHONPATH": str(ROOT)}
    with open(log_dir / "ray_head.log", "w") as log:
        # its own session: a terminal's Ctrl-C (SIGINT to the foreground process group) must
        # reach this driver only, which then disconnects and stops the head; a head killed
        # first left ray.shutdown() waiting for it
        head = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        _wait_for_head(head, port, log_dir / "ray_head.log")
        yield f"{LOOPBACK}:{port}"
    finally:
        head.terminate()  # `ray start --block` stops the processes it started
        try:
            head.wait(timeout=60)
        except subprocess.TimeoutExpired:
            head.kill()


def _wait_for_head(head: subprocess.Popen, port: int, log: Path) -> None:
    deadline = time.monotonic() + HEAD_START_S
    while time.monotonic() < deadline:
        if head.poll() is not None:
            raise UserError(f"the local Ray head exited ({head.returncode}); see {log}")
        try:
            socket.create_connection((LOOPBACK, port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.5)
    raise UserError(f"the local Ray head did not start within {HEAD_START_S} s; see {log}")


def _connect(address: str, remote: bool) -> None:
    """Import ray with the environment the cluster needs and connect this driver; a remote
    cluster gets the project's code as its working_dir."""
    if "ray" in sys.modules:
        raise RuntimeError("ray was imported before the study chose its environment")
    os.environ.update(NO_USAGE_STATS if remote else LOCAL_HEAD_ENV)
    import ray

    runtime_env = {"working_dir": str(ROOT), "excludes": CODE_EXCLUDES} if remote else None
    # ray takes a level name (its own default is the string "info"); its annotation says int
    ray.init(address=address, runtime_env=runtime_env, log_to_driver=False,
             logging_level="ERROR")  # type: ignore[arg-type]


def _disconnect() -> None:
    import ray

    ray.shutdown()


def free_port() -> int:
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


def _check_reachable(address: str) -> None:
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise UserError(f"RAY_ADDRESS={address!r} must look like host:port (e.g. 10.0.0.5:6379)")
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except OSError as err:
        raise UserError(f"RAY_ADDRESS={address!r} is unreachable ({err.strerror or err}); "
                        f"start the cluster head or unset RAY_ADDRESS to run here") from None


def _run(pending: list[TrialConfig], grid: str, args: argparse.Namespace, data_dir: Path,
         runs_dir: Path) -> list[str]:
    """Submit every pending trial (in grid order), commit each as it finishes; return failures."""
    import ray

    gpus = args.gpus_per_trial
    if gpus is None:
        gpus = GPU_SHARE if ray.cluster_resources().get("GPU", 0) > 0 else 0.0
    task = ray.remote(max_retries=WORKER_RETRIES)(train_trial).options(
        num_cpus=args.cpus_per_trial, num_gpus=gpus)
    # the Ctrl-C flag from before the first submission: a SIGINT raised inside Ray's calls
    # below can be lost, and the announcement line is where a user (and the test) presses it
    with ctrl_c_noted() as interrupted:
        futures = {task.remote(trial.spec.to_dict(), trial.train_options(), str(data_dir),
                               str(runs_dir / trial.name), grid, args.cpus_per_trial): trial
                   for trial in pending}
        print(f"running {len(futures)} trials on Ray ({_resources_line()}), "
              f"{args.cpus_per_trial:g} CPU and {gpus:g} GPU each; follow one with tail -f "
              f"{runs_dir / LOGS}/<name>.log", file=sys.stderr)
        return _wait_all(futures, grid, args, interrupted)


def _wait_all(futures: dict, grid: str, args: argparse.Namespace,
              interrupted: threading.Event) -> list[str]:
    """Commit each trial as it finishes; return the failed trials' names. KeyboardInterrupt
    once `interrupted` is set."""
    import ray

    failed = []
    with tqdm(total=len(futures), desc=f"study {grid}", unit="trial") as bar:
        while futures:
            ready, _ = ray.wait(list(futures), num_returns=1, timeout=WAIT_S)
            if interrupted.is_set():  # also where Ray's own code swallowed the interrupt
                raise KeyboardInterrupt
            if not ready:  # a bounded wait lets Ctrl-C interrupt the study between waits
                continue
            [done] = ready
            trial = futures.pop(done)
            try:
                result = ray.get(done)
                _commit(args.study_dir, trial, grid, result)
                bar.write(f"done {trial.name}: test accuracy "
                          f"{result['test_accuracy_pct']:.2f} % ({result['device']})",
                          file=sys.stderr)
            except Exception as err:  # a failing trial must not stop the others
                failed.append(trial.name)
                bar.write(f"FAILED {trial.name}: {_one_line(err)}", file=sys.stderr)
            bar.update()
    return failed


@contextmanager
def ctrl_c_noted() -> Iterator[threading.Event]:
    """SIGINT raises KeyboardInterrupt as usual and also sets the event yielded. A
    KeyboardInterrupt raised inside Ray's compiled callbacks can be printed as "Exception
    ignored" and lost (ray-project/ray#7734); the event is not. (Once, under load, the Ctrl-C
    test saw the study run on to exit 0: the likely cause, not reproduced.)"""
    interrupted = threading.Event()

    def note(signum, frame):
        interrupted.set()
        signal.default_int_handler(signum, frame)

    previous = signal.signal(signal.SIGINT, note)
    try:
        yield interrupted
    finally:
        signal.signal(signal.SIGINT, previous)


def _resources_line() -> str:
    import ray

    res = ray.cluster_resources()
    return f"{len(ray.nodes())} node(s), {res.get('CPU', 0):g} CPU, {res.get('GPU', 0):g} GPU"


def _one_line(err: Exception) -> str:
    cause = getattr(err, "cause", None) or err
    text = str(cause).strip().splitlines()
    return f"{type(cause).__name__}: {text[-1] if text else ''}"


def _commit(study_dir: str, trial: TrialConfig, grid: str, result: dict) -> None:
    """Cost the trial's profile and write its results folder."""
    from hw_model.estimate import estimate
    from hw_model.targets import TARGETS, load_target_table, target_configs
    from hw_model.workload import load_workloads

    folder = trial_dir(study_dir, trial.name)
    folder.parent.mkdir(parents=True, exist_ok=True)
    profile = folder.parent / f".{trial.name}.profile.json"
    try:
        profile.write_text(result["files"][PROFILE_JSON])
        tables = {t: load_target_table(t) for t in TARGETS}
        configs = {t: target_configs(t, tables[t], sweep=False) for t in TARGETS}
        costs, _ = estimate(load_workloads([profile]), list(TARGETS), tables, configs)
    finally:
        profile.unlink(missing_ok=True)
    record = {"name": trial.name, "grid": grid, "spec": trial.spec.to_dict(),
              "train_config": trial.train_options(), "device": result["device"],
              "host": result["host"], "finished_utc": result["finished_utc"]}
    write_trial(study_dir, trial.name, result["files"], record, costs.assign(run=trial.name))


def train_trial(spec: dict, train_config: dict, data_dir: str, run_dir: str, grid: str,
                threads: float) -> dict:
    """Train one trial in `run_dir` (resuming an interrupted one; reusing a finished one) and
    return its small results: file texts, test accuracy, device and host."""
    import torch

    from model.spec import ModelSpec
    from quant_training.config import TrainConfig
    from quant_training.train import train

    torch.set_num_threads(max(1, int(threads)))
    spec_obj, config = ModelSpec.from_dict(spec), TrainConfig(**train_config)
    folder = Path(run_dir)
    log_path = folder.parent / LOGS / f"{folder.name}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    if not (folder / METRICS).exists():
        with open(log_path, "a") as log, redirect_stdout(log), redirect_stderr(log):
            train(spec_obj, config, Path(data_dir), folder, resume=(folder / LAST).exists(),
                  command=f"python -m study.run --grid {grid} (trial {folder.name})")
    files = {name: (folder / name).read_text() for name in RUN_FILES}
    metrics = json.loads(files[METRICS])
    diffs = TrialConfig(folder.name, spec_obj, config).differences(metrics["spec"],
                                                                    metrics["train_config"])
    if diffs:
        raise UserError(f"{folder} holds a finished run with other options ({'; '.join(diffs)}); "
                        f"move it away to retrain")
    return {"files": files, "test_accuracy_pct": metrics["test_accuracy_pct"],
            "device": metrics["device"], "host": socket.gethostname(),
            "finished_utc": datetime.now(UTC).isoformat(timespec="seconds")}


if __name__ == "__main__":
    run_cli(main)
