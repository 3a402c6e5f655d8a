"""ΣLANG: lossless semantic compression and context optimisation.

The codec (frame format, reusable semantic units, trained zstd dictionaries) and the context optimiser
land with issue 4; this package holds no code yet and pretends to none.
"""

__all__: tuple[str, ...] = ()
