#!/usr/bin/env bash
# Run once by the postgres image on an empty data directory (/docker-entrypoint-initdb.d/).
# One server, two databases with their own least-privilege roles:
#   airflow   Airflow's metadata (and the Celery result backend): owned by role airflow
#   cnss_edi  the CNSS EDI database: owned by role cnss_edi (the store applies schemas/ddl.sql
#             itself, idempotently, at every start, so the role owns its schema)
# Neither role is a superuser nor may create databases or roles, and neither may connect to the
# other's database (CONNECT is revoked from PUBLIC). Passwords come from the environment
# (docker-compose.yml takes them from .env, which is not in git).
set -euo pipefail
: "${AIRFLOW_DB_PASSWORD:?}" "${CNSS_EDI_DB_PASSWORD:?}"

psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
  -v airflow_password="$AIRFLOW_DB_PASSWORD" -v cnss_password="$CNSS_EDI_DB_PASSWORD" <<'SQL'
CREATE ROLE airflow LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION PASSWORD :'airflow_password';
CREATE ROLE cnss_edi LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION PASSWORD :'cnss_password';
CREATE DATABASE airflow OWNER airflow;
CREATE DATABASE cnss_edi OWNER cnss_edi;
REVOKE ALL ON DATABASE airflow FROM PUBLIC;
REVOKE ALL ON DATABASE cnss_edi FROM PUBLIC;
GRANT CONNECT, TEMPORARY ON DATABASE airflow TO airflow;
GRANT CONNECT, TEMPORARY ON DATABASE cnss_edi TO cnss_edi;
SQL

# PostgreSQL 15 already leaves schema public to its database's owner; say it anyway.
for db in airflow cnss_edi; do
  psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$db" \
    -c "REVOKE ALL ON SCHEMA public FROM PUBLIC; ALTER SCHEMA public OWNER TO $db;"
done
