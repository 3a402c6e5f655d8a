"""llama.cpp server's routes that local-LLM clients use: ``/tokenize``, ``/detokenize``, ``/props``.

The routes are in ``api.llamacpp.routes`` (wired by ``api.app``).
"""
