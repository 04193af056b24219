"""The cost-model registry: target name -> module, its technology table and configurations."""
from __future__ import annotations

from pathlib import Path
from types import ModuleType

from common.errors import UserError, check_choice
from hw_model import digital, fpga, imc, loihi
from hw_model.constants import TABLES, Table, load_table

TARGETS: dict[str, ModuleType] = {"digital": digital, "imc": imc, "fpga": fpga,
                                  "loihi": loihi}
# one hardware configuration
TargetConfig = digital.Config | imc.Config | fpga.Config | loihi.Config
ESTIMATORS = {
    "digital": "analytic: Horowitz ISSCC 2014 45 nm op and SRAM energies, Lemaire-style traffic",
    "imc": "analytic: SpikeSim (Moitra et al., TCAD 2023) RRAM crossbar constants, 65 nm",
    "fpga": "analytic: FINN-R MVAU formulas (finn-plus 1.6.1) + LIF layer and stage models, "
            "ASSUMED power",
    "loihi": "analytic: Davies et al. (IEEE Micro 2018) Loihi Table 2 pre-silicon per-event "
             "energies and times, 14 nm, 0.75 V; no static power",
}


def parse_targets(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise UserError(f"targets={text!r} names no target; allowed: {', '.join(TARGETS)}")
    for name in names:
        check_choice("target", name, TARGETS)
    return names


def load_target_table(name: str, tables_dir: str | Path = TABLES) -> Table:
    return load_table(Path(tables_dir) / f"{name}.toml", TARGETS[name].REQUIRED)


def target_configs(name: str, table: Table, sweep: bool) -> list[TargetConfig]:
    module = TARGETS[name]
    return module.sweep_configs(table) if sweep else module.default_configs(table)
