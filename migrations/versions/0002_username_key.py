"""Users get a comparison key: `users.username_key`, unique, from twooter.names.name_key.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01

Names that differ only by case or Unicode normal form are one name, and the
unique constraint on the key is what makes that hold under concurrent
registrations. Existing rows are keyed here, in Python, with the app's own
function, so that the database's idea of case folding never differs from the
app's. Older rules let "Alice" and "alice" both register; such a database is
not upgraded (nothing is renamed behind the operator's back): the upgrade
stops and names the users that share a key.
"""
import sqlalchemy as sa
from alembic import op

from twooter.names import name_key, same_key_groups
from twooter.schema import UpgradeRefused

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

users = sa.table("users", sa.column("id", sa.Integer), sa.column("username", sa.Text),
                 sa.column("username_key", sa.Text))


def _refuse_shared_keys(rows) -> None:
    clashes = same_key_groups((username for _, username in rows))
    if not clashes:
        return
    ids = {username: user_id for user_id, username in rows}
    listed = "; ".join(
        ", ".join(f"{name!r} (id {ids[name]})" for name in group) for group in clashes
    )
    raise UpgradeRefused(
        f"revision 0002 refused: {len(clashes)} group(s) of users have names that are the same "
        f"name under the current rules (they differ only by case or Unicode form): {listed}. "
        "Nothing was changed. Rename all but one user of each group (for example "
        "UPDATE users SET username = 'alice-2' WHERE id = 17), tell those people their new "
        "name, and run the upgrade again; or load the data with twooter-migrate, which "
        "applies its documented rule for such names."
    )


def upgrade():
    connection = op.get_bind()
    rows = connection.execute(sa.select(users.c.id, users.c.username)).all()
    _refuse_shared_keys(rows)
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("username_key", sa.Text(), nullable=True))
    if rows:
        connection.execute(
            users.update().where(users.c.id == sa.bindparam("user_id")).values(
                username_key=sa.bindparam("key")
            ),
            [{"user_id": user_id, "key": name_key(username)} for user_id, username in rows],
        )
    with op.batch_alter_table("users") as batch:
        batch.alter_column("username_key", existing_type=sa.Text(), nullable=False)
        batch.create_unique_constraint("uq_users_username_key", ["username_key"])


def downgrade():
    with op.batch_alter_table("users") as batch:
        batch.drop_constraint("uq_users_username_key", type_="unique")
        batch.drop_column("username_key")
