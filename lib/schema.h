/* schema.h: the SQL migrations of schema/, embedded at build time (schema/embed.sh).
 * kw_migrations[i] brings an SQLite database from user_version i to i + 1;
 * kw_pg_migrations[i] a PostgreSQL database (schema/pg/) from meta's schema_version i to
 * i + 1. */
#ifndef KW_SCHEMA_H
#define KW_SCHEMA_H

extern const char *const kw_migrations[];
extern const unsigned kw_migrations_count;
extern const char *const kw_pg_migrations[];
extern const unsigned kw_pg_migrations_count;

#endif
