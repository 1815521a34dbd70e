"""The use cases; every front door goes through here."""
