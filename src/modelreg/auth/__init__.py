"""Who is acting: principals (users and service accounts)."""
