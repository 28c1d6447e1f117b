"""Offsets past 2**31 elements: every kernel computes them in int64.

Triton types ``tl.program_id`` as int32, and ``pid * BLOCK`` or ``row * stride`` in
int32 wraps silently once the product passes 2**31 (3e6 * 1024 became -1222967296),
so a kernel reads or writes the wrong memory. The rule (CONTRIBUTING.md): cast the
program id with ``.to(tl.int64)`` before it is scaled into an element offset.

``find_int32_offsets`` reads each @triton.jit function's source and follows every
name assigned from ``tl.program_id`` without a cast. An offset is unsafe when such a
value is multiplied (``*`` or ``<<``) inside the pointer argument of a
``tl.load``/``tl.store``/``tl.atomic_*``, directly or through the names it was
assigned to, or is passed to a helper @triton.jit function (which may scale it).
Adding a small int32 program id (``table_ptr + chunk``, ``partial_ptr + pid``) is
fine: it indexes a table of one entry per program, and programs number < 2**31.

On a GPU, one cross-entropy over more than 2**31 logits runs and matches torch.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import textwrap

import pytest
import torch
import triton
from triton.runtime.interpreter import InterpretedFunction

import tritongrad as tg
import tritongrad.kernels as kernel_package
from tritongrad.ops.loss import cross_entropy

# {"module.kernel": {offending expression: reason}}: the only int32 offsets allowed.
# An entry that no longer matches anything fails the test, so the list stays true.
_SMALL_K = ("k < BLOCK_K (<= 64), so this passes 2**31 only for a stride above 2**31 / 64 "
            "(a matrix dimension over 33 million); the K loop then advances the 64-bit "
            "pointers themselves")
EXCEPTIONS: dict[str, dict[str, str]] = {
    "matmul.matmul_kernel": {
        "offs_k[None, :] * stride_ak": _SMALL_K,
        "offs_k[:, None] * stride_bk": _SMALL_K,
        "offs_k[None, :] * stride_mk": _SMALL_K,
    },
}

LOADS_AND_STORES = {"load", "store", "atomic_add", "atomic_max", "atomic_min", "atomic_cas",
                    "atomic_xchg", "atomic_and", "atomic_or", "atomic_xor"}


def _is_tl_call(node: ast.AST, names: set[str]) -> bool:
    return (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            and node.func.attr in names and isinstance(node.func.value, ast.Name)
            and node.func.value.id == "tl")


def _is_int64_cast(node: ast.AST) -> bool:
    """``expr.to(tl.int64)`` (or ``.to(dtype=tl.int64)``)."""
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            and node.func.attr == "to"):
        return False
    args = list(node.args) + [k.value for k in node.keywords if k.arg == "dtype"]
    return bool(args) and isinstance(args[0], ast.Attribute) and args[0].attr in ("int64", "uint64")


class _Function:
    """Assignments of one @triton.jit function, for following names back to their source."""

    def __init__(self, source: str, helpers: dict):
        tree = ast.parse(textwrap.dedent(source))
        self.fn = next(n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef))
        self.helpers = helpers  # name -> _Function of other @triton.jit functions
        self.assigned: dict[str, list[ast.AST]] = {}
        for node in ast.walk(self.fn):
            if isinstance(node, ast.Assign):
                for target in node.targets:
                    self._assign(target, node.value)
            elif isinstance(node, (ast.AugAssign, ast.AnnAssign)) and node.value is not None:
                self._assign(node.target, node.value)
            elif isinstance(node, ast.For):
                self._assign(node.target, node.iter)

    def _assign(self, target: ast.AST, value: ast.AST) -> None:
        if isinstance(target, ast.Name):
            self.assigned.setdefault(target.id, []).append(value)
        elif isinstance(target, ast.Tuple):
            values = value.elts if isinstance(value, ast.Tuple) and len(value.elts) == len(
                target.elts) else [value] * len(target.elts)
            for t, v in zip(target.elts, values):
                self._assign(t, v)

    def _helper(self, node: ast.AST):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            return self.helpers.get(node.func.id)
        return None

    def is_int32_pid(self, node: ast.AST, seen: frozenset = frozenset()) -> bool:
        """Does the value of ``node`` carry an int32 program id (not cast to int64)?"""
        if _is_int64_cast(node):
            return False
        if _is_tl_call(node, {"program_id"}):
            return True
        if _is_tl_call(node, {"load"}):
            return False  # a loaded value has the pointer's element type
        helper = self._helper(node)
        if helper is not None:
            return (any(self.is_int32_pid(a, seen) for a in node.args)
                    or helper.returns_int32_pid())
        if isinstance(node, ast.Name):
            if node.id in seen:
                return False
            return any(self.is_int32_pid(v, seen | {node.id})
                       for v in self.assigned.get(node.id, []))
        return any(self.is_int32_pid(c, seen) for c in ast.iter_child_nodes(node))

    def returns_int32_pid(self) -> bool:
        return any(self.is_int32_pid(n.value) for n in ast.walk(self.fn)
                   if isinstance(n, ast.Return) and n.value is not None)

    def scaled_int32_pid(self, node: ast.AST, seen: frozenset = frozenset()) -> list[str]:
        """Sub-expressions of ``node`` (following names) that scale an int32 program id."""
        if _is_int64_cast(node) or _is_tl_call(node, {"load"}):
            return []  # a nested load's own pointer is checked where that load is
        if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Mult, ast.LShift)):
            if self.is_int32_pid(node.left, seen) or self.is_int32_pid(node.right, seen):
                return [ast.unparse(node)]
        helper = self._helper(node)
        if helper is not None and any(self.is_int32_pid(a, seen) for a in node.args):
            return [ast.unparse(node)]
        if isinstance(node, ast.Name):
            if node.id in seen:
                return []
            return [hit for v in self.assigned.get(node.id, [])
                    for hit in self.scaled_int32_pid(v, seen | {node.id})]
        return [hit for c in ast.iter_child_nodes(node) for hit in self.scaled_int32_pid(c, seen)]

    def _runtime_ints(self) -> set[str]:
        """Integer arguments typed at launch (i32 when the value fits): not pointers,
        not constexprs, not annotated with an explicit type such as "i64"."""
        return {a.arg for a in self.fn.args.args
                if a.annotation is None and not a.arg.endswith("_ptr") and a.arg != "table"}

    def _has(self, node: ast.AST, test, seen: frozenset = frozenset()) -> bool:
        """Does ``test`` hold for some sub-expression of ``node``, following names?"""
        if test(node):
            return True
        if isinstance(node, ast.Name) and node.id not in seen:
            return any(self._has(v, test, seen | {node.id})
                       for v in self.assigned.get(node.id, []))
        return any(self._has(c, test, seen) for c in ast.iter_child_nodes(node))

    def is_int32_index(self, node: ast.AST) -> bool:
        """An index built from ``tl.arange`` with nothing 64-bit in it (no int64 cast,
        no loaded value, no program id cast to int64), so int32 arithmetic."""
        wide = (lambda n: _is_int64_cast(n) or _is_tl_call(n, {"load"})
                or (isinstance(n, ast.Attribute) and n.attr == "int64"))
        return self._has(node, lambda n: _is_tl_call(n, {"arange"})) and not self._has(node, wide)

    def int32_index_times_stride(self, node: ast.AST, seen: frozenset = frozenset()) -> list[str]:
        """Products in ``node`` of an int32 index and a launch-typed integer argument
        (a stride): int32 when the stride fits in int32, even if the product does not."""
        if _is_int64_cast(node) or _is_tl_call(node, {"load"}):
            return []
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult):
            for index, other in ((node.left, node.right), (node.right, node.left)):
                if (isinstance(other, ast.Name) and other.id in self._runtime_ints()
                        and self.is_int32_index(index)):
                    return [ast.unparse(node)]
        if isinstance(node, ast.Name):
            if node.id in seen:
                return []
            return [hit for v in self.assigned.get(node.id, [])
                    for hit in self.int32_index_times_stride(v, seen | {node.id})]
        return [hit for c in ast.iter_child_nodes(node)
                for hit in self.int32_index_times_stride(c, seen)]

    def _pointers(self):
        for node in ast.walk(self.fn):
            if _is_tl_call(node, LOADS_AND_STORES):
                pointer = node.args[0] if node.args else next(
                    (k.value for k in node.keywords if k.arg == "pointer"), None)
                if pointer is not None:
                    yield node, pointer

    def violations(self) -> dict[str, str]:
        """{offending expression: why} for both rules."""
        found = {}
        for node, pointer in self._pointers():
            where = f"tl.{node.func.attr}({ast.unparse(pointer)}, ...)"
            for hit in self.scaled_int32_pid(pointer):  # rule 1
                found[hit] = f"{where} scales an int32 program id in `{hit}`"
            for hit in self.int32_index_times_stride(pointer):  # rule 2
                found.setdefault(hit, f"{where} multiplies an int32 index by an int32-typed "
                                      f"stride in `{hit}`")
        return found


def find_int32_offsets(sources: dict[str, str]) -> dict[str, dict[str, str]]:
    """{function name: {offending expression: why}} for @triton.jit sources (helpers
    resolved by name)."""
    helpers: dict = {}
    for name, source in sources.items():
        helpers[name] = _Function(source, helpers)
    found = {name: fn.violations() for name, fn in helpers.items()}
    return {name: v for name, v in found.items() if v}


JIT_TYPES = (triton.runtime.jit.JITFunction, InterpretedFunction)  # compiled / interpreter


def _jit_function(value):
    for _ in range(4):  # through autotune / heuristics wrappers
        if isinstance(value, JIT_TYPES):
            return value
        value = getattr(value, "fn", None)
    return None


def kernel_sources() -> dict[str, dict[str, str]]:
    """{module: {function name: source}} for every @triton.jit function in tritongrad.kernels."""
    modules = {}
    for info in pkgutil.iter_modules(kernel_package.__path__):
        module = importlib.import_module(f"{kernel_package.__name__}.{info.name}")
        sources = {}
        for attr, value in vars(module).items():
            fn = _jit_function(value)
            if fn is not None and fn.fn.__module__ == module.__name__:
                sources[fn.fn.__name__] = inspect.getsource(fn.fn)
        if sources:
            modules[info.name] = sources
    return modules


def test_every_kernel_computes_offsets_in_int64():
    modules = kernel_sources()
    assert {"copy", "elementwise", "reduction"} <= set(modules)
    # helpers may live in other modules (copy.strided_offsets, _common.cast_to)
    everything = {name: src for sources in modules.values() for name, src in sources.items()}
    failures, used = [], set()
    for module, sources in modules.items():
        scope = {**everything, **sources}
        for name, problems in find_int32_offsets(scope).items():
            if name not in sources:
                continue
            label = f"{module}.{name}"
            allowed = EXCEPTIONS.get(label, {})
            for hit, why in problems.items():
                if hit in allowed:
                    used.add((label, hit))
                else:
                    failures.append(f"{label}: {why}")
    assert not failures, "int32 offsets that can pass 2**31:\n" + "\n".join(failures)
    stale = [(label, hit) for label, hits in EXCEPTIONS.items() for hit in hits
             if (label, hit) not in used]
    assert not stale, f"EXCEPTIONS lists offsets that are no longer there: {stale}"


BAD_FLAT = '''
def k(x_ptr, y_ptr, n, BLOCK: tl.constexpr):
    pid = tl.program_id(0)
    offs = pid * BLOCK + tl.arange(0, BLOCK)
    tl.store(y_ptr + offs, tl.load(x_ptr + offs, mask=offs < n), mask=offs < n)
'''
BAD_ROW = '''
def k(x_ptr, stride, n_cols, BLOCK: tl.constexpr):
    row = tl.program_id(axis=0)
    cols = tl.arange(0, BLOCK)
    base = x_ptr + row * stride
    tl.store(base + cols, 0.0, mask=cols < n_cols)
'''
BAD_THROUGH_HELPER = '''
def k(x_ptr, n, s0, s1, BLOCK: tl.constexpr):
    linear = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    tl.store(x_ptr + offsets(linear, s0, s1), 0.0, mask=linear < n)
'''
GOOD_GROUPED = '''
def k(a_ptr, t_ptr, p_ptr, M, GROUP: tl.constexpr, BLOCK: tl.constexpr):
    pid = tl.program_id(0)
    group = pid // GROUP
    pid_m = group * GROUP + pid % GROUP
    offs = pid_m.to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    start = tl.load(t_ptr + pid)
    tl.store(p_ptr + pid, tl.sum(tl.load(a_ptr + start + offs, mask=offs < M), axis=0))
'''
BAD_STRIDED_COLUMN = '''
def k(x_ptr, n_cols, stride_col, BLOCK: tl.constexpr):
    row = tl.program_id(0).to(tl.int64)
    for start in range(0, n_cols, BLOCK):
        c = start + tl.arange(0, BLOCK)
        tl.store(x_ptr + row + c * stride_col, 0.0, mask=c < n_cols)
'''
HELPER = '''
def offsets(linear, s0, s1):
    return (linear // 7) * s0 + (linear % 7) * s1
'''


@pytest.mark.parametrize("source,bad", [(BAD_FLAT, True), (BAD_ROW, True),
                                        (BAD_THROUGH_HELPER, True), (GOOD_GROUPED, False)])
def test_checker_catches_int32_program_id_offsets(source, bad):
    found = find_int32_offsets({"k": source, "offsets": HELPER})
    assert bool(found.get("k")) == bad, found
    fixed = source.replace("tl.program_id(0)", "tl.program_id(0).to(tl.int64)").replace(
        "tl.program_id(axis=0)", "tl.program_id(axis=0).to(tl.int64)")
    assert not find_int32_offsets({"k": fixed, "offsets": HELPER})


def test_checker_catches_int32_index_times_stride():
    found = find_int32_offsets({"k": BAD_STRIDED_COLUMN})
    assert list(found["k"]) == ["c * stride_col"], found
    cast = BAD_STRIDED_COLUMN.replace("c = start + tl.arange(0, BLOCK)",
                                      "c = (start + tl.arange(0, BLOCK)).to(tl.int64)")
    typed = BAD_STRIDED_COLUMN.replace("stride_col,", 'stride_col: "i64",', 1)
    assert not find_int32_offsets({"k": cast})
    assert not find_int32_offsets({"k": typed})


def test_compiled_copy_kernel_uses_64_bit_addresses(sm90_report):
    """The compiled form agrees: the strided copy multiplies indices by strides in 64 bits
    (``mul.lo.s64``/``mad.lo.s64``), not in 32 bits and widened afterwards."""
    from tests.conftest import ptx_of

    ptx = ptx_of(sm90_report, "copy.copy_kernel")
    assert ptx, "copy kernel missing from the sm_90 report"
    for label, text in ptx.items():
        assert "mul.lo.s64" in text or "mad.lo.s64" in text, label


# ----------------------------------------------------------------------------- GPU


@pytest.mark.gpu
@pytest.mark.skipif(tg.device().type != "cuda", reason="needs a GPU (about 9 GB)")
def test_cross_entropy_over_2_31_logits_matches_torch_on_sampled_rows():
    n_classes = 131072  # 4 column blocks: the online-softmax path
    n_rows = (2**31) // n_classes + 1  # 16385 rows: 2,147,614,720 logits > 2**31
    generator = torch.Generator(device="cuda").manual_seed(0)
    logits = torch.empty((n_rows, n_classes), dtype=torch.bfloat16, device="cuda")
    logits.normal_(generator=generator)
    target = torch.randint(0, n_classes, (n_rows,), device="cuda", generator=generator)
    x = tg.from_torch(logits, requires_grad=True)
    loss = cross_entropy(x, tg.from_torch(target), reduction="none")
    loss.backward(tg.from_torch(torch.ones(n_rows, dtype=torch.bfloat16, device="cuda")))
    rows = torch.tensor([0, 1, n_rows // 2, n_rows - 2, n_rows - 1], device="cuda")
    reference = logits[rows].float().requires_grad_(True)
    expected = torch.nn.functional.cross_entropy(reference, target[rows], reduction="none")
    expected.sum().backward()
    tg.testing.assert_close(loss.torch()[rows], expected.to(torch.bfloat16), dtype=torch.bfloat16)
    tg.testing.assert_close(x.grad.torch()[rows], reference.grad.to(torch.bfloat16),
                            dtype=torch.bfloat16)
