"""Celery tasks (thin) and provider adapters behind one interface."""
