"""The pure core of ravens: time and messages in, decisions out.

No I/O and no clock reads live here. ``NodeCore`` is one node's state machine;
``hlc``, ``lww``, ``verdict``, ``agreement``, ``events`` and ``dispatch`` are
its parts; ``simulation`` runs copies of it on virtual time.
"""
