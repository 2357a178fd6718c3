"""ntfy publishing: message building, the HTTP publisher and the durable outbox.

The node already writes every agreed event to the outbox table in the same
transaction as the move that caused it (see ``watchers.storage``); delivering
the outbox to ntfy is the notification work that follows.
"""
