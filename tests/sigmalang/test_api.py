from __future__ import annotations

import inspect
import subprocess
import sys

import sigmalang


def test_all_lists_exactly_the_public_names() -> None:
    assert isinstance(sigmalang.__all__, tuple)
    assert len(set(sigmalang.__all__)) == len(sigmalang.__all__)
    for name in sigmalang.__all__:
        obj = getattr(sigmalang, name)  # AttributeError: __all__ names something the package lacks
        if isinstance(obj, type) or inspect.isfunction(obj):  # defined in the package, and documented
            assert obj.__module__.startswith("sigmalang."), (name, obj.__module__)
            assert obj.__doc__ and obj.__doc__.strip(), f"{name} has no docstring"
    assert isinstance(sigmalang.FORMAT_VERSION, int) and sigmalang.FORMAT_VERSION >= 1
    public = {n for n in vars(sigmalang) if not n.startswith("_")}
    modules = {n for n in public if type(getattr(sigmalang, n)).__name__ == "module"}
    assert public - modules == set(sigmalang.__all__)


def test_errors_subclass_the_matching_builtins() -> None:
    assert issubclass(sigmalang.FrameError, ValueError)
    assert issubclass(sigmalang.MissingRSUError, LookupError)
    assert issubclass(sigmalang.MissingDictionaryError, LookupError)
    for name in sigmalang.__all__:
        obj = getattr(sigmalang, name)
        if isinstance(obj, type) and issubclass(obj, Exception):
            assert issubclass(obj, sigmalang.SigmaError)


def test_sigmalang_imports_no_other_project_package() -> None:
    code = (
        "import sys, sigmalang; "
        "bad = [m for m in sys.modules if m.split('.')[0] in "
        "{'ryot','vault','agents','orchestrator','api','bridges','neurectomy'}]; "
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
