# One image for the web server (default command) and the worker (`python manage.py qcluster`).
FROM python:3.11-slim AS build
WORKDIR /build
COPY requirements.txt .
RUN pip wheel --no-cache-dir --wheel-dir /wheels -r requirements.txt

FROM python:3.11-slim
# Production defaults: DEBUG off, and gunicorn on every interface of the container (it is
# reached through the nginx service in docker-compose.yml, never published itself). Without
# SECRET_KEY the key is generated once into SECRET_KEY_FILE, on the volume web and worker share.
ENV PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 DEBUG=false BIND=0.0.0.0 PORT=8000 \
    MEDIA_ROOT=/data/media CACHE_DIR=/data/cache SECRET_KEY_FILE=/data/config/secret_key
# The media, cache and key folders exist in the image, owned by the app's user, so a named volume
# mounted there starts out writable by it (the key's folder for it alone).
# A font with Chinese characters, for the offline sketch's caption of a Chinese prompt.
RUN apt-get update && apt-get install -y --no-install-recommends fonts-wqy-microhei && rm -rf /var/lib/apt/lists/*
RUN useradd --create-home --uid 1000 atelier && mkdir -p /data/media /data/cache /data/config && chown -R atelier /data && chmod 700 /data/config
WORKDIR /app
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/* && rm -rf /wheels
COPY --chown=atelier . .
# A throwaway key for this one command: the image must carry no key (SECRET_KEY_FILE stays empty).
RUN DEBUG=false SECRET_KEY="$(python -c 'import secrets; print(secrets.token_urlsafe(50))')" python manage.py collectstatic --noinput
USER atelier
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 CMD python -c "import os,urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PORT', '8000'))"
# umask 027 for whatever the container runs (the web command below, the worker's qcluster):
# media files and folders are not readable by other users.
ENTRYPOINT ["/app/scripts/docker-entrypoint"]
# Migrations first (they also install the schedules), then gunicorn replaces the shell.
CMD ["sh", "-c", "python manage.py migrate --noinput && exec gunicorn config.asgi --config config/gunicorn.conf.py"]
