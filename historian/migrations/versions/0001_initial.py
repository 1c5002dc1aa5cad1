"""Initial historian schema: tags, samples, events, commands, incidents, energy intervals, rollups.

Revision ID: 0001
Revises:
Create Date: 2026-11-20
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    """Create every table of the historian."""
    op.create_table(
        "tags",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("dtype", sa.String(16), nullable=False),
        sa.Column("tag_class", sa.String(32), nullable=False),
        sa.Column("unit", sa.String(16), nullable=True),
        sa.Column("created_ts", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_tags"),
        sa.UniqueConstraint("name", name="uq_tags_name"),
    )
    op.create_table(
        "samples",
        sa.Column("tag_id", sa.Integer(), nullable=False),
        sa.Column("ts", sa.BigInteger(), nullable=False),
        sa.Column("value", sa.Double(), nullable=True),
        sa.Column("text", sa.Text(), nullable=True),
        sa.Column("quality", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("tag_id", "ts", name="pk_samples"),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "events",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("ts", sa.BigInteger(), nullable=False),
        sa.Column("source", sa.String(255), nullable=False),
        sa.Column("event_type", sa.String(64), nullable=False),
        sa.Column("severity", sa.Integer(), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("condition", sa.String(128), nullable=True),
        sa.Column("state", sa.String(64), nullable=True),
        sa.Column("user", sa.String(128), nullable=True),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("data", sa.Text(), nullable=True),
        sa.Column("uid", sa.String(32), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_events"),
        sa.UniqueConstraint("uid", name="uq_events_uid"),
    )
    op.create_index("ix_events_ts", "events", ["ts"])
    op.create_index("ix_events_source_ts", "events", ["source", "ts"])
    op.create_table(
        "commands",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("ts", sa.BigInteger(), nullable=False),
        sa.Column("user", sa.String(128), nullable=True),
        sa.Column("origin", sa.String(64), nullable=False),
        sa.Column("device_id", sa.String(64), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("args", sa.Text(), nullable=False),
        sa.Column("status", sa.BigInteger(), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("duration_ms", sa.Double(), nullable=True),
        sa.Column("uid", sa.String(32), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_commands"),
        sa.UniqueConstraint("uid", name="uq_commands_uid"),
    )
    op.create_index("ix_commands_ts", "commands", ["ts"])
    op.create_index("ix_commands_device_id_ts", "commands", ["device_id", "ts"])
    op.create_table(
        "incidents",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("lat", sa.Double(), nullable=False),
        sa.Column("lon", sa.Double(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("contact", sa.LargeBinary(), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_ts", sa.BigInteger(), nullable=False),
        sa.Column("closed_ts", sa.BigInteger(), nullable=True),
        sa.Column("timeline", sa.Text(), nullable=False),
        sa.Column("updated_ts", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_incidents"),
    )
    op.create_index("ix_incidents_status", "incidents", ["status"])
    op.create_table(
        "energy_intervals",
        sa.Column("scope", sa.String(16), nullable=False),
        sa.Column("scope_id", sa.String(64), nullable=False),
        sa.Column("start_ts", sa.BigInteger(), nullable=False),
        sa.Column("energy_wh", sa.Double(), nullable=False),
        sa.Column("baseline_wh", sa.Double(), nullable=False),
        sa.Column("burning_s", sa.Double(), nullable=False),
        sa.Column("gap", sa.Boolean(), nullable=False),
        sa.Column("reset", sa.Boolean(), nullable=False),
        sa.Column("members", sa.Integer(), nullable=False),
        sa.Column("gaps", sa.Integer(), nullable=False),
        sa.Column("gap_wh", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("scope", "scope_id", "start_ts", name="pk_energy_intervals"),
    )
    op.create_index("ix_energy_intervals_start_ts", "energy_intervals", ["start_ts"])
    op.create_table(
        "rollups",
        sa.Column("tag_id", sa.Integer(), nullable=False),
        sa.Column("bucket", sa.String(4), nullable=False),
        sa.Column("start_ts", sa.BigInteger(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("min", sa.Double(), nullable=True),
        sa.Column("max", sa.Double(), nullable=True),
        sa.Column("avg", sa.Double(), nullable=True),
        sa.Column("twa", sa.Double(), nullable=True),
        sa.Column("first", sa.Double(), nullable=True),
        sa.Column("last", sa.Double(), nullable=True),
        sa.Column("first_ts", sa.BigInteger(), nullable=True),
        sa.Column("last_ts", sa.BigInteger(), nullable=True),
        sa.Column("good_count", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["tag_id"], ["tags.id"], name="fk_rollups_tag_id_tags"),
        sa.PrimaryKeyConstraint("tag_id", "bucket", "start_ts", name="pk_rollups"),
    )
    op.create_index("ix_rollups_bucket_start_ts", "rollups", ["bucket", "start_ts"])
    op.create_table(
        "historian_meta",
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_historian_meta"),
    )


def downgrade() -> None:
    """Drop every table of the historian."""
    for table in (
        "historian_meta",
        "rollups",
        "energy_intervals",
        "incidents",
        "commands",
        "events",
        "samples",
        "tags",
    ):
        op.drop_table(table)
