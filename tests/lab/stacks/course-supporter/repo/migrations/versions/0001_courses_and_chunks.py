"""courses and lesson chunks with pgvector embeddings

Revision ID: 0001
Revises:
"""
from alembic import op
import sqlalchemy as sa

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade():
    op.execute("CREATE EXTENSION IF NOT EXISTS vector")
    op.create_table(
        "courses",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now()),
    )
    op.execute(
        "CREATE TABLE lesson_chunks ("
        " id serial PRIMARY KEY,"
        " course_id integer NOT NULL REFERENCES courses(id),"
        " body text NOT NULL,"
        " embedding vector(3) NOT NULL)"
    )
    op.execute("INSERT INTO courses (title) VALUES ('Python basics'), ('Async Python in practice')")
    op.execute(
        "INSERT INTO lesson_chunks (course_id, body, embedding) VALUES"
        " (1, 'Variables name values.', '[0.1, 0.2, 0.3]'),"
        " (1, 'Functions take arguments.', '[0.2, 0.1, 0.4]'),"
        " (2, 'An event loop runs coroutines.', '[0.9, 0.8, 0.1]')"
    )


def downgrade():
    op.drop_table("lesson_chunks")
    op.drop_table("courses")
