"""The service: ``neurectomy serve`` and ``neurectomy agents`` (runtime, teams, nats-server, keys, logs).

Import the modules themselves (``neurectomy.server.runtime``, ``.natsserver``, ``.keys``, ``.logs``); this
package imports nothing on its own, so the key store or the logging setup load without the whole service.
"""
