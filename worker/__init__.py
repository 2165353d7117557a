"""Workers: a Celery app whose tasks claim a job, run it with gro_core, and write what it
produces to the database. The logic lives in plain functions (runner, callback, reconcile)
that tests call directly; tasks.py only wires them to Celery."""
