"""courses.published flag

Revision ID: 0002
Revises: 0001
"""
from alembic import op
import sqlalchemy as sa

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column("courses", sa.Column("published", sa.Boolean, nullable=False, server_default=sa.false()))


def downgrade():
    op.drop_column("courses", "published")
