"""The application: edges (PostgreSQL, files, CLI) around the pure layers."""
