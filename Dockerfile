FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 QCOS_VAR_DIR=/var/lib/qcos
WORKDIR /app
COPY requirements.txt pyproject.toml ./
RUN pip install --no-cache-dir -r requirements.txt
COPY . .
RUN pip install --no-cache-dir --no-deps -e . \
 && useradd --system --home /var/lib/qcos qcos && mkdir -p /var/lib/qcos/keys && chown -R qcos /var/lib/qcos && chmod 700 /var/lib/qcos/keys \
 && SECRET_KEY=build DEBUG=false python manage.py collectstatic --noinput -v0
USER qcos
EXPOSE 8000
CMD ["gunicorn", "qcos.wsgi", "--bind", "0.0.0.0:8000", "--workers", "4", "--access-logfile", "-"]
