"""The historian's tables (SQLAlchemy 2 typed models): the schema itself is created only by the Alembic migrations.

Every timestamp column is an integer count of microseconds since the Unix epoch, UTC (``*_ts``, BIGINT on both
backends): exact, compact and fast to compare, which makes exactly-once replay a plain primary-key check.
Table and column names are a contract with the query, aggregate, OPC UA history and export code: add, never rename.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    Double,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

US_PER_S = 1_000_000
INTERVAL_15M_US = 15 * 60 * US_PER_S
DAY_US = 86_400 * US_PER_S

# An autoincrement 64-bit id: BIGSERIAL-like on PostgreSQL, INTEGER PRIMARY KEY (the rowid) on SQLite.
BigId = BigInteger().with_variant(Integer(), "sqlite")

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base of every historian table (shared metadata with a stable naming convention)."""

    metadata = MetaData(naming_convention=NAMING)


class Tag(Base):
    """One historized tag: its NodeId path, data type and retention class."""

    __tablename__ = "tags"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(255), unique=True, nullable=False)  # "Lighting/CAB-0042/L-004113/Level"
    dtype: Mapped[str] = mapped_column(String(16), nullable=False, default="Double")  # OPC UA built-in type name
    tag_class: Mapped[str] = mapped_column(String(32), nullable=False, default="system")  # retention class
    unit: Mapped[str | None] = mapped_column(String(16), nullable=True)
    created_ts: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class Sample(Base):
    """One stored value of one tag (numbers and booleans in `value`, strings in `text`)."""

    __tablename__ = "samples"
    __table_args__ = ({"sqlite_with_rowid": False},)

    # No foreign key on purpose: tags are never deleted, and a per-row FK check halves the COPY rate.
    tag_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ts: Mapped[int] = mapped_column(BigInteger, primary_key=True)  # source timestamp, µs since epoch UTC
    value: Mapped[float | None] = mapped_column(Double, nullable=True)
    text: Mapped[str | None] = mapped_column(Text, nullable=True)
    # OPC UA status code: unsigned 32-bit (Bad codes exceed 2^31), hence BIGINT (PostgreSQL INTEGER is signed).
    quality: Mapped[int] = mapped_column(BigInteger, nullable=False)


class Event(Base):
    """An event or alarm transition (events HistoryRead, alarm journal)."""

    __tablename__ = "events"
    __table_args__ = (Index("ix_events_ts", "ts"), Index("ix_events_source_ts", "source", "ts"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    ts: Mapped[int] = mapped_column(BigInteger, nullable=False)
    source: Mapped[str] = mapped_column(String(255), nullable=False)  # device id or node path
    event_type: Mapped[str] = mapped_column(String(64), nullable=False)
    severity: Mapped[int] = mapped_column(Integer, nullable=False, default=500)  # OPC UA 1..1000
    message: Mapped[str] = mapped_column(Text, nullable=False, default="")
    condition: Mapped[str | None] = mapped_column(String(128), nullable=True)
    state: Mapped[str | None] = mapped_column(String(64), nullable=True)
    user: Mapped[str | None] = mapped_column(String(128), nullable=True)
    comment: Mapped[str | None] = mapped_column(Text, nullable=True)
    data: Mapped[str | None] = mapped_column(Text, nullable=True)  # JSON
    uid: Mapped[str | None] = mapped_column(String(32), nullable=True, unique=True)  # exactly-once key (replay)


class Command(Base):
    """The command audit trail: who asked what of which device, when, with which arguments, and the answer."""

    __tablename__ = "commands"
    __table_args__ = (Index("ix_commands_ts", "ts"), Index("ix_commands_device_id_ts", "device_id", "ts"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    ts: Mapped[int] = mapped_column(BigInteger, nullable=False)
    user: Mapped[str | None] = mapped_column(String(128), nullable=True)
    origin: Mapped[str] = mapped_column(String(64), nullable=False)
    device_id: Mapped[str] = mapped_column(String(64), nullable=False)
    action: Mapped[str] = mapped_column(String(64), nullable=False)
    args: Mapped[str] = mapped_column(Text, nullable=False, default="{}")  # JSON
    status: Mapped[int] = mapped_column(BigInteger, nullable=False)  # OPC UA status code
    message: Mapped[str] = mapped_column(Text, nullable=False, default="")
    duration_ms: Mapped[float | None] = mapped_column(Double, nullable=True)
    uid: Mapped[str | None] = mapped_column(String(32), nullable=True, unique=True)  # exactly-once key (replay)


class Incident(Base):
    """An incident reported by an operator or a third party (accident, roadworks, ...)."""

    __tablename__ = "incidents"
    __table_args__ = (Index("ix_incidents_status", "status"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32), nullable=False)
    lat: Mapped[float] = mapped_column(Double, nullable=False)
    lon: Mapped[float] = mapped_column(Double, nullable=False)
    description: Mapped[str] = mapped_column(Text, nullable=False, default="")
    contact: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)  # encrypted in a later issue
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="open")
    created_ts: Mapped[int] = mapped_column(BigInteger, nullable=False)
    closed_ts: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    timeline: Mapped[str] = mapped_column(Text, nullable=False, default="[]")  # JSON list of {ts, user, text}
    # Version of the row: an upsert only replaces a row with an older or equal updated_ts (replay-order safe).
    updated_ts: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)


class EnergyInterval(Base):
    """Energy of one scope over one 15-minute interval, and the legacy baseline over the same burning time."""

    __tablename__ = "energy_intervals"
    __table_args__ = (Index("ix_energy_intervals_start_ts", "start_ts"),)

    scope: Mapped[str] = mapped_column(String(16), primary_key=True)  # "lamp" | "cabinet" | "district" | "city"
    scope_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    start_ts: Mapped[int] = mapped_column(BigInteger, primary_key=True)  # aligned on 15 minutes
    energy_wh: Mapped[float] = mapped_column(Double, nullable=False, default=0.0)
    baseline_wh: Mapped[float] = mapped_column(Double, nullable=False, default=0.0)
    burning_s: Mapped[float] = mapped_column(Double, nullable=False, default=0.0)
    gap: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    reset: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    members: Mapped[int] = mapped_column(Integer, nullable=False, default=1)  # lamps/meters summed into the row
    gaps: Mapped[int] = mapped_column(Integer, nullable=False, default=0)  # members with a gap (aggregate scopes)
    # Energy the meter measured across a gap (counter difference), booked on the interval where the gap ends;
    # never spread over the gap and not part of energy_wh.
    gap_wh: Mapped[float] = mapped_column(Double, nullable=False, default=0.0)


class Rollup(Base):
    """Aggregates of one tag over one bucket ("15m" or "1d", UTC-aligned) computed from raw samples."""

    __tablename__ = "rollups"
    __table_args__ = (Index("ix_rollups_bucket_start_ts", "bucket", "start_ts"),)

    tag_id: Mapped[int] = mapped_column(Integer, ForeignKey("tags.id"), primary_key=True)
    bucket: Mapped[str] = mapped_column(String(4), primary_key=True)
    start_ts: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    count: Mapped[int] = mapped_column(Integer, nullable=False)
    min: Mapped[float | None] = mapped_column(Double, nullable=True)
    max: Mapped[float | None] = mapped_column(Double, nullable=True)
    avg: Mapped[float | None] = mapped_column(Double, nullable=True)
    twa: Mapped[float | None] = mapped_column(Double, nullable=True)  # time-weighted average (step interpolation)
    first: Mapped[float | None] = mapped_column(Double, nullable=True)
    last: Mapped[float | None] = mapped_column(Double, nullable=True)
    first_ts: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    last_ts: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    good_count: Mapped[int] = mapped_column(Integer, nullable=False, default=0)  # samples with Good quality


class Meta(Base):
    """Small key/value state of the historian's jobs (rollup watermarks, ...)."""

    __tablename__ = "historian_meta"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text, nullable=False)


def to_us(moment: datetime) -> int:
    """A timezone-aware datetime as integer microseconds since the Unix epoch (exact, no float rounding)."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime: cityscada timestamps are timezone-aware UTC")
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * US_PER_S + delta.microseconds


def from_us(ts: int) -> datetime:
    """Integer microseconds since the Unix epoch as a timezone-aware UTC datetime."""
    return datetime.fromtimestamp(ts // US_PER_S, UTC).replace(microsecond=ts % US_PER_S)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
