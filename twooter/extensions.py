"""Extension objects, created unbound and bound to an app in create_app()."""
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.orm import DeclarativeBase

from .data.replica import RoutingSession


class Base(DeclarativeBase):
    pass


# Objects keep their values after a commit: a page rendered after its unit of
# work has committed shows what was written without reading it again.
# Lag-tolerant reads go to the replica when there is one (data/replica.py).
db = SQLAlchemy(model_class=Base, session_options={"expire_on_commit": False, "class_": RoutingSession})
migrate = Migrate()
