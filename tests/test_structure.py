"""The shape of the package: every module imports, imports run one way between the packages
(no cycles, no import from a lower layer to a higher one), no function longer than ~60 lines of
code and no module longer than ~350 lines, every package's ``__init__`` names what it holds,
and `--help` imports no heavy library."""
import ast
import importlib
import pkgutil
import subprocess
import sys
from pathlib import Path

import microdiff

SRC = Path(microdiff.__file__).parent

# lower layers never import higher ones (side branches share a layer)
LAYERS = [
    ["core"],
    ["config"],
    ["diffusion", "data", "metrics"],
    ["model"],
    ["denoise"],
    ["targets"],
    ["generate"],
    ["train", "evaluate"],
    ["demo"],
    ["cli", "__main__"],
]
MAX_LINES = 60
MAX_MODULE_LINES = 350
# functions allowed to be longer, with why
LONG_OK: dict[str, str] = {}


def modules() -> dict[str, Path]:
    out = {"microdiff": SRC / "__init__.py"}
    for info in pkgutil.walk_packages([str(SRC)], "microdiff."):
        name = info.name
        path = SRC.joinpath(*name.split(".")[1:])
        out[name] = path / "__init__.py" if info.ispkg else path.with_suffix(".py")
    return out


def layer(module: str) -> int:
    top = module.split(".")[1] if "." in module else "__init__"
    for i, names in enumerate(LAYERS):
        if top in names:
            return i
    return -1 if top == "__init__" else 99


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """Package modules that ``name`` imports anywhere in its code (lazy imports included)."""
    pkg = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("microdiff")}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = pkg.split(".")
                parts = parts[:len(parts) - node.level + 1]
                base = ".".join(parts + ([node.module] if node.module else []))
            if not base.startswith("microdiff"):
                continue
            for a in node.names:
                out.add(f"{base}.{a.name}" if f"{base}.{a.name}" in known else base)
    return {m for m in out if m in known and m != name}


def test_every_module_imports():
    for name in modules():
        if name != "microdiff.__main__":          # runs the CLI
            importlib.import_module(name)


def test_imports_run_one_way_without_cycles():
    mods = modules()
    graph = {n: imports_of(n, p, set(mods)) for n, p in mods.items()}
    upward = [(a, b) for a, bs in graph.items() for b in bs if layer(b) > layer(a) and layer(b) != 99]
    assert not upward, f"imports from a lower layer to a higher one: {upward}"
    assert all(layer(n) != 99 for n in mods), [n for n in mods if layer(n) == 99]
    # Tarjan's strongly connected components: any with more than one module is a cycle
    index, low, stack, on, cycles = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))
    for v in graph:
        if v not in index:
            visit(v)
    assert not cycles, f"import cycles: {cycles}"


def code_lines(fn: ast.AST, source_lines: list[str]) -> int:
    """Lines of a function that hold code: no blank lines, comments or docstring."""
    body = fn.body
    start = body[0]
    if isinstance(start, ast.Expr) and isinstance(getattr(start, "value", None), ast.Constant) \
            and isinstance(start.value.value, str):
        doc = set(range(start.lineno, start.end_lineno + 1))
    else:
        doc = set()
    lines = range(fn.lineno, fn.end_lineno + 1)
    return sum(1 for i in lines if i not in doc and source_lines[i - 1].strip()
               and not source_lines[i - 1].strip().startswith("#"))


def test_no_function_longer_than_60_lines():
    long = {}
    for name, path in modules().items():
        text = path.read_text()
        src = text.splitlines()
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = code_lines(node, src)
                key = f"{name}.{node.name}"
                if n > MAX_LINES and key not in LONG_OK:
                    long[key] = n
    assert not long, f"functions over {MAX_LINES} lines of code: {long}"


def test_help_imports_no_heavy_library():
    code = ("import sys; from microdiff.cli import build_parser; build_parser().format_help(); "
            "heavy = [m for m in ('torch', 'diffusers', 'accelerate', 'matplotlib', 'scipy', 'PIL') if m in sys.modules];"
            "print(','.join(heavy))")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert res.stdout.strip() == "", f"--help imports {res.stdout.strip()}"


def test_no_module_longer_than_350_lines():
    long = {n: len(p.read_text().splitlines()) for n, p in modules().items()}
    assert not {n: k for n, k in long.items() if k > MAX_MODULE_LINES}, f"modules over {MAX_MODULE_LINES} lines"


def test_every_package_init_documents_what_it_holds():
    """Each package's docstring defines the category and names each of its modules; names in
    ``__all__`` exist."""
    for name, path in modules().items():
        if path.name != "__init__.py":
            continue
        pkg = importlib.import_module(name)
        doc = pkg.__doc__ or ""
        assert len(doc.split()) >= 8, f"{name} has no docstring that says what it holds"
        subs = [i.name for i in pkgutil.iter_modules([str(path.parent)]) if not i.name.startswith("_")]
        missing = [m for m in subs if f"``{m}``" not in doc and f"`{m}`" not in doc]
        assert not missing, f"{name}'s docstring does not name its modules {missing}"
        for n in getattr(pkg, "__all__", ()):
            assert hasattr(pkg, n) or n == "MicrodiffPipeline", f"{name}.__all__ lists {n}, which it lacks"
