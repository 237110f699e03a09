"""A bare Django project: the yardstick the app's requests are measured against.

Served by the same gunicorn settings as the app (config/gunicorn.conf.py). It has the least
Django needs: no database, no sessions, no middleware; one template view rendering 48 items
and one view returning a small JSON body.
"""
