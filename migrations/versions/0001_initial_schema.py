"""Initial schema: users, messages, follows, and the simulator's latest action id.

Revision ID: 0001
Revises:
Create Date: 2026-11-28
"""
import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# Written per dialect by the compiler: "flagged = false" on PostgreSQL,
# "flagged = 0" on SQLite, exactly as the app's queries say it, so that both
# planners match the partial index to the public timeline query.
NOT_FLAGGED = sa.column("flagged") == sa.false()


def upgrade():
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("username", sa.Text(), nullable=False),
        sa.Column("email", sa.Text(), nullable=False),
        sa.Column("pw_hash", sa.Text(), nullable=False),
        sa.Column("is_admin", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.UniqueConstraint("username", name="uq_users_username"),
    )
    op.create_table(
        "follows",
        sa.Column("follower_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("followed_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.PrimaryKeyConstraint("follower_id", "followed_id"),
    )
    op.create_index("ix_follows_followed", "follows", ["followed_id"])
    op.create_table(
        "messages",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("author_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("pub_date", sa.DateTime(timezone=True), nullable=False),
        sa.Column("flagged", sa.Boolean(), server_default=sa.false(), nullable=False),
    )
    op.create_index(
        "ix_messages_author_time",
        "messages",
        ["author_id", sa.literal_column("pub_date DESC"), sa.literal_column("id DESC")],
    )
    op.create_index(
        "ix_messages_public_time",
        "messages",
        [sa.literal_column("pub_date DESC"), sa.literal_column("id DESC")],
        postgresql_where=NOT_FLAGGED,
        sqlite_where=NOT_FLAGGED,
    )
    op.create_table(
        "latest_action",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("value", sa.BigInteger(), nullable=False),
    )


def downgrade():
    op.drop_table("latest_action")
    op.drop_table("messages")
    op.drop_table("follows")
    op.drop_table("users")
