"""The demand section of a scenario: which models are wanted, how often, and for how long.

Each entry describes *replicas* (think of a ReplicaSet's Pods) of one model or a mix of models:

- ``pattern`` says when replicas arrive. The rate patterns are Poisson processes whose rate may
  change over time:

  - ``poisson``: a constant ``rate_per_h`` (default 10);
  - ``diurnal``: a daily wave between ``trough_rate_per_h`` and ``peak_rate_per_h``, highest
    ``peak_at`` after the start of each ``period`` (defaults: 14h into a 1d period);
  - ``bursty``: ``rate_per_h`` for ``on_for``, then ``off_rate_per_h`` (default 0) for
    ``off_for``, repeating from ``start``;
  - ``steps``: a piecewise-constant rate, ``[{at: 0, rate_per_h: 5}, {at: 2h, rate_per_h: 40}]``.

  ``trace`` is different: it gives the number of replicas wanted over time, a step function read
  from a CSV ``file`` (columns ``t_s,replicas``; a relative path is relative to the scenario
  file) or given inline as ``points``. A replica is kept until the trace lowers the count.
- ``model`` names one model; ``models`` a mix in popularity order: each arrival picks the k-th
  model with probability proportional to 1/k^``zipf_s`` (0: uniform). Entries may be glob
  patterns such as ``ft-*``; they expand in the order the models are listed.
- ``hold`` is how long a ready replica keeps its GPUs before it is scaled away: a duration (an
  exponential distribution with that mean) or ``{dist, mean, cv, max}``.
- ``start`` and ``stop`` bound the time window of arrivals.

Fields that belong to another pattern are errors, so a typo cannot silently change a run.
"""

import csv
import itertools
import math
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from fma.api.durations import Duration

Pattern = Literal["poisson", "diurnal", "bursty", "steps", "trace"]
HoldDist = Literal["exponential", "fixed", "lognormal", "uniform", "pareto"]

RATE_PER_H_DEFAULT = 10.0
HOLD_MEAN_S_DEFAULT = 600.0
UNIFORM_CV_MAX = 1.0 / math.sqrt(3.0)
"""A uniform distribution on [0, 2 x mean] has this coefficient of variation; more is impossible."""

_ONLY_FOR: dict[str, tuple[Pattern, ...]] = {
    "rate_per_h": ("poisson", "bursty"),
    "peak_rate_per_h": ("diurnal",),
    "trough_rate_per_h": ("diurnal",),
    "period": ("diurnal",),
    "peak_at": ("diurnal",),
    "on_for": ("bursty",),
    "off_for": ("bursty",),
    "off_rate_per_h": ("bursty",),
    "steps": ("steps",),
    "file": ("trace",),
    "points": ("trace",),
    "hold": ("poisson", "diurnal", "bursty", "steps"),
}
_REQUIRED_BY: dict[str, tuple[Pattern, ...]] = {
    "peak_rate_per_h": ("diurnal",),
    "trough_rate_per_h": ("diurnal",),
    "on_for": ("bursty",),
    "off_for": ("bursty",),
    "steps": ("steps",),
}


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _hold_from_scalar(value: object) -> object:
    """``hold: 10m`` is shorthand for ``{dist: exponential, mean: 10m}``."""
    if isinstance(value, int | float | str) and not isinstance(value, bool):
        return {"dist": "exponential", "mean": value}
    return value


class HoldTime(_Section):
    """How long a ready replica is kept: a distribution with a mean and a spread.

    ``cv`` is the coefficient of variation (standard deviation / mean). It is fixed by
    ``exponential`` (1) and ``fixed`` (0); ``lognormal`` and ``pareto`` default to 1 and
    ``uniform`` (on [mean - w, mean + w]) to 0.5. ``max`` truncates a heavy tail.
    """

    dist: HoldDist = "exponential"
    mean: Duration = Field(gt=0)
    cv: float | None = Field(None, ge=0)
    max: Duration | None = Field(None, gt=0)

    @field_validator("cv")
    @classmethod
    def _cv_fits_dist(cls, cv: float | None, info: ValidationInfo) -> float | None:
        dist = info.data.get("dist")
        if cv is None:
            return cv
        if dist == "exponential" and cv != 1:
            raise ValueError("an exponential distribution has cv 1; use lognormal for another")
        if dist == "fixed" and cv != 0:
            raise ValueError("a fixed hold time has cv 0; use lognormal or uniform for spread")
        if dist == "uniform" and cv > UNIFORM_CV_MAX:
            raise ValueError(f"a uniform distribution cannot have cv above {UNIFORM_CV_MAX:.3f}")
        if dist == "pareto" and cv == 0:
            raise ValueError("a pareto distribution needs cv > 0")
        return cv

    def spread(self) -> float:
        """The coefficient of variation in effect (the default of the distribution if unset)."""
        if self.cv is not None:
            return self.cv
        return {"exponential": 1.0, "fixed": 0.0, "lognormal": 1.0, "uniform": 0.5}.get(
            self.dist, 1.0
        )


Hold = Annotated[HoldTime, BeforeValidator(_hold_from_scalar)]


class RateStep(_Section):
    """From ``at`` on (seconds since the run began), arrivals come at ``rate_per_h``."""

    at: Duration
    rate_per_h: float = Field(ge=0)


class TracePoint(_Section):
    """From ``t_s`` on, ``replicas`` replicas are wanted."""

    t_s: float = Field(ge=0)
    replicas: int = Field(ge=0)


def _point_from_pair(value: object) -> object:
    """``[t_s, replicas]`` is shorthand for ``{t_s: ..., replicas: ...}``."""
    if isinstance(value, list | tuple) and len(value) == 2:
        return {"t_s": value[0], "replicas": value[1]}
    return value


Point = Annotated[TracePoint, BeforeValidator(_point_from_pair)]


class Demand(_Section):
    """Replicas of one model (``model``) or a Zipf mix (``models``) over time; see the module."""

    model: str | None = Field(None, min_length=1)
    models: list[str] | None = Field(None, min_length=1, validate_default=True)
    zipf_s: float | None = Field(None, ge=0, le=10, validate_default=True)
    pattern: Pattern = "poisson"
    rate_per_h: float | None = Field(None, ge=0, validate_default=True)
    peak_rate_per_h: float | None = Field(None, ge=0, validate_default=True)
    trough_rate_per_h: float | None = Field(None, ge=0, validate_default=True)
    period: Duration | None = Field(None, gt=0, validate_default=True)
    peak_at: Duration | None = Field(None, validate_default=True)
    on_for: Duration | None = Field(None, gt=0, validate_default=True)
    off_for: Duration | None = Field(None, validate_default=True)
    off_rate_per_h: float | None = Field(None, ge=0, validate_default=True)
    steps: list[RateStep] | None = Field(None, min_length=1, validate_default=True)
    file: str | None = Field(None, min_length=1, validate_default=True)
    points: list[Point] | None = Field(None, min_length=1, validate_default=True)
    hold: Hold | None = Field(None, validate_default=True)
    start: Duration = 0.0
    stop: Duration | None = None

    @field_validator("models")
    @classmethod
    def _one_of_model_or_models(
        cls, models: list[str] | None, info: ValidationInfo
    ) -> list[str] | None:
        if "model" not in info.data:
            return models  # `model` itself was invalid; that error is the one to report
        if models is not None and info.data["model"] is not None:
            raise ValueError("give either 'model' (one model) or 'models' (a Zipf mix), not both")
        if models is None and info.data["model"] is None:
            raise ValueError("give 'model' (one model) or 'models' (a Zipf mix of models)")
        return models

    @field_validator("zipf_s")
    @classmethod
    def _zipf_needs_a_mix(cls, zipf_s: float | None, info: ValidationInfo) -> float | None:
        if zipf_s is not None and info.data.get("models") is None:
            raise ValueError("only used with 'models' (a mix)")
        return zipf_s

    @field_validator(*_ONLY_FOR)
    @classmethod
    def _belongs_to_pattern(cls, value: object, info: ValidationInfo) -> object:
        """A pattern-specific field is an error under another pattern, and required by its own."""
        pattern = info.data.get("pattern")
        name = info.field_name
        if pattern is None or name is None:
            return value  # the pattern itself was invalid; that error is the one to report
        if value is not None and pattern not in _ONLY_FOR[name]:
            wanted = " or ".join(repr(p) for p in _ONLY_FOR[name])
            raise ValueError(f"only used by pattern {wanted}, not {pattern!r}")
        if value is None and pattern in _REQUIRED_BY.get(name, ()):
            raise ValueError(f"pattern {pattern!r} needs it")
        return value

    @field_validator("steps")
    @classmethod
    def _steps_in_order(cls, steps: list[RateStep] | None) -> list[RateStep] | None:
        if steps is not None and any(b.at <= a.at for a, b in itertools.pairwise(steps)):
            raise ValueError("'at' times must increase")
        return steps

    @field_validator("points")
    @classmethod
    def _points_in_order(cls, points: list[TracePoint] | None) -> list[TracePoint] | None:
        if points is not None and any(b.t_s < a.t_s for a, b in itertools.pairwise(points)):
            raise ValueError("t_s must not decrease")
        return points

    @model_validator(mode="after")
    def _trace_needs_points(self) -> "Demand":
        if self.pattern == "trace" and self.file is None and self.points is None:
            raise ValueError(
                "pattern 'trace' needs 'file' (a CSV with columns t_s,replicas) or 'points'"
            )
        if self.stop is not None and self.stop <= self.start:
            raise ValueError("'stop' must be after 'start'")
        return self

    # --- effective values (the defaults of each pattern) -----------------------------------

    def rate(self) -> float:
        """The arrival rate per hour of ``poisson`` and of ``bursty`` bursts."""
        return RATE_PER_H_DEFAULT if self.rate_per_h is None else self.rate_per_h

    def hold_time(self) -> HoldTime:
        return self.hold or HoldTime(mean=HOLD_MEAN_S_DEFAULT)

    def diurnal_period_s(self) -> float:
        return 86400.0 if self.period is None else self.period

    def diurnal_peak_s(self) -> float:
        return 14 * 3600.0 if self.peak_at is None else self.peak_at

    def model_names(self) -> list[str]:
        """The models this entry asks for, most popular first (patterns already expanded)."""
        if self.models is not None:
            return list(self.models)
        assert self.model is not None
        return [self.model]

    def zipf_exponent(self) -> float:
        return 1.0 if self.zipf_s is None else self.zipf_s


class TraceFileError(ValueError):
    """A trace CSV that cannot be used; the message names the line."""


def read_trace_csv(path: Path) -> list[TracePoint]:
    """Read a ``t_s,replicas`` CSV (header optional, ``#`` comments allowed) into points."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise TraceFileError(f"cannot read {path}: {error.strerror}") from None
    points: list[TracePoint] = []
    rows = csv.reader(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    for number, row in enumerate(rows, start=1):
        cells = [c.strip() for c in row]
        if not any(cells):
            continue
        if number == 1 and cells[:2] == ["t_s", "replicas"]:
            continue
        points.append(_parse_row(path, number, cells))
    if not points:
        raise TraceFileError(f"{path}: no rows (expected columns t_s,replicas)")
    for a, b in itertools.pairwise(points):
        if b.t_s < a.t_s:
            raise TraceFileError(f"{path}: t_s must not decrease (at t_s={b.t_s:g})")
    return points


def _parse_row(path: Path, number: int, cells: list[str]) -> TracePoint:
    if len(cells) != 2:
        raise TraceFileError(f"{path} line {number}: expected 2 columns t_s,replicas")
    try:
        t_s, replicas = float(cells[0]), float(cells[1])
    except ValueError:
        raise TraceFileError(f"{path} line {number}: not numbers: {','.join(cells)}") from None
    if t_s < 0 or not math.isfinite(t_s):
        raise TraceFileError(f"{path} line {number}: t_s must be a time >= 0")
    if replicas < 0 or replicas != int(replicas):
        raise TraceFileError(f"{path} line {number}: replicas must be a whole number >= 0")
    return TracePoint(t_s=t_s, replicas=int(replicas))
