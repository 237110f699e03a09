# One image for the web server (default command) and the worker (`python manage.py qcluster`).
FROM python:3.11-slim AS build
WORKDIR /build
COPY requirements.txt .
RUN pip wheel --no-cache-dir --wheel-dir /wheels -r requirements.txt

FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 PORT=8000 MEDIA_ROOT=/data/media CACHE_DIR=/data/cache
# The media and cache folders exist in the image, owned by the app's user, so a named volume
# mounted there starts out writable by it.
# A font with Chinese characters, for the offline sketch's caption of a Chinese prompt.
RUN apt-get update && apt-get install -y --no-install-recommends fonts-wqy-microhei && rm -rf /var/lib/apt/lists/*
RUN useradd --create-home --uid 1000 atelier && mkdir -p /data/media /data/cache && chown -R atelier /data
WORKDIR /app
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/* && rm -rf /wheels
COPY --chown=atelier . .
RUN DEBUG=false SECRET_KEY=collectstatic-only python manage.py collectstatic --noinput
USER atelier
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 CMD python -c "import os,urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PORT', '8000'))"
# Migrations first (they also install the schedules), then gunicorn replaces the shell.
CMD ["sh", "-c", "python manage.py migrate --noinput && exec gunicorn config.wsgi --config config/gunicorn.conf.py"]
