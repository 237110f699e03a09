"""A bare Django project: the yardstick the app's requests are measured against.

Served by the same gunicorn settings as the app (config/gunicorn.conf.py). It is what
`django-admin startproject` makes (its apps and middleware, DEBUG off) plus three views: a
template rendering 48 items, a small JSON body, and the same JSON body for a signed-in
person only. The first two do no database work; the third is the least a signed-in request
costs in stock Django (its session and user rows read, nothing else), a context figure
beside the targets (see bench.web).
"""
