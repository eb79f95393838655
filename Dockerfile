# Production image: gunicorn serves wsgi:app; the same image runs the RQ worker.
FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 APP_ENV=production
RUN apt-get update && apt-get install -y --no-install-recommends fonts-noto-cjk \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /srv/shop
COPY requirements.txt .
RUN pip install -r requirements.txt
COPY . .
RUN useradd --system --home /srv/shop shop && mkdir -p /srv/shop/instance /data/uploads \
    && chown -R shop /srv/shop/instance /data/uploads
USER shop
EXPOSE 8000
CMD ["gunicorn", "--config", "gunicorn.conf.py", "wsgi:app"]
