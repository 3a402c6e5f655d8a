"""ΣVAULT: encrypted semantic storage on FAISS.

Records, AES-256-GCM sealing, per-tenant data keys, the FAISS index and the write-ahead log land with
issue 3; this package holds no code yet and pretends to none.
"""

__all__: tuple[str, ...] = ()
