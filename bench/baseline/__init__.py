"""A bare Django project: the yardstick the app's requests are measured against.

Served by the same gunicorn settings as the app (config/gunicorn.conf.py). It is what
`django-admin startproject` makes (its apps and middleware, DEBUG off) plus two views: a
template rendering 48 items and a small JSON body, each also served for a signed-in person
only. The first two do no database work; the signed-in copies add the least a signed-in
request costs in stock Django (its session and user rows read), a context figure beside
the targets (see bench.web).
"""
