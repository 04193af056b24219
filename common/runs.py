"""Finding run folders (runs/<name>/) without importing torch."""
from __future__ import annotations

from pathlib import Path

from common.errors import UserError

# The files of a run folder runs/<name>/, defined once
CHECKPOINT = "best.pt"  # the best checkpoint by validation accuracy
LAST = "last.pt"  # the last epoch's checkpoint, to resume from
METRICS, HISTORY = "metrics.json", "history.csv"
PROFILE_JSON, PROFILE_CSV = "profile.json", "profile.csv"
EXPORT_DIR = "export"  # a run's exported graphs and their checks
VERIFICATION = "verification.json"  # in EXPORT_DIR
SUMMARY = "summary.json"  # fpga/<part>/, and its rtlsim/ and synth/ folders
RTLSIM_DIR, SYNTH_DIR = "rtlsim", "synth"


def resolve_run(run: str | Path | None, runs_dir: str | Path = "runs") -> Path:
    """The run folder `run`, or the most recently modified run under `runs_dir` when None."""
    if run:
        path = Path(run)
        if not path.is_dir():
            raise UserError(f"run folder {path} does not exist")
        if not (path / CHECKPOINT).is_file():
            raise UserError(
                f"run folder {path} has no {CHECKPOINT}; has training finished an epoch?")
        return path
    candidates = sorted(Path(runs_dir).glob(f"*/{CHECKPOINT}"), key=lambda p: p.stat().st_mtime)
    if not candidates:
        raise UserError(f"no trained run under {runs_dir}/; train one with `make qat` or pass RUN=")
    return candidates[-1].parent
