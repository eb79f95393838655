"""WSGI entry point: ``gunicorn wsgi:app``. The only module-level app object."""

from dotenv import load_dotenv

from app import create_app
from demo.cli import register_demo

load_dotenv()  # a .env file is read in development; production sets real variables
app = create_app()
register_demo(app)  # ``flask seed-demo``: the shop's code never imports the demo
