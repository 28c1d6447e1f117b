"""Every built-in Function has a torch reference and a parity case, so a new op
cannot land without both (the parity report and shadow mode rely on them)."""

import importlib
import pkgutil

import pytest

import tritongrad
from tritongrad.autograd import Function
from tritongrad.testing.cases import all_cases, builtin_cases
from tritongrad.testing.references import reference_for

# Modules that need an optional dependency are skipped when it is missing.
OPTIONAL_DEPENDENCIES = {"matplotlib", "tqdm", "sklearn"}


def import_every_module() -> list:
    imported = []
    for info in pkgutil.walk_packages(tritongrad.__path__, prefix="tritongrad."):
        try:
            imported.append(importlib.import_module(info.name))
        except ModuleNotFoundError as error:
            if (error.name or "").split(".")[0] not in OPTIONAL_DEPENDENCIES:
                raise
    return imported


def function_subclasses(root: type = Function) -> list:
    """Every subclass of ``root`` defined in the tritongrad package (recursively)."""
    found, stack = [], list(root.__subclasses__())
    while stack:
        cls = stack.pop()
        stack.extend(cls.__subclasses__())
        if cls.__module__.startswith("tritongrad.") and cls not in found:
            found.append(cls)
    return sorted(found, key=lambda c: (c.__module__, c.__name__))


def missing_references(classes: list) -> list:
    return [f"{c.__module__}.{c.__name__}" for c in classes if reference_for(c) is None]


def missing_cases(classes: list, cases: list) -> list:
    covered = {case.function for case in cases}
    return [f"{c.__module__}.{c.__name__}" for c in classes if c not in covered]


@pytest.fixture(scope="module")
def builtin_functions() -> list:
    import_every_module()
    return function_subclasses()


def test_the_walk_finds_the_builtin_ops(builtin_functions):
    names = {c.__name__ for c in builtin_functions}
    assert {"Add", "Sum", "Reshape", "Cast", "MatMul", "Linear", "CrossEntropy"} <= names
    assert len(builtin_functions) >= 25


def test_every_builtin_function_has_a_torch_reference(builtin_functions):
    missing = missing_references(builtin_functions)
    assert not missing, ("Functions without a torch reference (register one in "
                         f"tritongrad/testing/ref_<family>.py): {missing}")


def test_every_builtin_function_has_a_parity_case(builtin_functions):
    missing = missing_cases(builtin_functions, builtin_cases())
    assert not missing, f"Functions without a case in tritongrad/testing/cases.py: {missing}"


def test_every_case_runs_a_function_with_a_reference():
    for case in all_cases():
        assert case.torch_callable() is not None, case.name
        assert case.specs, f"{case.name} has no shapes"


def test_the_checks_can_fail():
    class Unregistered(Function):  # defined here, so only passed explicitly
        @staticmethod
        def forward(ctx, x):
            return x

        @staticmethod
        def backward(ctx, grad):
            return grad

    assert missing_references([Unregistered]) == [f"{__name__}.Unregistered"]
    assert missing_cases([Unregistered], builtin_cases()) == [f"{__name__}.Unregistered"]
    assert Unregistered not in function_subclasses()  # not a tritongrad module


def test_torch_reference_attribute_counts_as_a_reference():
    import torch

    class WithReference(Function):
        torch_reference = staticmethod(torch.exp)

        @staticmethod
        def forward(ctx, x):
            return x

        @staticmethod
        def backward(ctx, grad):
            return grad

    assert reference_for(WithReference) is torch.exp
