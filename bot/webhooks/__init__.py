"""Signed webhooks: what happens (codes made or failed, batches finished, live codes changed or scanned past a
milestone, the A/C quota crossing 80% and 95%) POSTed to the operator's endpoints (docs/webhooks.md).

    service.webhooks.add(url, events, secret, requester)   # the secret, shown once
    history.mark_done(…, events=service.webhooks.code_events(id))  # events written with the change they tell of
    sender = service.webhooks.sender; await sender.start()  # serve delivers them

``events.py`` the event types and their payloads, ``signing.py`` the signature, ``guard.py`` which addresses may
be called, ``sender.py`` the delivery loop, ``service.py`` the service object :class:`bot.service.Service` holds.
"""

from bot.webhooks.events import EVENT_TYPES, MILESTONES, QUOTA_LEVELS
from bot.webhooks.service import Added, Webhooks

__all__ = ["EVENT_TYPES", "MILESTONES", "QUOTA_LEVELS", "Added", "Webhooks"]
