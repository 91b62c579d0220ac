"""The ledger side: accepted votes from the Redis streams into durable storage.

Nothing of the vote path imports this package; it reads what the vote path
wrote (the streams, the counters) and never writes a vote of its own.

- ``flusher``: the flusher (streams -> ``store``), ``runner``: it as a task of
  ``serve`` or as ``votesvc flush``; ``entries``: stream entries in its hands;
  ``heartbeat``: which flushers run.
- ``award``, ``export``, ``reconcile``, ``restore``, ``void``: what the ledger
  commands do, and ``commands``: those commands on the command line.
- ``store``: SQLite and PostgreSQL behind one interface.
"""
