"""The operator's actuation records, read back from its log.

The operator logs one ``Actuation recorded`` line per actuation
(:class:`~fma.adapters.k8s.actuations.ActuationRecord`): ``key="value"`` pairs, times in RFC
3339. This module turns each line back into the fields of an ``actuation`` trace event, so that
a log and a trace give the same record (:func:`~fma.bench.actuation.from_trace.record_changes`
applies either to the evidence).
"""

import json
import re
from collections.abc import Iterable
from typing import Any, Final

from fma.adapters.k8s.actuations import LOG_KEYS, LOG_MESSAGE, TIME_FIELDS
from fma.adapters.k8s.views import parse_time

FIELD_RE: Final = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*")')
"""``key="value"`` with the value quoted as JSON quotes a string."""
_TRACE_KEY: Final = {log_key: trace_key for trace_key, log_key in LOG_KEYS.items()}


def parse_record(line: str) -> dict[str, Any] | None:
    """The record on one log line, as ``actuation`` event fields; None for other lines."""
    if LOG_MESSAGE not in line:
        return None
    record: dict[str, Any] = {}
    for key, quoted in FIELD_RE.findall(line.split(LOG_MESSAGE, 1)[1]):
        trace_key = _TRACE_KEY.get(key)
        if trace_key is None:
            continue
        try:
            value = json.loads(quoted)
        except ValueError:
            continue
        if trace_key in TIME_FIELDS:
            record[trace_key] = parse_time(value)
        else:
            record[trace_key] = value or None
    return record if record.get("requester") and record.get("bound_t") is not None else None


def records_from_log(lines: Iterable[str]) -> dict[str, dict[str, Any]]:
    """Requester UID -> its record (the first, as the controller records an actuation once)."""
    found: dict[str, dict[str, Any]] = {}
    for line in lines:
        record = parse_record(line)
        if record is not None:
            found.setdefault(str(record["requester"]), record)
    return found
