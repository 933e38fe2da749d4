"""complaints.p0_watch: suggested P1/P2 but possibly P0, first in the review queue

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-24 01:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('complaints') as batch_op:
        batch_op.add_column(sa.Column('p0_watch', sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table('complaints') as batch_op:
        batch_op.drop_column('p0_watch')
