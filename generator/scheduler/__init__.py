"""The scheduler: which task runs next, on which worker, and when its next step is due.

- claim: the fair, limit-aware claim (one conditional UPDATE).
- limits: each provider's concurrency, rate and fallback, counted in the database.
- steps: one step of a task (send, submit a vendor job, look at it), never sleeping.
- heartbeat: a holding worker's sign of life.
- recovery: taking back tasks held by workers that stopped beating.
- queue: the permission messages that wake free workers.
- dispatcher: each worker cluster's loop that wakes workers when steps fall due.
- inline: run one task to its end in this process (tests, `manage.py generate`).

docs/SCHEDULING.md has the states, the claim query and what each fault does.
"""
