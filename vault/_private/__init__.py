"""Internals of ΣVAULT: file formats, keys, the write-ahead log, indexes and caches. Not a public API."""
