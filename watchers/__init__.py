"""The watcher node: config, probes, scheduling, storage, peer sync, HTTP, CLI.

The I/O shell around the pure core in ``consensus``.
"""
