"""Chargeback reports and the cost dashboard in the admin."""
