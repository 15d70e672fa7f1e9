"""Live codes (活码): a B code printed once whose destination can change, and whose scans are counted.

    service.live.resolve(key, visitor=…)          # the scan's path (bot/live/service.py: LiveService)
    service.live.repoint(code_id, page, requester) / pause / resume / stats / view / totals / tag / untag
    service.live.selections.preview(Selection(tag="春节"), "repoint", page, requester) / confirm   # many at once

``routes.py`` reads and picks a code's routes (by share, phone, date), ``rules.py`` holds the rules (the key, the destination and its history, pausing, expiry, the resolver's
cache), ``scans.py`` counts scans off the request path, ``service.py`` is ``service.live``: the verbs
front-ends call, each checked with :class:`bot.permissions.Permissions`; ``selection.py`` changes many codes at
once (a selection resolved, previewed, then confirmed).
"""

from bot.live.routes import PLATFORMS, RouteChange, Routes, parse_routes
from bot.live.rules import (
    DayScans,
    Destination,
    LiveCodes,
    LiveView,
    NotLive,
    Resolution,
    RoutesView,
    ScanBreakdown,
    ScanCounts,
    link_qr,
    normal_key,
    scan_origin,
    split,
)
from bot.live.service import LiveService

__all__ = ["PLATFORMS", "DayScans", "Destination", "LiveCodes", "LiveService", "LiveView", "NotLive", "Resolution",
           "RouteChange", "Routes", "RoutesView", "ScanBreakdown", "ScanCounts", "link_qr", "normal_key", "parse_routes",
           "scan_origin", "split"]
