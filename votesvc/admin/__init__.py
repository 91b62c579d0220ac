"""The organisers' console at ``/admin``: accounts, an overview, the award and voids.

Served by the same app as the API (``app.py`` mounts :class:`Console`), for the
union staff who own the award: Chinese pages rendered on the server (no
script, no CDN), behind argon2 passwords, revocable server-side sessions and
CSRF tokens, reachable only from ``VOTESVC_ADMIN_ALLOW`` and only once an
account exists. Every action is audited in the ledger's ``audit_log``.
"""
