"""Flower's configuration file (``celery flower --conf=deploy/flowerconfig.py``).

Flower executes this file at start-up and reads any option names it defines; it defines none (the
options are on the command line, see the Procfile) and only runs gemq's checks and logging set-up.
"""

from worker.process.flower import prepare

prepare()
