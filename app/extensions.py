"""Extension singletons, bound to an app with ``init_app`` in ``create_app``."""

from flask import abort
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect
from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase

from app.core.params import MAX_ID
from app.core.replica import RoutingSession

# Named constraints so Alembic migrations are stable on SQLite and PostgreSQL alike.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base for every model."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Database(SQLAlchemy):
    """Flask-SQLAlchemy with a ``get_or_404`` that knows no row id is that large."""

    def get_or_404(self, entity, ident, *, description=None):
        """The row, or 404. An id past PostgreSQL's ``integer`` range (a URL's
        ``<int:...>`` takes any length) is a 404 without asking the database, which
        SQLite could not even be asked (it cannot bind the number)."""
        if isinstance(ident, int) and ident > MAX_ID:
            abort(404, description=description)
        return super().get_or_404(entity, ident, description=description)


# Report pages and exports may read from DATABASE_REPLICA_URL (app/core/replica.py).
db = Database(model_class=Base, session_options={"class_": RoutingSession})
migrate = Migrate()
login_manager = LoginManager()
csrf = CSRFProtect()
