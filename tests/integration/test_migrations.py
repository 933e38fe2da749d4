"""The migrations build exactly the schema the models describe, on both engines."""
from alembic import command
from alembic.script import ScriptDirectory

from models.migrate import alembic_config


def test_models_and_migrations_agree(db_url):
    command.check(alembic_config(db_url))   # raises if autogenerate would find a difference


def test_one_head():
    heads = ScriptDirectory.from_config(alembic_config("sqlite+aiosqlite://")).get_heads()
    assert len(heads) == 1, f"migration branches must be merged: {heads}"
