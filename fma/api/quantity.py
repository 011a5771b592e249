"""Kubernetes resource quantities (``"16Gi"``, ``"1.5G"``, ``8``), parsed as Kubernetes does.

The parsing is the Kubernetes client's own (``kubernetes.utils.parse_quantity``), imported
only when a quantity is read: the simulator never needs it.
"""

from decimal import Decimal
from typing import Any


def parse_quantity(value: int | float | str) -> Decimal:
    """The quantity's value in base units; raises ``ValueError`` naming what is wrong."""
    from kubernetes import utils

    parse: Any = utils.parse_quantity
    try:
        return Decimal(parse(value))
    except (ValueError, ArithmeticError) as error:
        raise ValueError(f"{value!r} is not a Kubernetes quantity") from error


def quantity_bytes(value: int | float | str) -> int:
    """A size in bytes (rounded up); raises ``ValueError`` unless it is positive."""
    amount = parse_quantity(value)
    if amount <= 0:
        raise ValueError(f"{value!r} is not a positive size")
    return int(amount.to_integral_value(rounding="ROUND_CEILING"))
