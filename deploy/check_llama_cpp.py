"""Exit 0 if the installed llama-cpp-python is the wanted version built without AMX, else 1.

The default native build of llama.cpp segfaults on this kind of CPU in ``ggml_backend_amx_mul_mat`` at
the first decode (see shared FINDINGS); our build turns the AMX kernels off, and llama.cpp's system info
then lists no AMX feature.

Usage: python deploy/check_llama_cpp.py VERSION
"""

import sys

try:
    import llama_cpp
except Exception as exc:  # noqa: BLE001 - any import failure means "not installed properly"
    print(f"llama-cpp-python not importable: {exc}")
    sys.exit(1)

wanted = sys.argv[1]
info = llama_cpp.llama_print_system_info().decode()
if llama_cpp.__version__ != wanted:
    print(f"llama-cpp-python {llama_cpp.__version__} installed, {wanted} wanted")
    sys.exit(1)
if "AMX" in info:
    print(f"llama-cpp-python {wanted} was built with AMX kernels (crashes on this CPU): {info.strip()}")
    sys.exit(1)
print(f"llama-cpp-python {wanted} without AMX already installed")
