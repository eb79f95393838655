"""WSGI entry point: ``gunicorn wsgi:app``. The only module-level app object."""

from dotenv import load_dotenv

from app import create_app

load_dotenv()  # a .env file is read in development; production sets real variables
app = create_app()
