"""workflow: plans, remedies, escalations, work tasks, SLA figures, console sessions

Revision ID: 0004
Revises: 0002
Create Date: 2026-11-23 11:34:23.048749
"""
from alembic import op
import sqlalchemy as sa


revision = '0004'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('console_sessions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('agent_id', sa.Integer(), nullable=False),
    sa.Column('csrf_token', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['agent_id'], ['agents.id'], name=op.f('fk_console_sessions_agent_id_agents')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_console_sessions')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_console_sessions_token_hash'))
    )
    with op.batch_alter_table('console_sessions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_console_sessions_agent_id'), ['agent_id'], unique=False)

    op.create_table('complaint_workflow',
    sa.Column('complaint_id', sa.Integer(), nullable=False),
    sa.Column('response_minutes', sa.Integer(), nullable=True),
    sa.Column('response_target_minutes', sa.Integer(), nullable=True),
    sa.Column('resolve_minutes', sa.Integer(), nullable=True),
    sa.Column('resolve_target_minutes', sa.Integer(), nullable=True),
    sa.Column('escalation', sa.String(length=16), nullable=True),
    sa.Column('merged_into_id', sa.Integer(), nullable=True),
    sa.Column('confirmed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('surveyed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('disputes', sa.Integer(), nullable=False),
    sa.Column('resolutions', sa.Integer(), nullable=False),
    sa.Column('progress_sent', sa.Integer(), nullable=False),
    sa.Column('sla_revision', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['complaint_id'], ['complaints.id'], name=op.f('fk_complaint_workflow_complaint_id_complaints')),
    sa.ForeignKeyConstraint(['merged_into_id'], ['complaints.id'], name=op.f('fk_complaint_workflow_merged_into_id_complaints')),
    sa.PrimaryKeyConstraint('complaint_id', name=op.f('pk_complaint_workflow'))
    )
    with op.batch_alter_table('complaint_workflow', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_complaint_workflow_merged_into_id'), ['merged_into_id'], unique=False)

    op.create_table('escalations',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('complaint_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('level', sa.String(length=16), nullable=False),
    sa.Column('department_code', sa.String(length=8), nullable=False),
    sa.Column('detail', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('acknowledged_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('acknowledged_by', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['acknowledged_by'], ['agents.id'], name=op.f('fk_escalations_acknowledged_by_agents')),
    sa.ForeignKeyConstraint(['complaint_id'], ['complaints.id'], name=op.f('fk_escalations_complaint_id_complaints')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_escalations'))
    )
    with op.batch_alter_table('escalations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_escalations_complaint_id'), ['complaint_id'], unique=False)
        batch_op.create_index('ix_escalations_open', ['acknowledged_at', 'department_code'], unique=False)

    op.create_table('solution_plans',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('complaint_id', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('measures', sa.JSON(), nullable=False),
    sa.Column('deadline', sa.DateTime(timezone=True), nullable=False),
    sa.Column('resources', sa.Text(), nullable=True),
    sa.Column('estimated_cost_cents', sa.Integer(), nullable=False),
    sa.Column('needs_manager', sa.Boolean(), nullable=False),
    sa.Column('author_id', sa.Integer(), nullable=False),
    sa.Column('supervisor_id', sa.Integer(), nullable=True),
    sa.Column('supervisor_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('manager_id', sa.Integer(), nullable=True),
    sa.Column('manager_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('decision_note', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['author_id'], ['agents.id'], name=op.f('fk_solution_plans_author_id_agents')),
    sa.ForeignKeyConstraint(['complaint_id'], ['complaints.id'], name=op.f('fk_solution_plans_complaint_id_complaints')),
    sa.ForeignKeyConstraint(['manager_id'], ['agents.id'], name=op.f('fk_solution_plans_manager_id_agents')),
    sa.ForeignKeyConstraint(['supervisor_id'], ['agents.id'], name=op.f('fk_solution_plans_supervisor_id_agents')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_solution_plans'))
    )
    with op.batch_alter_table('solution_plans', schema=None) as batch_op:
        batch_op.create_index('ix_solution_plans_complaint', ['complaint_id', 'id'], unique=False)

    op.create_table('remedies',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('complaint_id', sa.Integer(), nullable=False),
    sa.Column('plan_id', sa.Integer(), nullable=True),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('amount_cents', sa.Integer(), nullable=False),
    sa.Column('department_code', sa.String(length=8), nullable=False),
    sa.Column('category', sa.String(length=32), nullable=False),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['complaint_id'], ['complaints.id'], name=op.f('fk_remedies_complaint_id_complaints')),
    sa.ForeignKeyConstraint(['plan_id'], ['solution_plans.id'], name=op.f('fk_remedies_plan_id_solution_plans')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_remedies'))
    )
    with op.batch_alter_table('remedies', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_remedies_complaint_id'), ['complaint_id'], unique=False)
        batch_op.create_index('ix_remedies_recorded', ['recorded_at'], unique=False)

    op.create_table('work_tasks',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('complaint_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=24), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('department_code', sa.String(length=8), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('survey_response_id', sa.Integer(), nullable=True),
    sa.Column('due_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('status', sa.String(length=8), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('done_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('done_by', sa.Integer(), nullable=True),
    sa.Column('note', sa.LargeBinary(), nullable=True),
    sa.ForeignKeyConstraint(['complaint_id'], ['complaints.id'], name=op.f('fk_work_tasks_complaint_id_complaints')),
    sa.ForeignKeyConstraint(['done_by'], ['agents.id'], name=op.f('fk_work_tasks_done_by_agents')),
    sa.ForeignKeyConstraint(['survey_response_id'], ['survey_responses.id'], name=op.f('fk_work_tasks_survey_response_id_survey_responses')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_work_tasks'))
    )
    with op.batch_alter_table('work_tasks', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_work_tasks_complaint_id'), ['complaint_id'], unique=False)
        batch_op.create_index('ix_work_tasks_open', ['status', 'department_code', 'due_at'], unique=False)

    # ### end Alembic commands ###


def downgrade() -> None:
    # ### commands auto generated by Alembic - please adjust! ###
    with op.batch_alter_table('work_tasks', schema=None) as batch_op:
        batch_op.drop_index('ix_work_tasks_open')
        batch_op.drop_index(batch_op.f('ix_work_tasks_complaint_id'))

    op.drop_table('work_tasks')
    with op.batch_alter_table('remedies', schema=None) as batch_op:
        batch_op.drop_index('ix_remedies_recorded')
        batch_op.drop_index(batch_op.f('ix_remedies_complaint_id'))

    op.drop_table('remedies')
    with op.batch_alter_table('solution_plans', schema=None) as batch_op:
        batch_op.drop_index('ix_solution_plans_complaint')

    op.drop_table('solution_plans')
    with op.batch_alter_table('escalations', schema=None) as batch_op:
        batch_op.drop_index('ix_escalations_open')
        batch_op.drop_index(batch_op.f('ix_escalations_complaint_id'))

    op.drop_table('escalations')
    with op.batch_alter_table('complaint_workflow', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_complaint_workflow_merged_into_id'))

    op.drop_table('complaint_workflow')
    with op.batch_alter_table('console_sessions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_console_sessions_agent_id'))