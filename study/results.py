"""The study's committed results: one folder per finished trial, reports/study/runs/<name>/.

A trial folder holds the small results of one `make qat` run (never its checkpoints):
metrics.json, history.csv and profile.json as training wrote them, costs.csv (hw_model's
summary rows at each target's default configuration) and trial.json (grid, configuration,
where and when it ran). It is written whole or not at all, so a folder that exists is a
finished trial: `make study` skips it, `make study-report` reads it.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from common.atomic import atomic_dir
from common.errors import UserError
from common.runs import HISTORY, METRICS, PROFILE_JSON

STUDY_DIR = Path("reports/study")
RUN_FILES = (METRICS, HISTORY, PROFILE_JSON)  # copied from the run folder
TRIAL, COSTS = "trial.json", "costs.csv"


@dataclass(frozen=True)
class Trial:
    """One finished trial as committed."""

    name: str
    folder: Path
    trial: dict  # trial.json: grid, spec, train_config, finished_utc, host, device
    metrics: dict  # metrics.json
    history: pd.DataFrame
    costs: pd.DataFrame

    @property
    def profile_path(self) -> Path:
        return self.folder / PROFILE_JSON


def trial_dir(study_dir: str | Path, name: str) -> Path:
    return Path(study_dir) / "runs" / name


def is_finished(study_dir: str | Path, name: str) -> bool:
    return (trial_dir(study_dir, name) / TRIAL).is_file()


def write_trial(study_dir: str | Path, name: str, run_files: dict[str, str], trial: dict,
                costs: pd.DataFrame) -> Path:
    """Write a trial folder atomically from the run's file texts, its record and cost rows."""
    missing = sorted(set(RUN_FILES) - set(run_files))
    if missing:
        raise UserError(f"trial {name} returned no {', '.join(missing)}")
    folder = trial_dir(study_dir, name)
    with atomic_dir(folder) as scratch:
        for file, text in run_files.items():
            (scratch / file).write_text(text)
        costs.to_csv(scratch / COSTS, index=False)
        (scratch / TRIAL).write_text(json.dumps(trial, indent=2) + "\n")
    return folder


def load_trials(study_dir: str | Path = STUDY_DIR) -> list[Trial]:
    """Every finished trial under `study_dir`/runs, sorted by name."""
    trials = []
    for folder in sorted((Path(study_dir) / "runs").glob(f"*/{TRIAL}")):
        folder = folder.parent
        try:
            trials.append(Trial(
                name=folder.name, folder=folder,
                trial=json.loads((folder / TRIAL).read_text()),
                metrics=json.loads((folder / METRICS).read_text()),
                history=pd.read_csv(folder / HISTORY),
                costs=pd.read_csv(folder / COSTS)))
        except (OSError, ValueError) as err:
            raise UserError(f"trial folder {folder} is unreadable ({type(err).__name__}: "
                            f"{err}); delete it to rerun that trial") from None
    return trials
