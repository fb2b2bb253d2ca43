-- One-time setup of an external PostgreSQL for latentvo, run by a superuser:
--   psql -v ON_ERROR_STOP=1 -v owner_password="'...'" -v reader_password="'...'" \
--        -v replication_password="'...'" -f setup.sql
-- (the values in single quotes inside double quotes: psql inserts them as SQL
-- literals). Creates what `latentvo db upgrade` cannot create as the owner:
-- the two roles, the database, the extensions. Everything else (schemas
-- latentvo, latentvo_ops, tap_schema, ivoa, tables, indexes, the reader's
-- grants, TAP_SCHEMA) is made and kept up to date by `latentvo db upgrade`.

-- The owner: creates and writes every table (LATENTVO_DATABASE_URL).
CREATE ROLE latentvo_owner LOGIN PASSWORD :owner_password;
-- The read-only role user queries run as (LATENTVO_READER_ROLE, default
-- latentvo_reader). `db upgrade` grants it SELECT on the published schemas
-- only and revokes everything on latentvo_ops. Giving it a login lets
-- LATENTVO_READER_DATABASE_URL point at a replica too (roles replicate).
CREATE ROLE latentvo_reader LOGIN PASSWORD :reader_password;
-- No LATENTVO_READER_DATABASE_URL? Then reader sessions connect as the owner
-- and SET ROLE, which needs this membership (harmless otherwise).
GRANT latentvo_reader TO latentvo_owner;

CREATE DATABASE latentvo OWNER latentvo_owner;
\connect latentvo

-- pgvector is not a trusted extension, so the owner's migration 0001
-- (CREATE EXTENSION IF NOT EXISTS vector) only works once it exists.
CREATE EXTENSION IF NOT EXISTS vector;
-- Needs shared_preload_libraries (latentvo.conf); the embedded server has it too.
CREATE EXTENSION IF NOT EXISTS pg_stat_statements;

-- Streaming replicas connect with this role (pg_hba.conf: "replication").
CREATE ROLE latentvo_replication REPLICATION LOGIN PASSWORD :replication_password;
