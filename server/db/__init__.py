"""The database layer: tables (models), engines and sessions, and the queries the API and the
workers share."""
