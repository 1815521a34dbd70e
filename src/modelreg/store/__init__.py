"""Metadata persistence: tables, migrations, transactions and queries."""
