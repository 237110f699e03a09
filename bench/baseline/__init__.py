"""A bare Django project: the yardstick the app's requests are measured against.

Served by the same gunicorn settings as the app (config/gunicorn.conf.py). It is what
`django-admin startproject` makes (its apps and middleware, DEBUG off) plus two views: a
template rendering 48 items and a small JSON body. No database work, no sessions in use.
"""
