"""The Energy folder of the address space: city and district energy figures, and the GetEnergyReport method.

Objects/City/Energy/{LightingPowerKW, LightingEnergyKWhToday, LightingBaselineKWhToday, LightingSavingsPercent,
LightingSavingsPercentNight} for the city, the same five under Objects/City/Energy/Districts/<district id>/ for each
district. The values come through the value path as tags `Energy/<Name>` and `Energy/Districts/<id>/<Name>`
(scada.energy_figures publishes them). GetEnergyReport answers energy and legacy baseline per bucket of a range for
the city or a district, for dashboards and reports (per night, per week...).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from asyncua import ua

from scada.catalog import ArgSpec, VarSpec
from scada.model import CommandError, Quality
from scada.opcua.methods import check_arguments, status_result
from scada.opcua.types import TypeBuilder

if TYPE_CHECKING:
    from scada.opcua.builder import SpaceBuilder
    from scada.site.model import Site

log = logging.getLogger(__name__)

ENERGY_VARS: tuple[VarSpec, ...] = (
    VarSpec("LightingPowerKW", "Double", "kW", (0.0, 10000.0), historized=True, description="lighting power now"),
    VarSpec(
        "LightingEnergyKWhToday",
        "Double",
        "kWh",
        (0.0, 1.0e6),
        historized=True,
        description="lighting energy since local midnight (cabinet meters)",
    ),
    VarSpec(
        "LightingBaselineKWhToday",
        "Double",
        "kWh",
        (0.0, 1.0e6),
        historized=True,
        description="what the legacy installation would have used since local midnight for the same burning time",
    ),
    VarSpec(
        "LightingSavingsPercent",
        "Double",
        "%",
        (-100.0, 100.0),
        historized=True,
        description="energy saved against the legacy installation's baseline over the reporting period",
    ),
    VarSpec(
        "LightingSavingsPercentNight",
        "Double",
        "%",
        (-100.0, 100.0),
        historized=True,
        description="energy saved against the legacy baseline over the current night (local noon to noon)",
    ),
)
ENERGY_SAMPLING_MS = 1000.0
DISTRICTS = "Districts"
CITY_SCOPE = "City"
MAX_BUCKETS = 10_000
MAX_BUCKET_S = 31_622_400  # 366 days

REPORT_INPUTS = (
    ArgSpec("Scope", "String", description='"City" or a district id'),
    ArgSpec("Start", "DateTime", description="start of the first bucket"),
    ArgSpec("End", "DateTime", description="end of the range (exclusive)"),
    ArgSpec("BucketSeconds", "UInt32", 900, 31_622_400, "bucket length, a multiple of 900 s"),
)
REPORT_OUTPUTS = (
    ArgSpec("Starts", "DateTime[]", description="start of each bucket"),
    ArgSpec("EnergyKWh", "Double[]", description="metered lighting energy per bucket"),
    ArgSpec("BaselineKWh", "Double[]", description="legacy baseline per bucket (same burning time)"),
)


def district_prefix(district_id: str) -> str:
    """The tag prefix of a district's energy variables."""
    return f"Energy/{DISTRICTS}/{district_id}"


def build_energy(builder: SpaceBuilder, site: Site | None) -> None:
    """The city's energy variables in the Energy folder, and a folder per district under Energy/Districts."""
    folder = builder.folders["Energy"]
    builder.add_energy_variables(folder, "Energy", ENERGY_VARS, ENERGY_SAMPLING_MS)
    if site is None or not site.districts:
        return
    districts = builder.add_folder(folder, f"Energy/{DISTRICTS}", DISTRICTS, description="energy figures per district")
    for district in site.districts.values():
        if not district.id or "/" in district.id:
            raise ValueError(f"district id {district.id!r} cannot name a node (empty or containing '/')")
        node = builder.add_folder(districts, district_prefix(district.id), district.id, description=district.name)
        builder.add_energy_variables(node, district_prefix(district.id), ENERGY_VARS, ENERGY_SAMPLING_MS)


@dataclass(frozen=True, slots=True)
class EnergyBucket:
    """Energy and baseline of one scope over one bucket."""

    start: datetime
    energy_kwh: float
    baseline_kwh: float


ReportHandler = Callable[[str, datetime, datetime, int], Awaitable[list[EnergyBucket]]]


def report_errors(scope: str, start: datetime, end: datetime, bucket_s: int, scopes: set[str]) -> str | None:
    """Why a GetEnergyReport call is refused, or None."""
    if scope not in scopes:
        return f"unknown scope {scope!r}: 'City' or one of {', '.join(sorted(scopes - {CITY_SCOPE}))}"
    if bucket_s < 900 or bucket_s % 900 or bucket_s > MAX_BUCKET_S:
        return f"BucketSeconds {bucket_s} must be a multiple of 900 between 900 and {MAX_BUCKET_S}"
    if end <= start:
        return "End must be after Start"
    if (end - start).total_seconds() / bucket_s > MAX_BUCKETS:
        return f"the range holds more than {MAX_BUCKETS} buckets: choose longer buckets"
    return None


class EnergyReportMethod:
    """GetEnergyReport on the Energy folder; `handler` answers the buckets (CommandError -> its status)."""

    def __init__(self, builder: SpaceBuilder, site: Site, handler: ReportHandler) -> None:
        self._builder = builder
        self._handler = handler
        self._scopes = {CITY_SCOPE, *site.districts}

    def install(self) -> None:
        """Add the method to Objects/City/Energy and bind it."""
        types = TypeBuilder(self._builder.aspace, self._builder.ns)
        method = types.method(
            self._builder.folders["Energy"],
            ("Energy", "GetEnergyReport"),
            "GetEnergyReport",
            REPORT_INPUTS,
            REPORT_OUTPUTS,
            "energy and legacy baseline per bucket of a range, for the city or a district",
            mandatory=False,
        )
        method.node.call = self._call

    async def _call(self, object_id: ua.NodeId, *args: ua.Variant) -> ua.CallMethodResult:
        refused = check_arguments(REPORT_INPUTS, args)
        if refused is not None:
            return refused
        scope, start, end, bucket_s = (arg.Value for arg in args)
        start, end = _aware(start), _aware(end)
        problem = report_errors(scope, start, end, int(bucket_s), self._scopes)
        if problem is not None:
            log.info("GetEnergyReport refused: %s", problem)
            return status_result(Quality.BAD_INVALID_ARGUMENT)
        try:
            buckets = await self._handler(scope, start, end, int(bucket_s))
        except CommandError as exc:
            log.info("GetEnergyReport refused: %s", exc)
            return status_result(int(exc.status))
        except Exception:
            log.exception("GetEnergyReport failed")
            return status_result(Quality.BAD_INTERNAL)
        return status_result(
            Quality.GOOD,
            outputs=[
                ua.Variant([b.start for b in buckets], ua.VariantType.DateTime, is_array=True),
                ua.Variant([b.energy_kwh for b in buckets], ua.VariantType.Double, is_array=True),
                ua.Variant([b.baseline_kwh for b in buckets], ua.VariantType.Double, is_array=True),
            ],
        )


def _aware(moment: Any) -> datetime:
    """asyncua decodes DateTime as naive UTC."""
    if not isinstance(moment, datetime):
        raise TypeError(f"{type(moment).__name__} is not a DateTime")
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
