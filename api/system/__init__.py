"""Service status: ``/health``, ``/v1/agents`` summary, ``/v1/system`` (host and process facts).

The routes are in ``api.system.routes`` and ``api.system.sysinfo`` (wired by ``api.app``).
"""
