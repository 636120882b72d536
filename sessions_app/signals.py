"""Signals of the Sessions app.

`session_completed` is sent (kwarg `session`) when one of our own sessions is stopped by `session_stop`, inside the
transaction of the stop, after its push was queued: the CDRs module connects to it and generates the CDR.
"""

from django.dispatch import Signal

session_completed = Signal()
